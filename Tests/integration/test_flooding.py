"""No local user can starve fedlogind or the directory service: a non-root
user holds 2000 connections to one of their sockets (both are open to
everyone) and keeps opening them again as they are closed; root's PAM
requests are still served (a locked account stays refused: a starved
fedlogind would fail open to pam_unix), a first login still works, NSS
lookups by another user still get their answer, and the flood's connections
are closed by the idle timeout once it stops (docs/security.md)."""
import json
import os
import resource
import struct
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

import pamclient as pc
import wire
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
HELD = 2000
# systemd's default soft limit of open files for a service without LimitNOFILE=.
DAEMON_NOFILE = 1024

# Run as uid 65534: opens HELD connections, and while stdin says nothing
# opens again (every 0.5 s) the ones the server closed. After a line on
# stdin it only holds what is open and reports when the server has closed
# every one (or, after a minute, how many are still open). Prints JSON lines.
FLOOD = r"""
import json, os, select, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
live, refused_connects, closed = {}, 0, 0
def open_one():
    global refused_connects
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except BlockingIOError:
        pass
    except OSError:
        refused_connects += 1
        s.close()
        return
    live[s.fileno()] = s
def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n"); sys.stdout.flush()
for _ in range(n):
    open_one()
say(event="ready", open=len(live))
p = select.poll()
for fd in live: p.register(fd, select.POLLIN)
p.register(0, select.POLLIN)
holding, last_reopen, opened_total = False, time.time(), len(live)
while True:
    for fd, ev in p.poll(100):
        if fd == 0:
            sys.stdin.readline(); holding = time.time(); p.unregister(0)
            say(event="holding", open=len(live))
            continue
        s = live.pop(fd, None)
        if s is None: continue
        p.unregister(fd)
        try:
            s.recv(1)
        except OSError:
            pass
        s.close(); closed += 1
    if holding and not live:
        say(event="all-closed", closed=closed, opened=opened_total); break
    if holding and time.time() - holding > 60:
        say(event="still-open", open=len(live), closed=closed); break
    if not holding and time.time() - last_reopen >= 0.5 and len(live) < n:
        before = set(live)
        while len(live) < n and refused_connects < 10**6:
            k = len(live); open_one()
            if len(live) == k: break
        for fd in set(live) - before:
            p.register(fd, select.POLLIN); opened_total += 1
        last_reopen = time.time()
"""


def _as_uid(uid):
    def drop():
        resource.setrlimit(resource.RLIMIT_NOFILE, (HELD + 200, HELD + 200))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return drop


class Flood:
    def __init__(self, socket_path):
        self.p = subprocess.Popen(["/usr/bin/python3", "-c", FLOOD, str(socket_path), str(HELD)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  preexec_fn=_as_uid(65534))
        self.ready = self.event()
        assert self.ready["event"] == "ready" and self.ready["open"] == HELD, self.ready

    def event(self):
        line = self.p.stdout.readline()
        assert line, "the flooding process ended"
        return json.loads(line)

    def hold(self):
        """Stops opening connections again; returns when the server has closed every held one."""
        self.p.stdin.write("hold\n")
        self.p.stdin.flush()
        holding = self.event()
        assert holding["event"] == "holding"
        done = self.event()
        assert done["event"] == "all-closed", done
        return holding, done

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)


