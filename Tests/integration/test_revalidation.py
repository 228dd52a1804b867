"""The check at each login of a managed account (docs/accounts.md, "The check
at each login"), through the real PAM stack: the account phase asks the
directory about the user within signin.revalidate_timeout; a user it
disabled is refused and the account locked at once, as a sync locks it,
whether the login came with the passcode (libpam, login(1), sshd
keyboard-interactive) or an SSH key (sshd publickey). The lock holds with
fedlogind stopped (pam_unix: /etc/shadow) and with the directory down. A
directory that does not answer costs the bound once per revalidate_cache,
and the login goes on from local state."""
import socket
import threading
import time
from pathlib import Path

import pytest

import nested
import pamclient as pc
import sandbox
from messageids import logged
from console import Console
from sshd import key_login, ssh_login, socket_dir, world_ssh, write_key
from world import World, passwd_entry, unique

pytestmark = [
    pytest.mark.namespace,
    pytest.mark.skipif(not nested.nss_module().exists(), reason=f"{nested.nss_module()} is not built"),
]

PASSCODE = "Correct-Horse9"


def shadow_fields(name):
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f
    return None


def locked_in_shadow(name):
    f = shadow_fields(name)
    return f[1].startswith("!") and f[7] == "1"


def make_world(tmp_path, strict, names, signin=None):
    for n in names:
        strict.add_user(n, email=f"{n}@example.test", name=n.capitalize())
    config = {"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}}
    if signin:
        config["signin"] = signin
    return World(tmp_path, strict, [{"username": n} for n in names], config=config)


def first_login(w, name):
    codes, a = w.login(name, ["", PASSCODE, PASSCODE])
    assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    assert w.wait_reports(name)


def user_row(w, name):
    return next((u for u in w.ctl_json("users")["users"] if u["username"] == name), None)


class SilentDirectory:
    """A directory socket that takes connections and never answers."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.accepted = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except (socket.timeout, OSError):
                continue

    def close(self):
        self.done.set()
        self.thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()
        self.path.unlink(missing_ok=True)


def test_a_disabled_user_is_refused_at_the_next_login_and_locked_and_the_lock_holds_without_fedlogind(
        tmp_path, strict, in_namespace):
    name = unique("revdis")
    w = make_world(tmp_path, strict, [name], signin={"revalidate_cache": 0})
    try:
        first_login(w, name)
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        w.rewrite_directory([{"username": name, "disabled": True}])
        # No sync: the account phase asks the directory itself.
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_PERM_DENIED], a.transcript
        assert f"The account {name} is locked: it is disabled in the directory. Ask your administrator." in a.messages(
            pc.PAM_ERROR_MSG), a.transcript
        assert locked_in_shadow(name)  # as sync locks: password locked, account expired
        assert user_row(w, name)["locked"] == "disabled in the directory"
        logs = w.logs()
        logged(logs, "account locked at login: disabled in the directory", "accountLocked")
        logged(logs, "login refused: the directory says the account is disabled in the directory", "loginRevoked")
        # fedlogind stopped: pam_unix refuses from /etc/shadow, the passcode
        # and the account phase alone (an SSH key's path) alike.
        w.fedlogind.stop()
        codes, _ = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_AUTH_ERR]
        codes, _ = w.login(name, [], steps=("acct_mgmt",))
        assert codes == [pc.PAM_ACCT_EXPIRED]
        # The lock is sync's own: kept while the user is disabled, lifted when the directory allows the user again.
        w.restart_fedlogind()
        assert w.ctl_json("sync")["locked"] == []
        w.rewrite_directory([{"username": name}])
        assert w.ctl_json("sync")["unlocked"] == [name]
        assert not locked_in_shadow(name)
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


def test_removed_and_unassociated_users_are_refused_at_the_next_login(tmp_path, strict, in_namespace):
    gone, away = unique("revgone"), unique("revaway")
    w = make_world(tmp_path, strict, [gone, away], signin={"revalidate_cache": 0})
    try:
        first_login(w, gone)
        first_login(w, away)
        # gone leaves the directory; away is unbound from this device.
        w.rewrite_directory([{"username": away}], unbound={"demo-device-1": [away]})
        codes, a = w.login(gone, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_PERM_DENIED], a.transcript
        assert f"The account {gone} is locked: it is no longer in the directory. Ask your administrator." in a.messages(
            pc.PAM_ERROR_MSG)
        codes, a = w.login(away, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_PERM_DENIED], a.transcript
        assert f"An administrator removed {away} from this machine. Ask your administrator." in a.messages(pc.PAM_ERROR_MSG)
        assert locked_in_shadow(gone) and locked_in_shadow(away)
        assert user_row(w, gone)["locked"] == "no longer in the directory"
        assert user_row(w, away)["locked"] == "no longer associated with this machine"
        assert passwd_entry(gone) is not None  # never deleted
    finally:
        w.stop()


def test_a_silent_directory_costs_the_bound_once_and_the_login_goes_on(tmp_path, strict, in_namespace):
    name = unique("revsil")
    w = make_world(tmp_path, strict, [name])  # the defaults: 300 ms, kept 5 minutes
    silent = None
    try:
        first_login(w, name)
        w.directoryd.stop()
        silent = SilentDirectory(w.directoryd.socket)
        w.restart_fedlogind()  # the answers it kept are in memory only
        time.sleep(0.5)
        before = len(silent.accepted)  # fedlogind's own start (the outbox) may have asked
        t0 = time.monotonic()
        codes, a = w.login(name, [], steps=("acct_mgmt",))
        took = time.monotonic() - t0
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert 0.3 <= took < 5, took
        assert len(silent.accepted) - before == 2  # lookup and access, at once
        logged(w.logs(), "the directory did not answer about the user: no answer within 300 ms; "
               "the login goes on from local state", "revalidationUnanswered")
        # Kept: the next logins neither ask nor wait (answered from memory).
        for _ in range(3):
            codes, a = w.login(name, [PASSCODE])
            assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert len(silent.accepted) - before == 2
        assert "the directory was not asked about the user: it did not answer" in w.logs()
        # The directory gone altogether (nothing listens): the same.
        silent.close()
        silent = None
        w.restart_fedlogind()
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert not locked_in_shadow(name)
    finally:
        if silent is not None:
            silent.close()
        w.stop()


def test_over_ssh_a_disabled_user_is_refused_with_a_key_and_with_the_passcode(tmp_path, strict, in_namespace):
    keyed, typed = unique("revkey"), unique("revkbd")
    w = make_world(tmp_path, strict, [keyed, typed], signin={"revalidate_cache": 0})
    try:
        first_login(w, keyed)
        first_login(w, typed)
        key = write_key(tmp_path, keyed)
        extra = ["PubkeyAuthentication yes", "AuthenticationMethods publickey keyboard-interactive"]
        with world_ssh(w, extra_config=extra) as sshd:
            assert key_login(sshd.port, keyed, key) == f"{keyed}\n", sshd.log_text()[-2000:]
            r = ssh_login(sshd.port, typed, [PASSCODE])
            assert r.ok, (r.error, r.text())
            # The directory down: both go on from local state, the journal says so.
            w.directoryd.stop()
            assert key_login(sshd.port, keyed, key) == f"{keyed}\n"
            r = ssh_login(sshd.port, typed, [PASSCODE])
            assert r.ok, (r.error, r.text())
            assert w.fedlogind.log_text().count("the login goes on from local state") >= 2
            w.directoryd = sandbox.start_directoryd(w.tmp, w.directory_file)

            w.rewrite_directory([{"username": keyed, "disabled": True}, {"username": typed, "disabled": True}])
            # The key alone: sshd runs the account phase, fedlogind asks the
            # directory, refuses and locks; the reason is in the journal.
            assert key_login(sshd.port, keyed, key) is None
            assert locked_in_shadow(keyed)
            assert "account locked at login: disabled in the directory" in w.fedlogind.log_text()
            # The passcode over keyboard-interactive: pam_unix takes it, the account phase refuses.
            r = ssh_login(sshd.port, typed, [PASSCODE, PASSCODE, PASSCODE])
            assert not r.ok, r.text()
            assert locked_in_shadow(typed)
            assert user_row(w, typed)["locked"] == "disabled in the directory"

            # Bypass attempts: the directory down, then fedlogind stopped too.
            w.directoryd.stop()
            assert key_login(sshd.port, keyed, key) is None
            w.fedlogind.stop()
            assert key_login(sshd.port, keyed, key) is None
            r = ssh_login(sshd.port, typed, [PASSCODE, PASSCODE, PASSCODE])
            assert not r.ok, r.text()
    finally:
        w.stop()


def test_login_at_the_console_tells_a_disabled_user_why(tmp_path, strict, in_namespace):
    name = unique("revcon")
    w = make_world(tmp_path, strict, [name], signin={"revalidate_cache": 0})
    try:
        first_login(w, name)
        w.rewrite_directory([{"username": name, "disabled": True}])
        with Console(tmp_path, (w.confdir / "login").read_text(), nss=True, socket_dir=w.socket.parent) as con:
            con.start(["login", name])
            con.answer("Password: ", PASSCODE, timeout=15)
            con.expect(f"The account {name} is locked: it is disabled in the directory. Ask your administrator.", timeout=15)
            assert "$ " not in con.screen().split("Ask your administrator.")[-1]
        assert locked_in_shadow(name)
    finally:
        w.stop()
