"""fedlogin where people log in, through the real programs: a first SSH
login of a directory user who is not local yet (sshd, the NSS module, the
device grant), then the passcode; a first console login(1) under tmux, then
the passcode; su to a fedlogin account. sshd, login and su run in nested
namespaces with the fedlogin PAM stack (pam/fedlogin.pam) and
libnss_fedlogin.so.2 in nsswitch.conf."""
import os
import re
import signal
import stat
import time

import pytest

import nested
from console import Console, login_shell
from sshd import SignInAnswerer, socket_dir, ssh_login, world_ssh
from strict_idp import browser_sign_in
from world import World, passwd_entry, unique, useradd

pytestmark = [
    pytest.mark.namespace,
    pytest.mark.skipif(not nested.nss_module().exists(), reason=f"{nested.nss_module()} is not built"),
]

PASSCODE = "Correct-Horse9"



def device_browser(sub):
    """The user on their phone: opens the address with the code filled in."""
    def browse(url):
        if "user_code=" in url:
            return browser_sign_in(url, sub)
    return browse


def world(tmp_path, strict, names, **kw):
    for n in names:
        strict.add_user(n, email=f"{n}@example.test", name=n.capitalize())
    return World(tmp_path, strict, names, config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}}, **kw)


def test_first_ssh_login_of_a_directory_user_then_the_passcode(tmp_path, strict, in_namespace):
    name, stranger = unique("sshfirst"), unique("sshstranger")
    w = world(tmp_path, strict, [name])
    try:
        with world_ssh(w) as sshd:
            announced = sshd.run_in_ns(["getent", "passwd", name]).stdout
            uid = int(announced.split(":")[2])
            assert passwd_entry(name) is None

            answer = SignInAnswerer(device_browser(name), ["", PASSCODE, PASSCODE])
            r = ssh_login(sshd.port, name, answer, command=["sh", "-c", "id -un; id -u; pwd"], timeout=120)
            assert r.ok, (r.error, r.text(), sshd.log_text()[-2000:])
            assert r.output.split() == [name, str(uid), f"/home/{name}"]
            text = r.text()
            assert "enter the code" in text and f"{strict.issuer}/device" in text
            assert r.prompts()[0].endswith("Press Enter once you have signed in: ")  # sshd puts the info text before the prompt
            assert strict.counts["device_authorization"] == 1
            entry = passwd_entry(name)
            assert int(entry[2]) == uid and int(entry[3]) == uid
            assert w.wait_reports(name)

            # Later: the passcode, through pam_unix; the files module answers now.
            r = ssh_login(sshd.port, name, [PASSCODE])
            assert r.ok and r.output == f"{name}\n", (r.error, r.text())
            assert sshd.run_in_ns(["getent", "passwd", name]).stdout == announced
            r = ssh_login(sshd.port, name, ["wrong-passcode", ""])
            assert not r.ok

            # Unknown to the directory: sshd does not know the name, no sign-in starts.
            r = ssh_login(sshd.port, stranger, lambda *_: "")
            assert not r.ok
            assert sshd.run_in_ns(["getent", "passwd", stranger]).returncode == 2
            assert strict.counts["device_authorization"] == 1
            assert passwd_entry(stranger) is None
    finally:
        w.stop()


def test_first_console_login_then_the_passcode_and_su(tmp_path, strict, in_namespace):
    name = unique("confirst")
    # The console's sign-in with the device grant (the test plays the phone).
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [name], config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")},
                                               "service": {"login": {"flows": ["device"]}}})
    try:
        stack = {s: (w.confdir / "login").read_text() for s in ("login", "su", "su-l")}
        with Console(tmp_path, stack, nss=True, socket_dir=w.socket.parent) as con:
            con.start(["login", name])
            con.expect("Press Enter once you have signed in:", timeout=30)
            code = re.search(r"enter the code ([A-Z]{4}-[A-Z]{4})", con.history()).group(1)
            strict.approve_device(code, name)
            con.send("")
            con.answer("Choose a passcode for", PASSCODE, timeout=30)
            con.answer("Repeat the passcode:", PASSCODE)
            con.expect("is ready on this machine", timeout=30)
            con.expect(r"\$ ?$", timeout=15, regex=True)
            con.send("PS1='READY''$ '")
            con.expect("READY$ ")
            con.send("echo ID=$(id -un)")
            con.expect(f"ID={name}")
            con.send("exit")
            assert con.wait_exit() == 0
            assert passwd_entry(name) is not None

            con.start(["login", name])
            login_shell(con, PASSCODE)
            con.send("echo AGAIN=$(id -un)")
            con.expect(f"AGAIN={name}")
            con.send("exit")
            assert con.wait_exit() == 0

            # su from another user to the fedlogin account asks its passcode.
            caller = unique("sucaller")
            useradd(caller)
            con.start(["setpriv", f"--reuid={caller}", f"--regid={caller}", "--init-groups", "--",
                       "su", "-", name, "-c", "echo SU=$(id -un)"])
            con.answer("Password: ", PASSCODE, timeout=15)
            con.expect(f"SU={name}", timeout=15)
            assert con.wait_exit() == 0
    finally:
        w.stop()


