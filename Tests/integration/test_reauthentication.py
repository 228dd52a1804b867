"""Re-authentication every reauth_interval days (docs/accounts.md,
"Re-authentication"), through the real PAM stack: before the sign-in at the
IdP falls due nothing changes; during reauth_grace the login goes on with a
warning; then the account phase signs the owner in at the IdP after the
passcode, and a login that cannot (an SSH key's conversation answers
nothing) is refused. No test waits for days: the recorded sign-in is moved
back in fedlogind's state while it is stopped."""
import sqlite3
import time
import tomllib
from pathlib import Path

import pytest

import pamclient as pc
from world import World, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"


def state_db(w):
    return Path(tomllib.loads(w.config.read_text())["daemon"]["state_dir"]) / "state.sqlite"


def signed_in_days_ago(w, name, days):
    """With fedlogind stopped: the last sign-in at the IdP `days` ago; then fedlogind again."""
    w.fedlogind.stop()
    with sqlite3.connect(state_db(w)) as db:
        db.execute("UPDATE account SET last_signin_at = ? WHERE username = ?", (time.time() - days * 86400, name))
    w.restart_fedlogind()


def wait_log(w, text, timeout=10.0):
    """fedlogind may log a refusal just after the module gave up on the conversation."""
    end = time.monotonic() + timeout
    while text not in w.fedlogind.log_text():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def user_row(w, name):
    return next(u for u in w.ctl_json("users")["users"] if u["username"] == name)


def test_a_due_sign_in_warns_in_the_grace_then_the_login_signs_in_and_a_key_alone_is_refused(tmp_path, strict, in_namespace):
    name = unique("reauth")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name, "groups": ["contractors"]}],
              policy={"reauth_interval": 30, "reauth_groups": [{"group": "contractors", "interval": 2}], "reauth_grace": 1})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        first = user_row(w, name)["last_signin"]
        assert user_row(w, name)["reauth_due"] > first  # the contractors' 2 days
        # Not due yet: nothing asked, nothing said.
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert not any("identity provider" in m for m in a.messages(pc.PAM_TEXT_INFO))

        # Due (the contractors' 2 days, stricter than the policy's 30), in the grace: a warning.
        signed_in_days_ago(w, name, 2.5)
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert any("sign in with your identity provider every 2 days" in m for m in a.messages(pc.PAM_TEXT_INFO)), a.transcript
        assert "a sign-in at the IdP is due (every 2 days)" in w.fedlogind.log_text()

        # Past the grace: a conversation that answers nothing (as sshd's for a key) gets no login.
        signed_in_days_ago(w, name, 3.5)
        overdue = user_row(w, name)["last_signin"]
        assert overdue < first
        codes, a = w.login(name, [], steps=("acct_mgmt",))
        assert codes and codes[-1] != pc.PAM_SUCCESS, a.transcript
        assert wait_log(w, "login refused: a sign-in at the IdP is due and this login did not do it")
        # The passcode, then the sign-in at the IdP in the account phase.
        codes, a = w.login(name, [PASSCODE, ""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert any(f"to confirm that {name} is still yours" in m for m in a.messages(pc.PAM_TEXT_INFO)), a.transcript
        assert "signed in at the IdP again (every 2 days)" in w.fedlogind.log_text()
        assert user_row(w, name)["last_signin"] >= first > overdue
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript

        # Someone else signing in is refused.
        signed_in_days_ago(w, name, 3.5)
        other = unique("reother")
        strict.add_user(other, email=f"{other}@example.test")
        codes, a = w.login(name, [PASSCODE, ""], browser=w.browser(other))
        assert codes == [pc.PAM_SUCCESS, pc.PAM_PERM_DENIED], a.transcript
        assert any("who is not the owner of" in m for m in a.messages(pc.PAM_ERROR_MSG)), a.transcript
    finally:
        w.stop()


def test_over_ssh_the_passcode_login_signs_in_again_and_a_key_alone_is_refused(tmp_path, strict, in_namespace):
    from sshd import SignInAnswerer, key_login, socket_dir, ssh_login, world_ssh, write_key
    from strict_idp import browser_sign_in

    def device_browser(sub):
        def browse(url):
            if "user_code=" in url:
                return browser_sign_in(url, sub)
        return browse

    name = unique("reassh")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}], policy={"reauth_interval": 7},
              config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        key = write_key(tmp_path, name)
        signed_in_days_ago(w, name, 8)
        extra = ["PubkeyAuthentication yes", "AuthenticationMethods publickey keyboard-interactive"]
        with world_ssh(w, extra_config=extra) as sshd:
            assert key_login(sshd.port, name, key) is None
            assert wait_log(w, "login refused: a sign-in at the IdP is due and this login did not do it")
            r = ssh_login(sshd.port, name, SignInAnswerer(device_browser(name), [PASSCODE, ""]), timeout=120)
            assert r.ok, (r.error, r.text(), w.fedlogind.log_text()[-3000:])
            assert f"to confirm that {name} is still yours" in r.text()
            assert key_login(sshd.port, name, key) == f"{name}\n"
    finally:
        w.stop()
