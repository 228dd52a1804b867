"""Faults around a first login, through the real parts: the directory down
while bindings pile up, an IdP that is slow or down, and a full state
directory. Each ends in nothing half-made, or in a complete account whose
binding the directory receives once."""
import json
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import time
from pathlib import Path

import pytest

import pamclient as pc
import sandbox
import wire
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
DEVICE = "demo-device-1"
CONTROL, CONTROL_REPLY, CONTROL_REPLY_PART = 0x20, 0xA0, 0xA1
NSS_GETPWNAM, NSS_PASSWD = 0x10, 0x90



def mount_tmpfs(path: Path, *options: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("mode=700", *options)), "tmpfs", str(path)], check=True)


def unmount(path: Path):
    subprocess.run(["umount", str(path)], check=False)


def control(w: World, op: str, timeout: float) -> tuple[bool, str]:
    """A CONTROL request as fedloginctl sends it, waiting up to `timeout`
    (a sync that creates many accounts takes a while). Returns (ok, the
    reply's JSON text, CONTROL_REPLY_PART pieces joined)."""
    frame = wire.frame(CONTROL, json.dumps({"op": op}))
    text = ""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(w.socket))
        s.sendall(frame)
        while True:
            n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
            body = s.recv(n, socket.MSG_WAITALL)
            if body[1] == CONTROL_REPLY_PART:
                (ln,) = struct.unpack(">H", body[2:4])
                text += body[4:4 + ln].decode()
                continue
            assert body[1] == CONTROL_REPLY, body[:2]
            (ln,) = struct.unpack(">H", body[3:5])
            return body[2] == 1, text + body[5:5 + ln].decode()


def status(w: World) -> dict:
    return w.ctl_json("status")


def wait_until(check, timeout: float, what: str, step: float = 0.5):
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(step)


# ---------------------------------------------------------------------------
# 1. The directory down while bindings are made
# ---------------------------------------------------------------------------

# Enough bindings that the outbox delivers them in several rounds through
# each fault; the cost is in making the accounts (~0.1 s each), so the
# property is proved with 100. bench/ makes 500 first logins at once.
BULK = 100


def test_directory_down_while_bindings_are_made(tmp_path, strict, in_namespace):
    """BULK accounts are bound while the directory cannot take a report; none
    is lost, and each binding reaches the directory once when it is back.

    The bindings are made the cheapest real way: one directory sync that
    pre-provisions the BULK users the directory associates with this device
    (`sync`, as `fedloginctl sync` sends it), which creates each account and
    queues its `bind` report exactly as a first login does. Making them needs
    the directory's lookups, and fedlogind has a single directory socket, so
    the directory cannot simply be off while they are made. The outage is
    therefore played in three forms a real directory goes through, all with
    the real fedlogin-directoryd:

    1. up but unable to keep reports: its state folder is a read-only mount,
       so every `report_binding` is refused while lookups still work; the
       the reports pile up in the outbox;
    2. gone: SIGKILL. fedlogind is restarted meanwhile (the outbox is in its
       state database);
    3. back, but hung at first: started again (state writable) and SIGSTOPped
       at once, so deliveries time out after `daemon.directory_timeout` while
       their frames wait in the socket; after SIGCONT the directory records
       those reports but its answers find no one, so fedlogind sends them
       again and the directory must treat them as duplicates.

    Then every report is acked: one report per account, action `bind`, and
    an empty outbox. Making the accounts takes most of the run time.
    """
    base = unique("bulk")
    names = [f"{base}n{i:04d}" for i in range(BULK)]
    store = Path(f"/run/fedlogin-test/{base}/directory-state")
    w = World(tmp_path, strict, names, devices={DEVICE: names},
              config={"daemon": {"sync_interval": 0, "directory_timeout": 1, "report_retry_max": 3}})
    mounted = False
    try:
        w.directoryd.stop()
        mount_tmpfs(store, "ro", "size=16m")
        mounted = True
        w.directoryd = sandbox.start_directoryd(w.tmp, w.directory_file, state_dir=store)

        # 1. The bindings are made; the directory refuses every report.
        ok, reply = control(w, "sync", timeout=900)
        assert ok, reply
        # The reply may be cut at 4 096 bytes:
        # the log and the passwd file say how the sync went.
        assert re.search(r"errors=0 .*directory sync done", w.fedlogind.log_text())
        local = {line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines()}
        assert local.issuperset(names)
        assert status(w)["pending_reports"] == BULK
        assert w.reports() == []
        assert "Read-only file system" in w.fedlogind.log_text()

        # 2. The directory is gone; fedlogind restarts with the queue pending.
        w.directoryd.kill9()
        seen = len(w.fedlogind.log_text())
        w.restart_fedlogind()
        wait_until(lambda: "cannot connect to" in w.fedlogind.log_text()[seen:], 30,
                   "delivery failing on the absent directory")
        assert status(w)["pending_reports"] == BULK

        # 3. Back with a writable store, hung first, then answering.
        subprocess.run(["mount", "-o", "remount,rw", str(store)], check=True)
        w.directoryd = sandbox.start_directoryd(w.tmp, w.directory_file, state_dir=store)
        w.directoryd.send_signal(signal.SIGSTOP)
        seen = len(w.fedlogind.log_text())
        wait_until(lambda: w.fedlogind.log_text()[seen:].count(" in time") >= 2, 30,
                   "delivery timing out on the hung directory")
        w.directoryd.send_signal(signal.SIGCONT)
        wait_until(lambda: status(w)["pending_reports"] == 0, 180, "empty outbox")

        assert w.ctl_json("outbox")["pending"] == []
        reports = w.reports()
        per_user = {}
        for rep in reports:
            per_user.setdefault(rep["local_username"], []).append(rep)
        assert sorted(per_user) == names
        assert all(len(v) == 1 and v[0]["action"] == "bind" for v in per_user.values())
        assert len(reports) == BULK
        dlog = w.directoryd.log_text()
        # Reports whose answer was lost came again and changed nothing.
        assert "binding report repeated (no effect)" in dlog
        assert dlog.count("binding recorded") == BULK
        # Stays so: nothing else is sent.
        time.sleep(2)
        assert len(w.reports()) == BULK
    finally:
        w.stop()
        if mounted:
            unmount(store)