def test_getent_through_the_nss_module_with_fedlogind_up_and_down(tmp_path, strict, in_namespace):
    name, stranger, local = unique("nssget"), unique("nssnone"), unique("nsslocal")
    useradd(local)
    w = world(tmp_path, strict, [name])
    try:
        with world_ssh(w) as sshd:
            def getent(*args):
                return sshd.run_in_ns(["getent", *args])

            p = getent("passwd", name)
            assert p.returncode == 0, p
            f = p.stdout.strip().split(":")
            uid = f[2]
            assert f[0] == name and f[1] == "x" and f[3] == uid and f[5] == f"/home/{name}" and f[6] == "/bin/bash"
            assert getent("passwd", uid).stdout == p.stdout
            assert getent("group", name).stdout == f"{name}:x:{uid}:\n"
            assert getent("group", uid).stdout == f"{name}:x:{uid}:\n"
            # Local names come from the files module as always; unknown names are unknown.
            assert getent("passwd", local).stdout.startswith(f"{local}:x:")
            assert getent("passwd", stranger).returncode == 2
            assert getent("group", stranger).returncode == 2

            # fedlogind stopped: the directory user is unknown (fast), local users unaffected.
            w.fedlogind.stop()
            t0 = time.monotonic()
            assert getent("passwd", name).returncode == 2
            assert time.monotonic() - t0 < 3
            assert getent("passwd", local).returncode == 0
            # Directory unreachable: the same.
            w.restart_fedlogind()
            w.directoryd.stop()
            other = unique("nssdirdown")
            assert getent("passwd", other).returncode == 2
            assert getent("passwd", local).returncode == 0
    finally:
        w.stop()


def test_getent_answers_from_the_cache_file_while_fedlogind_cannot(tmp_path, strict, in_namespace):
    """libnss_fedlogin reads fedlogind's nss.cache before it connects: with
    fedlogind stopped (SIGSTOP: a connection would wait for the 3 s bound
    and end UNAVAIL), the answers in the file still come at once, until
    they expire; anything the file does not answer waits on the socket."""
    name, stranger = unique("nsscache"), unique("nssnobody")
    w = world(tmp_path, strict, [name])
    try:
        with world_ssh(w) as sshd:
            def getent(*args):
                t0 = time.monotonic()
                p = sshd.run_in_ns(["getent", *args])
                return p, time.monotonic() - t0

            p, _ = getent("passwd", name)
            assert p.returncode == 0, p
            uid = p.stdout.split(":")[2]
            assert getent("passwd", stranger)[0].returncode == 2
            cache = w.socket.parent / "nss.cache"
            st = os.lstat(cache)
            assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644

            time.sleep(0.2)  # new NOTFOUND answers are written within 50 ms
            os.kill(w.fedlogind.pid, signal.SIGSTOP)
            try:
                for args, want in [
                    (("passwd", name), p.stdout),
                    (("passwd", uid), p.stdout),
                    (("group", name), f"{name}:x:{uid}:\n"),
                    (("group", uid), f"{name}:x:{uid}:\n"),
                ]:
                    q, took = getent(*args)
                    assert q.returncode == 0 and q.stdout == want and took < 1.5, (args, q, took)
                # NOTFOUND from the file, and a uid it does not list (until its ids_until).
                for args in [("passwd", stranger), ("group", stranger), ("passwd", "59999")]:
                    q, took = getent(*args)
                    assert q.returncode == 2 and took < 1.5, (args, q, took)
                # Not in the file: the socket is asked, and the stopped daemon never answers.
                q, took = getent("passwd", unique("nssnew"))
                assert q.returncode == 2 and took >= 2.5, (q, took)
                # Expired (10 s): the socket again.
                time.sleep(max(0.0, 11 - (time.time() - st.st_mtime)))
                q, took = getent("passwd", name)
                assert q.returncode == 2 and took >= 2.5, (q, took)
            finally:
                os.kill(w.fedlogind.pid, signal.SIGCONT)
            assert getent("passwd", name)[0].stdout == p.stdout
            # fedlogind stopping removes the file.
            w.fedlogind.stop()
            assert not cache.exists()
    finally:
        w.stop()
