"""fedlogind's NSS answers (docs/protocol.md, NSS_*), spoken as raw frames
by an unprivileged client: directory users who may log in here and have no
local account yet get a passwd and a group entry whose uid is reserved and
is the one their account gets; everyone else is NOTFOUND; a directory that
cannot be reached is RESULT UNAVAIL."""
import struct

import pytest

import wire
from world import World, passwd_entry, unique, useradd

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"

GETPWNAM, GETPWUID, GETGRNAM, GETGRGID = 0x10, 0x11, 0x12, 0x13
RESULT, PASSWD, GROUP, NOTFOUND = 0x86, 0x90, 0x91, 0x92


def world(tmp_path, idp, users, **kw):
    # A socket an unprivileged client can reach.
    sock = f"/run/fedlogin-test/{unique('nss')}.sock"
    return World(tmp_path, idp, users, config={"daemon": {"socket": sock}}, **kw)


def strings(body: bytes, at: int, n: int):
    out = []
    for _ in range(n):
        (ln,) = struct.unpack(">H", body[at:at + 2])
        out.append(body[at + 2:at + 2 + ln].decode())
        at += 2 + ln
    return out, at


def ask(world, msg_type, arg):
    if isinstance(arg, int):
        data = bytes([1, msg_type]) + struct.pack(">I", arg)
        data = struct.pack(">I", len(data)) + data
    else:
        data = wire.frame(msg_type, arg)
    body = wire.as_nobody(world.socket, data)
    assert body[0] == 1
    kind = body[1]
    if kind == PASSWD:
        (name,), at = strings(body, 2, 1)
        uid, gid = struct.unpack(">II", body[at:at + 8])
        (gecos, home, shell), at = strings(body, at + 8, 3)
        return ("passwd", name, uid, gid, gecos, home, shell)
    if kind == GROUP:
        (name,), at = strings(body, 2, 1)
        (gid,) = struct.unpack(">I", body[at:at + 4])
        (members,), _ = strings(body, at + 4, 1)
        return ("group", name, gid, members)
    if kind == NOTFOUND:
        return ("notfound",)
    if kind == RESULT:
        return ("result", body[2])
    raise AssertionError(f"unexpected reply type {kind:#x}")



def test_directory_user_is_announced_with_the_uid_the_account_gets(tmp_path, strict, in_namespace):
    name = unique("nssa")
    strict.add_user(name, email=f"{name}@example.test", name="Nss User")
    w = world(tmp_path, strict, [{"username": name, "display_name": "Nss: User"}])
    try:
        e = ask(w, GETPWNAM, name)
        assert e[0] == "passwd", e
        _, n, uid, gid, gecos, home, shell = e
        assert n == name and gid == uid and 70000 <= uid <= 79999
        assert gecos == "Nss  User"  # no ':' in a GECOS field
        assert home == f"/home/{name}" and shell == "/bin/bash"
        # Stable: the same answer again, by uid too, and the private group.
        assert ask(w, GETPWNAM, name) == e
        assert ask(w, GETPWUID, uid) == e
        assert ask(w, GETGRNAM, name) == ("group", name, uid, "")
        assert ask(w, GETGRGID, uid) == ("group", name, uid, "")
        # The reservation survives a restart (it is in the state database).
        w.restart_fedlogind()
        assert ask(w, GETPWNAM, name) == e

        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [0, 0], a.transcript
        entry = passwd_entry(name)
        assert int(entry[2]) == uid and int(entry[3]) == uid
        # Now local: the files module answers, fedlogind no longer does.
        assert ask(w, GETPWNAM, name) == ("notfound",)
        assert ask(w, GETPWUID, uid) == ("notfound",)
        assert ask(w, GETGRNAM, name) == ("notfound",)
    finally:
        w.stop()


def test_two_users_get_different_uids_and_a_directory_uid_is_kept(tmp_path, strict, in_namespace):
    a, b, c = unique("nssb"), unique("nssc"), unique("nssd")
    w = world(tmp_path, strict, [{"username": a}, {"username": b}, {"username": c, "uid": 81234}])
    try:
        ua, ub = ask(w, GETPWNAM, a)[2], ask(w, GETPWNAM, b)[2]
        assert ua != ub
        assert ask(w, GETPWNAM, c)[2:4] == (81234, 81234)
    finally:
        w.stop()


def test_nobody_else_is_answered(tmp_path, strict, in_namespace):
    local, disabled, unknown = unique("nsslocal"), unique("nssdis"), unique("nssunk")
    useradd(local)
    w = world(tmp_path, strict, [{"username": local}, {"username": disabled, "disabled": True},
                                 {"username": "daemon"}, {"username": "root"}])
    try:
        for name in (local, disabled, unknown, "root", "daemon", "Bad:Name", "x" * 40, ""):
            assert ask(w, GETPWNAM, name) == ("notfound",), name
            assert ask(w, GETGRNAM, name) == ("notfound",), name
        for uid in (0, 1, 65534, 70000):
            assert ask(w, GETPWUID, uid) == ("notfound",), uid
            assert ask(w, GETGRGID, uid) == ("notfound",), uid
    finally:
        w.stop()


def test_a_directory_that_cannot_be_reached_is_unavailable_not_notfound(tmp_path, strict, in_namespace):
    name = unique("nssdown")
    w = world(tmp_path, strict, [{"username": name}])
    try:
        w.directoryd.stop()
        assert ask(w, GETPWNAM, name) == ("result", 4)  # UNAVAIL
        assert ask(w, GETGRNAM, name) == ("result", 4)
    finally:
        w.stop()


def test_a_user_routed_to_an_idp_not_set_up_here_is_not_announced(tmp_path, strict, in_namespace):
    name = unique("nssroute")
    w = world(tmp_path, strict, [{"username": name, "groups": ["eng"]}],
              policy={"routing": [{"group": "eng", "idp": "elsewhere"}]})
    try:
        assert ask(w, GETPWNAM, name) == ("notfound",)
    finally:
        w.stop()