# ---------------------------------------------------------------------------
# 2. An IdP that is slow or down during a first login
# ---------------------------------------------------------------------------

HTTP_TIMEOUT = 2  # signin.http_timeout in these tests
IDP_BUSY = "The sign-in service cannot be used right now. Try again later, or ask your administrator."


def nss_uid(w: World, name: str):
    """fedlogind's NSS answer for `name`, as sshd or su get it before PAM:
    the uid reserved for the user's account, or None."""
    body = wire.exchange(w.socket, wire.frame(NSS_GETPWNAM, name))
    if body[1] != NSS_PASSWD:
        return None
    (ln,) = struct.unpack(">H", body[2:4])
    return struct.unpack(">I", body[4 + ln:8 + ln])[0]


def assert_nothing_made(w: World, name: str):
    assert passwd_entry(name) is None
    assert not any(line.startswith(name + ":") for line in Path("/etc/group").read_text().splitlines())
    assert not os.path.exists(f"/home/{name}")
    assert name not in [u["username"] for u in w.ctl_json("users")["users"]]
    assert w.reports(name) == []


def test_an_idp_that_hangs_at_the_token_endpoint_ends_the_login_in_bounded_time(tmp_path, strict, in_namespace):
    name = unique("slowtoken")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name], config={"signin": {"http_timeout": HTTP_TIMEOUT}})
    try:
        uid = nss_uid(w, name)  # announced first, as sshd looks the user up
        assert uid is not None
        strict.delay("token", 30)
        start = time.monotonic()
        codes, a = w.login(name, [""])
        took = time.monotonic() - start
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert took < HTTP_TIMEOUT + 4, took
        assert strict.counts["token"] == 1
        assert a.messages(pc.PAM_ERROR_MSG) == [IDP_BUSY]
        assert re.search(r"token request at \S+/token failed: Operation timed out after \d+ milliseconds",
                         w.fedlogind.log_text())
        assert_nothing_made(w, name)
        assert nss_uid(w, name) == uid  # still a reservation, nothing more

        # The IdP answers again: the same login succeeds, with the announced uid.
        strict.delay("token", 0)
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert int(passwd_entry(name)[2]) == uid
        assert len(w.wait_reports(name)) == 1
    finally:
        w.stop()


@pytest.mark.parametrize("how", ["stopped", "hanging"])
def test_an_idp_down_at_discovery_is_authinfo_unavail_in_bounded_time(tmp_path, strict, how, in_namespace):
    name = unique("idpdown")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name], config={"signin": {"http_timeout": HTTP_TIMEOUT}})
    # pam_fedlogin.so alone, to see its own answer; then the real stack.
    alone = tmp_path / "fedlogin-alone.pam"
    alone.write_text("auth required pam_fedlogin.so\naccount required pam_permit.so\n")
    alone_confdir = sandbox.make_confdir(tmp_path / "alone", w.socket, stack=alone)
    if how == "stopped":
        strict.stop()
    else:
        strict.delay("discovery", 30)
    try:
        a = sandbox.sign_in_answerer(None, [])
        start = time.monotonic()
        codes, _ = pc.authenticate(alone_confdir, "login", name, a)
        took = time.monotonic() - start
        assert codes == [pc.PAM_AUTHINFO_UNAVAIL], a.transcript
        assert took < HTTP_TIMEOUT + 3, took
        assert a.messages(pc.PAM_ERROR_MSG) == [IDP_BUSY] and not a.urls and not a.prompts
        cause = "Couldn't connect to server|Connection refused" if how == "stopped" else "Operation timed out"
        assert re.search(rf"discovery at \S+ failed: .*({cause})", w.fedlogind.log_text())

        # Through the real stack pam_unix has the last word, and knows no such user.
        codes, a = w.login(name, ["x"], browser=None)
        assert codes == [pc.PAM_USER_UNKNOWN] and not a.urls
        assert a.messages(pc.PAM_ERROR_MSG)[0] == IDP_BUSY
        assert_nothing_made(w, name)
    finally:
        w.stop()


