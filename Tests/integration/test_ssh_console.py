"""A real sshd, a real console login(1) and su(1), each in a mount namespace
nested in the test namespace with its own PAM stack (and, where the NSS
module is built, libnss_fedlogin.so.2 in nsswitch.conf): the harness
(harness/sshd.py, harness/console.py) proven with local accounts and
pam_unix, and with users nobody knows."""
import os
import subprocess
from pathlib import Path

import pytest

import nested
import sandbox
from console import Console, login_shell
from sshd import SSHD, UNIX_STACK, socket_dir, ssh_login, world_ssh
from strict_idp import StrictIdP
from world import World, unique, useradd

pytestmark = pytest.mark.namespace

PASSWORD = "Local-Pass9"
DENY_STACK = "auth requisite pam_deny.so\naccount required pam_unix.so\nsession required pam_unix.so\n"


def other_processes() -> set[int]:
    """Every process of the test namespace (zombies too) but this one."""
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()}


@pytest.fixture(autouse=True)
def nothing_left_running():
    """sshd and the console stop everything they started, zombies included."""
    before = other_processes()
    yield
    kept = {p.pid for p in sandbox.live_processes()}
    left = other_processes() - before - kept
    described = []
    for p in sorted(left):
        try:
            described.append(f"{p}: {Path(f'/proc/{p}/stat').read_text().strip()}")
        except OSError:
            pass  # ended meanwhile
    assert not described, "left running:\n" + "\n".join(described)


def local_user(prefix: str, password: str = PASSWORD) -> str:
    name = unique(prefix)
    useradd(name, "-s", "/bin/bash")
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, timeout=30,
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return name


# ---------------------------------------------------------------------------
# sshd
# ---------------------------------------------------------------------------


def test_local_user_logs_in_over_ssh_through_pam_unix(tmp_path, in_namespace):
    name = local_user("sshloc")
    before = sandbox.etc_snapshot()
    sshd = SSHD(tmp_path, UNIX_STACK, nss=False).start()
    try:
        r = ssh_login(sshd.port, name, [PASSWORD], command=["id", "-un"])
        assert r.ok, (r.error, sshd.log_text())
        ok, transcript, output, status = r
        assert (output, status) == (f"{name}\n", 0)
        assert [(e.prompt, e.echo) for e in transcript if e.prompt] == [("Password: ", False)]
        assert sshd.wait_log(f"Accepted keyboard-interactive/pam for {name} from 127.0.0.1")

        r = ssh_login(sshd.port, name, ["Not-the-password1"])
        assert not r.ok and r.status is None and "authentication failed" in r.error
        assert sshd.wait_log(f"Failed keyboard-interactive/pam for {name}"), sshd.log_text()

        # The test namespace's pam.d and nsswitch.conf are unchanged; at most
        # sshd's privilege separation user was added (once per run).
        assert set(sandbox.etc_changes(before)) <= {"passwd", "shadow"}
        assert "sshd" in sshd.run_in_ns(["getent", "passwd", "sshd"]).stdout
    finally:
        sshd.stop()
    assert sshd.ns.processes() == []


def test_sshd_runs_the_stack_it_was_given(tmp_path, in_namespace):
    name = local_user("sshdeny")
    with SSHD(tmp_path, DENY_STACK, nss=False) as sshd:
        r = ssh_login(sshd.port, name, [PASSWORD])
        assert not r.ok, r
        assert sshd.run_in_ns(["cat", "/etc/pam.d/sshd"]).stdout == DENY_STACK
    assert not Path("/etc/pam.d/sshd").exists()


def test_the_nested_namespace_shares_accounts_and_homes_but_not_pam_nss_or_run(tmp_path, in_namespace):
    sockets = socket_dir()
    (sockets / "marker").write_text("here\n")
    with SSHD(tmp_path, UNIX_STACK, nss=False, socket_dir=sockets) as sshd:
        ns = sshd.run_in_ns
        assert ns(["cat", "/run/fedlogin/marker"]).stdout == "here\n"
        assert ns(["stat", "-c", "%U %a", "/run/sshd"]).stdout == "root 755\n"
        assert not Path("/run/sshd").exists()  # the test namespace's /run is untouched
        # An account made outside after sshd started is seen inside, home included.
        name = local_user("later")
        assert ns(["getent", "passwd", name]).stdout.split(":")[5] == f"/home/{name}"
        assert ns(["test", "-d", f"/home/{name}"]).returncode == 0
        assert ns(["cat", "/etc/nsswitch.conf"]).stdout == Path("/etc/nsswitch.conf").read_text()
        # A user's command runs in the same namespace.
        r = ssh_login(sshd.port, name, [PASSWORD], command="cat /run/fedlogin/marker; ls /run")
        assert r.ok and r.output.split() == ["here", "fedlogin", "fedlogin-test", "sshd"], r


