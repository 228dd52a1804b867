"""fedlogind's log tells the whole story of a login, each step with its
journal MESSAGE_ID (Sources/FedloginCore/Policy/MessageID.swift), and errors
read by people are plain words, not Swift signatures."""
import subprocess

import pytest

import pamclient as pc
import sandbox
from messageids import logged
from strict_idp import browser_sign_in
from world import World, unique

PASSCODE = "Correct-Horse9"


def test_fedloginctl_names_a_missing_socket_in_plain_words(tmp_path):
    missing = tmp_path / "no-such-dir" / "fedlogind.sock"
    out = subprocess.run([str(sandbox.bin_dir() / "fedloginctl"), "status", "--socket", str(missing)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    message = out.stderr.strip()
    assert f"fedlogind is not reachable: cannot connect to {missing}: No such file or directory. Is it running?" in message
    # No Swift signature, errno's text once, parentheses balanced.
    assert "descriptor:" not in message and "errno" not in message
    assert message.count("No such file or directory") == 1
    assert message.count("(") == message.count(")")


def device_browser(sub):
    def browse(url):
        if "user_code=" in url:
            return browser_sign_in(url, sub)
    return browse


@pytest.mark.namespace
def test_first_login_later_logins_and_a_lockout_are_logged(tmp_path, strict, in_namespace):
    name = unique("story")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}], policy={"lockout": {"max_attempts": 2, "duration": 600}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=device_browser(name), service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        log = w.fedlogind.log_text()
        logged(log, "device code shown", "deviceCodeShown")
        logged(log, "ID token verified", "tokenVerified")
        logged(log, "the signed-in email matches the directory user", "emailMatched")
        logged(log, "account created", "accountCreated")
        logged(log, "first login", "loginSuccess")

        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        logged(w.fedlogind.log_text(), "account check passed", "localLogin")

        for _ in range(2):
            codes, a = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
            assert codes == [pc.PAM_AUTH_ERR], a.transcript
        codes, _ = w.login(name, [], steps=("acct_mgmt",))
        assert codes == [pc.PAM_PERM_DENIED]
        log = w.fedlogind.log_text()
        logged(log, "local password wrong", "loginFailure")
        logged(log, "account locked after 2 failed attempts", "accountLocked")
        logged(log, "login refused: locked out after failed attempts", "loginFailure")
        assert "descriptor:" not in log and "(errno:" not in log
    finally:
        w.stop()