# ---------------------------------------------------------------------------
# 3. fedlogind's state directory full
# ---------------------------------------------------------------------------


def fill(path: Path):
    """Writes `path` until its filesystem has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 16
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as e:
                assert e.errno == 28, e  # ENOSPC
                chunk //= 2
    finally:
        os.close(fd)


def test_a_full_state_directory_refuses_the_first_login_and_leaves_nothing(tmp_path, strict, in_namespace):
    name = unique("diskfull")
    strict.add_user(name, email=f"{name}@example.test")
    state = Path(f"/run/fedlogin-test/{name}/state")
    mount_tmpfs(state, "size=2m")
    w = None
    try:
        w = World(tmp_path, strict, [name], config={"daemon": {"state_dir": str(state)}})
        filler = state / "filler"
        fill(filler)
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert a.messages(pc.PAM_ERROR_MSG) == [
            "Your account could not be created on this machine: the disk that holds fedlogin's state is full. "
            "Ask your administrator."]
        assert "state database: the disk is full" in w.fedlogind.log_text()
        assert_nothing_made(w, name)

        # Space again: the same login succeeds, the database is sound, the binding arrives once.
        filler.unlink()
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert passwd_entry(name) is not None and os.path.isdir(f"/home/{name}")
        db = sqlite3.connect(f"file:{state / 'state.sqlite'}?mode=ro", uri=True)
        try:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
            assert db.execute("select state from account where username = ?", (name,)).fetchone() == ("active",)
        finally:
            db.close()
        assert len(w.wait_reports(name)) == 1
        time.sleep(2)
        assert len(w.reports(name)) == 1
        assert w.ctl_json("outbox")["pending"] == []
    finally:
        if w is not None:
            w.stop()
        unmount(state)


def test_fedlogin_directoryd_answers_requests_sent_without_waiting_in_order(tmp_path):
    """The directory protocol answers any number of requests on a
    connection, in order. A client that sends 200 at once (more than one
    read's worth, while the first ones run) gets 200 answers, each the
    answer to its own request."""
    directory = sandbox.write_directory(tmp_path / "directory.json", ["alice", "bob"])
    d = sandbox.start_directoryd(tmp_path, directory)
    c = socket.socket(socket.AF_UNIX)
    try:
        c.settimeout(10)
        c.connect(str(d.socket))
        asked = [("alice", "bob", "nobody")[i % 3] + ("x" * 200 if i % 3 == 2 else "") for i in range(200)]
        frames = b""
        for name in asked:
            body = json.dumps({"op": "lookup", "user": name}).encode()
            frames += struct.pack(">I", len(body)) + body
        c.sendall(frames)
        for name in asked:
            n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
            answer = json.loads(c.recv(n, socket.MSG_WAITALL))
            assert answer["ok"] is True
            assert answer.get("user", {}).get("username") == (None if name.startswith("nobody") else name)
    finally:
        c.close()
        d.stop()


def test_fedlogin_directoryd_stops_although_clients_keep_connections_open(tmp_path):
    """fedlogind keeps its connections to fedlogin-directoryd open between
    requests. A stop (SIGTERM: systemctl stop or restart) ends the idle ones
    at once; without that it would wait for its clients until systemd's stop
    timeout killed it."""
    directory = sandbox.write_directory(tmp_path / "directory.json", ["alice"])
    d = sandbox.start_directoryd(tmp_path, directory)
    kept = []
    try:
        for _ in range(3):
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(10)
            c.connect(str(d.socket))
            body = json.dumps({"op": "lookup", "user": "alice"}).encode()
            c.sendall(struct.pack(">I", len(body)) + body)
            n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
            assert json.loads(c.recv(n, socket.MSG_WAITALL))["user"]["username"] == "alice"
            kept.append(c)
        os.kill(d.pid, signal.SIGTERM)
        # Ends with the idle connections closed, long before any stop timeout.
        assert d.popen.wait(timeout=10) == 0, d.log_text()
        for c in kept:
            assert c.recv(1) == b"", "the kept connection was closed by the server"
    finally:
        for c in kept:
            c.close()
        d.stop()
