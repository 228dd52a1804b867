"""fedlogind as a process: configuration errors at start, SIGHUP reload,
crash recovery of an interrupted provisioning."""
import signal
import subprocess

import pytest

import pamclient as pc
import sandbox
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace
PASSCODE = "Correct-Horse9"



def test_a_malformed_config_stops_the_start_and_names_the_key(tmp_path, strict, in_namespace):
    config = sandbox.write_config(tmp_path, {"demo": strict})
    config.write_text(config.read_text().replace("[accounts]", "[accounts]\nuid_mni = 5"))
    out = subprocess.run([str(sandbox.bin_dir() / "fedlogind"), "--config", str(config)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 78
    assert f"{config}: accounts.uid_mni: unknown key in [accounts]" in out.stderr
    check = subprocess.run([str(sandbox.bin_dir() / "fedlogind"), "--config", str(config), "--check-config"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 78 and "accounts.uid_mni" in check.stderr


# Inputs the TOML library aborts on instead of reporting (found by fuzzing the
# configuration parser, docs/security.md#fuzzing).
TOML_ABORTS = ['[idp.demo]\nscopes = ["openid",}\n']


def test_toml_the_parser_aborts_on_is_a_clean_error_at_start_and_on_reload(tmp_path, strict, in_namespace):
    name = unique("tomlabort")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name])
    try:
        good = w.config.read_text()
        dropin = w.config.parent / "conf.d" / "90-broken.conf"
        dropin.parent.mkdir(exist_ok=True)
        dropin.write_text(TOML_ABORTS[0])
        out = subprocess.run([str(sandbox.bin_dir() / "fedlogind"), "--config", str(w.config)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 78, out.stderr
        assert "malformed TOML in this file or a drop-in in conf.d" in out.stderr
        # A running daemon keeps its configuration and keeps serving.
        w.fedlogind.send_signal(signal.SIGHUP)
        w.fedlogind.wait_for_log("configuration not reloaded")
        assert w.fedlogind.alive and "malformed TOML" in w.fedlogind.log_text()
        assert w.config.read_text() == good
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


def test_a_client_secret_file_others_can_read_is_refused(tmp_path, strict, in_namespace):
    config = sandbox.write_config(tmp_path, {"demo": strict})
    (tmp_path / "secrets" / "idp-demo.secret").chmod(0o644)
    out = subprocess.run([str(sandbox.bin_dir() / "fedlogind"), "--config", str(config), "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 78
    assert "idp.demo.client_secret_file" in out.stderr and "chmod 600" in out.stderr
    assert "fedlogin-test-secret" not in out.stderr


def test_sighup_reloads_and_an_invalid_config_keeps_the_old_one(tmp_path, strict, in_namespace):
    name = unique("uma")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name])
    try:
        w.config.write_text(w.config.read_text().replace('display_name = "Demo IdP"', 'display_name = "Renamed IdP"'))
        w.fedlogind.send_signal(signal.SIGHUP)
        w.fedlogind.wait_for_log("configuration reloaded")
        good = w.config.read_text()
        w.config.write_text(good.replace("[signin]", "[signin]\ntimeuot = 3"))
        w.fedlogind.send_signal(signal.SIGHUP)
        w.fedlogind.wait_for_log("configuration not reloaded")
        assert "signin.timeuot: unknown key" in w.fedlogind.log_text()
        assert w.fedlogind.alive
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert a.messages(pc.PAM_TEXT_INFO)[0].startswith("Sign in with Renamed IdP")
    finally:
        w.stop()


@pytest.mark.parametrize("point", ["after-intent", "after-useradd", "after-password"])
def test_a_crash_while_provisioning_leaves_no_half_made_account(tmp_path, strict, point, in_namespace):
    name = unique("vic")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name], env={"FEDLOGIN_FAILPOINT": point})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE, "x"])
        # The daemon died mid-conversation: pam_fedlogin gives AUTHINFO_UNAVAIL, and
        # pam_unix, which has the last word, refuses (the half-made account is locked).
        assert codes in ([pc.PAM_USER_UNKNOWN], [pc.PAM_AUTH_ERR]), a.transcript
        assert a.prompts[-1] == "Password: "
        assert w.fedlogind.wait(10) == -signal.SIGKILL
        w.restart_fedlogind(env={})
        w.fedlogind.wait_for_log("fedlogind ready")
        assert passwd_entry(name) is None
        assert name not in open("/etc/group").read()
        # The user simply signs in again, and the binding is reported once.
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert len(w.wait_reports(name)) == 1
    finally:
        w.stop()