def test_a_configuration_sshd_refuses_fails_the_start_with_its_message(tmp_path, in_namespace):
    sshd = SSHD(tmp_path, UNIX_STACK, nss=False, extra_config=["NoSuchOption yes"])
    with pytest.raises(RuntimeError, match="NoSuchOption"):
        sshd.start()
    assert sshd.processes() == []


# ---------------------------------------------------------------------------
# Console login and su
# ---------------------------------------------------------------------------


def test_local_user_logs_in_at_the_console(tmp_path, in_namespace):
    name = local_user("conloc")
    with Console(tmp_path, UNIX_STACK, nss=False) as con:
        con.start(["login", name])
        login_shell(con, PASSWORD)
        con.send("echo ID=$(id -un) TTY=$(tty)")
        con.expect(f"ID={name} TTY=/dev/pts/")
        con.send("exit")
        assert con.wait_exit() == 0

        con.start(["login", name])
        con.answer("Password: ", "Not-the-password1")
        con.expect("Login incorrect", timeout=15)
        con.expect("login: ", timeout=15)  # login asks again, for a name this time
    assert con.ns.processes() == []


def test_su_asks_the_target_users_password(tmp_path, in_namespace):
    target, caller = local_user("sutarget"), local_user("sucaller", "Other-Pass9")
    as_caller = ["setpriv", f"--reuid={caller}", f"--regid={caller}", "--init-groups", "--"]
    with Console(tmp_path, UNIX_STACK, nss=False) as con:
        con.start([*as_caller, "su", "-", target, "-c", "echo ID=$(id -un)"])
        con.answer("Password: ", PASSWORD)
        con.expect(f"ID={target}")
        assert con.wait_exit() == 0

        con.start([*as_caller, "su", target, "-c", "id -un"])
        con.answer("Password: ", "Not-the-password1")
        con.expect("su: Authentication failure", timeout=15)
        assert con.wait_exit(timeout=15) == 1

    # The same stack denying everything refuses the right password.
    with Console(tmp_path, DENY_STACK, nss=False) as con:
        con.start([*as_caller, "su", "-", target, "-c", "id -un"])
        con.expect("su: Authentication failure", timeout=15)
        assert con.wait_exit(timeout=15) == 1


# ---------------------------------------------------------------------------
# With the NSS module: a name nobody knows
# ---------------------------------------------------------------------------

needs_nss = pytest.mark.skipif(not nested.nss_module().exists(),
                               reason=f"{nested.nss_module()} is not built")


def assert_unknown_everywhere(sshd, name):
    r = sshd.run_in_ns(["getent", "passwd", name])
    assert (r.returncode, r.stdout) == (2, ""), r
    r = ssh_login(sshd.port, name, lambda *_: PASSWORD)
    assert not r.ok, r
    assert sshd.wait_log(f"Invalid user {name} from 127.0.0.1"), sshd.log_text()


@needs_nss
def test_unknown_user_without_fedlogind(tmp_path, in_namespace):
    name = unique("nobody")
    # fedlogin's stack, its socket where the NSS module looks, and no fedlogind.
    stack = (sandbox.make_confdir(tmp_path, "/run/fedlogin/fedlogind.sock") / "sshd").read_text()
    with SSHD(tmp_path, stack, nss=True, socket_dir=socket_dir()) as sshd:
        assert "fedlogin" in sshd.run_in_ns(["ldconfig", "-p"]).stdout
        assert "passwd:         files fedlogin" in sshd.run_in_ns(["cat", "/etc/nsswitch.conf"]).stdout
        assert_unknown_everywhere(sshd, name)
        # A local account still logs in (pam_fedlogin: daemon unavailable; pam_unix decides).
        local = local_user("nsslocal")
        assert sshd.run_in_ns(["getent", "passwd", local]).returncode == 0
        assert ssh_login(sshd.port, local, [PASSWORD]).output == f"{local}\n"


@needs_nss
def test_unknown_user_with_fedlogind(tmp_path, in_namespace):
    name, known = unique("nobody"), unique("known")
    idp = StrictIdP()
    idp.add_user(known, email=f"{known}@example.test")
    w = World(tmp_path, idp, [known], config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}})
    try:
        with world_ssh(w) as sshd:
            assert sshd.run_in_ns(["test", "-S", "/run/fedlogin/fedlogind.sock"]).returncode == 0
            assert_unknown_everywhere(sshd, name)
            # The same wiring reaches fedlogind: a directory user not yet
            # local resolves, for root and for any user.
            entry = sshd.run_in_ns(["getent", "passwd", known]).stdout
            assert entry.startswith(f"{known}:x:7"), entry
            assert sshd.run_in_ns(["getent", "passwd", known], user="nobody").stdout == entry
            assert not any(line.startswith(f"{known}:") for line in Path("/etc/passwd").read_text().splitlines())
    finally:
        w.stop()
        idp.stop()