@contextmanager
def daemon_file_limit():
    """Daemons started inside get systemd's default soft limit of open files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (DAEMON_NOFILE, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


_NSS_CLIENT = (
    "import socket,struct,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); s.sendall(bytes.fromhex(sys.argv[2]))\n"
    "h=s.recv(4, socket.MSG_WAITALL)\n"
    "if len(h)<4: sys.stdout.write('closed'); sys.exit(0)\n"
    "n=struct.unpack('>I', h)[0]; sys.stdout.write(s.recv(n, socket.MSG_WAITALL).hex())\n")


def nss_lookup_as(uid, socket_path, name):
    """GETPWNAM from a process of `uid`: ("passwd", name, uid), ("notfound",),
    ("result", status) or ("closed",)."""
    out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/usr/bin/python3",
                          "-c", _NSS_CLIENT, str(socket_path), wire.frame(0x10, name).hex()],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    if out.stdout == "closed":
        return ("closed",)
    body = bytes.fromhex(out.stdout)
    if body[1] == 0x90:
        (ln,) = struct.unpack(">H", body[2:4])
        got = body[4:4 + ln].decode()
        (puid,) = struct.unpack(">I", body[4 + ln:8 + ln])
        return ("passwd", got, puid)
    if body[1] == 0x92:
        return ("notfound",)
    return ("result", body[2])


def make_world(base, strict, users, **kw):
    # Everything under /run/fedlogin-test, so uid 65534 can reach both sockets.
    base.mkdir(mode=0o755, parents=True)
    with daemon_file_limit():
        return World(base, strict, users, config={"daemon": {"socket": str(base / "fedlogind.sock")}}, **kw)


def first_login(w, name):
    codes, a = w.login(name, ["", PASSCODE, PASSCODE])
    assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript


def lock_out(w, name):
    codes, a = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
    assert codes == [pc.PAM_AUTH_ERR], a.transcript
    codes, _ = w.login(name, [PASSCODE], steps=("authenticate",))
    assert codes == [pc.PAM_PERM_DENIED]


def test_a_user_holding_2000_connections_to_fedlogind_starves_nobody(strict, in_namespace):
    locked, fresh, other = unique("fllock"), unique("flnew"), unique("flnss")
    for n in (locked, fresh, other):
        strict.add_user(n, email=f"{n}@example.test")
    w = make_world(Path("/run/fedlogin-test") / unique("flood"), strict, [locked, fresh, other],
                   policy={"lockout": {"max_attempts": 1, "duration": 600}})
    flood = None
    try:
        first_login(w, locked)
        lock_out(w, locked)
        flood = Flood(w.socket)
        for _ in range(3):
            # Root's requests through libpam are answered by fedlogind: the
            # lock holds (pam_unix alone would let the passcode in).
            codes, a = w.login(locked, [PASSCODE], steps=("authenticate",))
            assert codes == [pc.PAM_PERM_DENIED], a.transcript
            codes, _ = w.login(locked, [], steps=("acct_mgmt",))
            assert codes == [pc.PAM_PERM_DENIED]
        # A first login (fedlogind, the directory and the IdP) while the flood goes on.
        first_login(w, fresh)
        assert passwd_entry(fresh) is not None
        assert w.ctl("users").returncode == 0
        # Another user's NSS lookups get their answer.
        for _ in range(3):
            e = nss_lookup_as(65533, w.socket, other)
            assert e[0] == "passwd" and e[1] == other, e
        # Once the flood stops opening new ones, the idle timeout closes what it holds.
        holding, done = flood.hold()
        assert done["closed"] >= HELD
        assert "connections refused: too many at once from non-root peers (uid 65534:" in w.logs()
    finally:
        if flood:
            flood.stop()
        w.stop()


def test_a_user_holding_2000_connections_to_the_directory_starves_nobody(strict, in_namespace):
    fresh, other = unique("fldnew"), unique("fldnss")
    for n in (fresh, other):
        strict.add_user(n, email=f"{n}@example.test")
    w = make_world(Path("/run/fedlogin-test") / unique("dflood"), strict, [fresh, other])
    flood = None
    try:
        flood = Flood(w.directoryd.socket)
        # fedlogind (root) still gets the directory's answers: an NSS lookup
        # that needs the directory, and a first login.
        e = nss_lookup_as(65533, w.socket, other)
        assert e[0] == "passwd" and e[1] == other, e
        first_login(w, fresh)
        assert passwd_entry(fresh) is not None
        # A non-root client's own request is still answered on an admitted connection.
        body = json.dumps({"op": "policy", "device_id": "demo-device-1"}).encode()
        # (uid 65533 is not the one flooding.)
        out = subprocess.run(["setpriv", "--reuid=65533", "--regid=65533", "--clear-groups", "/usr/bin/python3",
                              "-c", wire._CLIENT, str(w.directoryd.socket), (struct.pack(">I", len(body)) + body).hex()],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(bytes.fromhex(out.stdout))["ok"] is True
        # Idle non-root connections are closed.
        holding, done = flood.hold()
        assert done["closed"] >= HELD
        assert "connections refused: too many at once from non-root peers (uid 65534:" in w.logs()
    finally:
        if flood:
            flood.stop()
        w.stop()


def reservations(w):
    import sqlite3
    state = Path(w.tmp) / "state" / "state.sqlite"
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return db.execute("SELECT username, uid, by_root FROM reservation ORDER BY uid").fetchall()


_SUID_LIKE = (
    "import os,socket,struct,sys\n"
    "os.setresuid(65534, 0, 0)\n"  # a set-user-ID root program run by uid 65534 (su)
    "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(bytes.fromhex(sys.argv[2]))\n"
    "n=struct.unpack('>I', s.recv(4, socket.MSG_WAITALL))[0]; sys.stdout.write(s.recv(n, socket.MSG_WAITALL).hex())\n")


def test_a_non_root_walk_of_the_directory_cannot_hold_the_uid_range(strict, in_namespace):
    walked = [unique("flwalk") for _ in range(12)]
    later, by_root = unique("flroot"), unique("flrootnss")
    for n in (*walked, later, by_root):
        strict.add_user(n, email=f"{n}@example.test")
    # 20 uids: lookups by non-root callers hold at most a quarter of them (5).
    base = Path("/run/fedlogin-test") / unique("walk")
    base.mkdir(mode=0o755, parents=True)
    w = World(base, strict, [*walked, later, by_root],
              config={"daemon": {"socket": str(base / "fedlogind.sock")},
                      "accounts": {"uid_min": 79900, "uid_max": 79919}})
    try:
        # su run by a user asks as root (effective uid) but for that user (real uid).
        out = subprocess.run(["/usr/bin/python3", "-c", _SUID_LIKE, str(w.socket), wire.frame(0x10, walked[0]).hex()],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert bytes.fromhex(out.stdout)[1] == 0x90
        assert [r[2] for r in reservations(w)] == [0]
        answers = [nss_lookup_as(65534, w.socket, n) for n in walked[1:]]
        given = [a for a in answers if a[0] == "passwd"]
        assert len(given) == 4, answers
        # The others fail closed (UNAVAIL), never an entry with a uid nobody keeps.
        assert all(a == ("result", 4) for a in answers if a[0] != "passwd"), answers
        held = reservations(w)
        assert len(held) == 5 and all(r[2] == 0 for r in held), held
        # Asked again, a name already reserved keeps its entry.
        assert nss_lookup_as(65534, w.socket, given[0][1]) == given[0]
        # Root's lookup of it (sshd's, before a sign-in), answered from the
        # daemon's cache, makes the reservation root's: kept until the account exists.
        body = wire.exchange(w.socket, wire.frame(0x10, given[0][1]))
        assert body[1] == 0x90, body
        assert [r[2] for r in reservations(w) if r[0] == given[0][1]] == [1]
        assert nss_lookup_as(65534, w.socket, given[0][1]) == given[0]

        # Root's lookups are not limited by these (sshd, login).
        body = wire.exchange(w.socket, wire.frame(0x10, by_root))
        assert body[1] == 0x90, body
        held = reservations(w)
        assert len(held) == 6 and [r[2] for r in held if r[0] in (by_root, given[0][1])] == [1, 1]
        # A new non-root one fits again (the promoted one no longer counts).
        assert nss_lookup_as(65534, w.socket, walked[-1])[0] == "passwd"
        # A first login started by root gets its uid, in the range.
        first_login(w, later)
        uid = int(passwd_entry(later)[2])
        assert 79900 <= uid <= 79919
        assert "no uid reserved" in w.logs()
    finally:
        w.stop()
