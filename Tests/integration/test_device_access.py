"""Who may use this device (the directory's `access` answer), through the
real PAM stack and fedlogind's NSS answers: an unbound user is refused in
every case; with `self_service` false only users an administrator
associated with the device make a first login, and a binding the device
reports associates nobody. Sign-ins of one user run side by side: a client
that opened a login and never signs in blocks no one."""
import json
import socket
import struct
import threading
import time

import pytest

import pamclient as pc
from strict_idp import browser_sign_in
from test_nss_daemon import GETPWNAM, ask
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
DEVICE = "demo-device-1"


def world(tmp_path, strict, names, **kw):
    for n in names:
        strict.add_user(n, email=f"{n}@example.test", name=n.capitalize())
    sock = f"/run/fedlogin-test/{unique('acc')}.sock"
    return World(tmp_path, strict, names, config={"daemon": {"socket": sock}}, **kw)


def directory(w, request):
    """One directory-protocol request as root; the decoded answer."""
    body = json.dumps(request).encode()
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(w.directoryd.socket))
        c.sendall(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
        return json.loads(c.recv(n, socket.MSG_WAITALL))


def test_an_unbound_user_is_refused_a_first_login_and_gets_no_nss_entry(tmp_path, strict, in_namespace):
    name, other = unique("unb"), unique("unbok")
    w = world(tmp_path, strict, [name, other])
    w.rewrite_directory([name, other], unbound={DEVICE: [name]})
    try:
        assert directory(w, {"op": "access", "user": name, "device_id": DEVICE})["access"] == {
            "associated": False, "unbound": True, "disabled": False, "self_service": True}
        assert ask(w, GETPWNAM, name) == ("notfound",)
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_PERM_DENIED], a.transcript
        assert a.urls == []  # refused before any sign-in starts
        assert f"An administrator removed {name} from this machine. Ask your administrator." in a.messages(pc.PAM_ERROR_MSG)
        assert passwd_entry(name) is None
        # Self-service still lets anyone else in.
        assert ask(w, GETPWNAM, other)[0] == "passwd"
        codes, a = w.login(other, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert "unbound" in w.logs()
    finally:
        w.stop()


def test_without_self_service_only_associated_users_log_in(tmp_path, strict, in_namespace):
    member, outsider = unique("assoc"), unique("outsider")
    w = world(tmp_path, strict, [member, outsider])
    w.rewrite_directory([member, outsider], policy={"self_service": False}, devices={DEVICE: [member]})
    try:
        assert ask(w, GETPWNAM, outsider) == ("notfound",)
        codes, a = w.login(outsider, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_PERM_DENIED], a.transcript
        assert a.urls == []
        assert any("is not allowed to use this machine" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert passwd_entry(outsider) is None

        assert ask(w, GETPWNAM, member)[0] == "passwd"
        codes, a = w.login(member, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert len(w.wait_reports(member)) == 1

        # A binding the device reports associates nobody without self-service.
        report = dict(w.reports(member)[0], key="k-" + outsider, username=outsider, local_username=outsider,
                      email=f"{outsider}@example.test")
        assert directory(w, {"op": "report_binding", "binding": report})["ok"] is True
        users = directory(w, {"op": "device_users", "device_id": DEVICE})["users"]
        assert outsider not in users and member in users
        assert directory(w, {"op": "access", "user": outsider, "device_id": DEVICE})["access"]["associated"] is False
        codes, a = w.login(outsider, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_PERM_DENIED], a.transcript
        # With self-service the same report does associate.
        w.rewrite_directory([member, outsider], policy={"self_service": True}, devices={DEVICE: [member]})
        assert directory(w, {"op": "access", "user": outsider, "device_id": DEVICE})["access"]["associated"] is True
    finally:
        w.stop()


def test_an_idle_sign_in_does_not_block_another_first_login_of_the_user(tmp_path, strict, in_namespace):
    """A client that starts a login and never signs in (an idle SSH
    connection) holds no lock: the user's own login goes through meanwhile,
    and the idle one is then told the account exists."""
    name = unique("idle")
    w = world(tmp_path, strict, [name])
    release = threading.Event()
    shown = threading.Event()
    idle = {}

    def never_signs_in(url):
        shown.set()
        release.wait(60)

    def idle_login():
        idle["result"] = w.login(name, [""], browser=never_signs_in)

    t = threading.Thread(target=idle_login)
    try:
        t.start()
        assert shown.wait(30)
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert passwd_entry(name) is not None
        # The idle login signs in late: the account is there, it makes none.
        release.set()
        t.join(60)
        codes, a = idle["result"]
        assert pc.PAM_SUCCESS not in codes, a.transcript
        assert len(w.wait_reports(name)) == 1
    finally:
        release.set()
        t.join(60)
        w.stop()


def test_a_late_verified_sign_in_is_told_the_account_now_exists(tmp_path, strict, in_namespace):
    name = unique("late")
    w = world(tmp_path, strict, [name])
    release = threading.Event()
    shown = threading.Event()
    late = {}

    def signs_in_late(url):
        shown.set()
        release.wait(60)
        return browser_sign_in(url, name)

    def late_login():
        late["result"] = w.login(name, ["", PASSCODE, PASSCODE], browser=signs_in_late)

    t = threading.Thread(target=late_login)
    try:
        t.start()
        assert shown.wait(30)
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        release.set()
        t.join(60)
        codes, a = late["result"]
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert any(f"The account {name} now exists on this machine" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert len(w.wait_reports(name)) == 1
        time.sleep(0.5)
        assert len(w.reports(name)) == 1
    finally:
        release.set()
        t.join(60)
        w.stop()


def test_an_unbound_user_cannot_reset_the_passcode(tmp_path, strict, in_namespace):
    name = unique("unbreset")
    w = world(tmp_path, strict, [name])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        w.rewrite_directory([name], unbound={DEVICE: [name]})
        codes, a = w.login(name, ["forgotten", "reset", "", "New-Passcode7", "New-Passcode7"], steps=("authenticate",))
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert a.urls == []  # no sign-in starts
        assert f"An administrator removed {name} from this machine. Ask your administrator." in a.messages(pc.PAM_ERROR_MSG)
    finally:
        w.stop()
