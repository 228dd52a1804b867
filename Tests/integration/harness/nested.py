"""A private mount namespace nested in the test namespace, for programs that
read the system's own PAM and NSS configuration (sshd, login, su).

The test namespace (run-in-namespace.sh) has a private copy of /etc that all
tests of the run share. A nested namespace changes, for the processes in it
only:

  /etc/pam.d          a copy of the test namespace's /etc/pam.d in which the
                      given services (e.g. `sshd`, or `login`, `su`, `su-l`)
                      have the test's stack
  /etc/nsswitch.conf  (nss=True) `passwd: files fedlogin`, `group: files fedlogin`
  /etc/ld.so.cache    (nss=True) the system's libraries plus
                      libnss_fedlogin.so.2 from out/, so glibc loads the
                      module by its plain name as it does on a real machine
  /run                a fresh tmpfs with /run/sshd, /run/fedlogin (a bind
                      mount of the test's socket folder, so fedlogind's socket
                      is /run/fedlogin/fedlogind.sock there) and
                      /run/fedlogin-test

/etc/passwd, /etc/shadow, /etc/group and /home stay those of the test
namespace: an account that fedlogind (running outside) creates is seen at
once inside.

It is a pid namespace too, whose init is the setup script's bash: it makes
the mounts, starts the program the namespace is for (sshd -D, the tmux
server) as its child, passes SIGTERM on to it, reaps every process orphaned
inside (none is left to the test process) and exits with the program's
status, upon which the kernel ends whatever is still inside. The program is
not pid 1 (libnss_fedlogin answers nothing to pid 1). /proc stays the test
namespace's, where these processes have their usual pids. `kill_all()` ends
the program by its pid and waits until nothing is left in the namespace.
"""
from __future__ import annotations

import atexit
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import sandbox

NSS_MODULE = "libnss_fedlogin.so.2"
RUN_ROOT = Path("/run/fedlogin-test")  # tmpfs of the test namespace
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_counter = itertools.count(1)
_ld_cache: Path | None = None


def nss_module() -> Path:
    return sandbox.out_dir() / NSS_MODULE


def socket_dir(tag: str = "fedlogind") -> Path:
    """A new empty folder for a fedlogind socket that every user can reach
    (mode 0755, under /run/fedlogin-test; pytest's folders are 0700), e.g.

        d = socket_dir()
        World(..., config={"daemon": {"socket": str(d / "fedlogind.sock")}})

    Inside a nested namespace with socket_dir=d it is /run/fedlogin."""
    d = RUN_ROOT / f"{tag}-{os.getpid()}-{next(_counter)}"
    d.mkdir(mode=0o755, parents=True)
    os.chmod(d, 0o755)
    return d


def pam_services(stack, default_services: tuple[str, ...]) -> dict[str, str]:
    """`stack`: the text of one PAM service file (used for every name in
    `default_services`), a path to one, or a dict service -> text."""
    if isinstance(stack, dict):
        return {k: (Path(v).read_text() if isinstance(v, Path) else v) for k, v in stack.items()}
    text = stack.read_text() if isinstance(stack, Path) else str(stack)
    return {name: text for name in default_services}


def _nsswitch_text(original: str) -> str:
    out, seen = [], set()
    for line in original.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in ("passwd", "group") and ":" in line and not line.lstrip().startswith("#"):
            out.append(f"{key}:         files fedlogin")
            seen.add(key)
        else:
            out.append(line)
    for key in ("passwd", "group"):
        if key not in seen:
            out.append(f"{key}:         files fedlogin")
    return "\n".join(out) + "\n"


def _shared_ld_cache() -> Path:
    """An ld.so.cache of the system's libraries plus libnss_fedlogin.so.2
    (through a symlink to out/, so a rebuilt module is picked up). Built once
    per test process, in a throwaway namespace so ldconfig's aux cache in
    /var/cache/ldconfig is not touched."""
    global _ld_cache
    if _ld_cache is not None and _ld_cache.exists():
        return _ld_cache
    d = RUN_ROOT / f"nss-ld-{os.getpid()}"
    libdir = d / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    link = libdir / NSS_MODULE
    if not link.is_symlink():
        link.symlink_to(nss_module().resolve())
    _ld_cache = make_ld_cache(d, libdir)
    return _ld_cache


def make_ld_cache(d: Path, libdir: Path) -> Path:
    """<d>/ld.so.cache: the system's libraries plus those in `libdir`, made by
    ldconfig in a throwaway mount namespace (its aux cache in
    /var/cache/ldconfig is not touched)."""
    conf = d / "ld.so.conf"
    conf.write_text(f"include /etc/ld.so.conf\n{libdir}\n")
    cache = d / "ld.so.cache"
    script = ("set -e; [ -d /var/cache/ldconfig ] && mount -n -t tmpfs -o mode=700 tmpfs /var/cache/ldconfig; "
              f"exec ldconfig -X -C {shlex.quote(str(cache))} -f {shlex.quote(str(conf))}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "bash", "-c", script],
                       capture_output=True, text=True, timeout=60, env={"PATH": _SYSTEM_PATH})
    if r.returncode != 0 or not cache.exists():
        raise RuntimeError(f"ldconfig for the nested namespace failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return cache


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


class NestedNamespace:
    """The files and the setup script of one nested namespace (see the module
    docstring). `wrap(argv)` gives the command line that makes the namespace
    and execs argv in it; `attach(pid)` records the namespace of that process."""

    def __init__(self, tmp: Path, kind: str, services: dict[str, str], nss: bool = True,
                 socket_dir: Path | None = None):
        if not sandbox.in_namespace():
            raise RuntimeError("a nested namespace is only made inside run-in-namespace.sh")
        self.kind = kind
        self.dir = Path(tmp) / f"{kind}-ns-{next(_counter)}"
        self.dir.mkdir(parents=True)
        self.services = dict(services)
        self.nss = nss
        self.socket_dir = Path(socket_dir).resolve() if socket_dir is not None else None
        if self.socket_dir is not None and not self.socket_dir.is_dir():
            raise FileNotFoundError(f"socket folder {self.socket_dir} does not exist")
        self.pid: int | None = None  # the program (sshd, tmux server)
        self.init_pid: int | None = None
        self.ns: str | None = None
        self._prepare()
        _made.append(self)

    # -- files ---------------------------------------------------------------

    def _prepare(self):
        pamd = self.dir / "pam.d"
        shutil.copytree("/etc/pam.d", pamd, symlinks=True)
        for name, text in self.services.items():
            (pamd / name).write_text(text if text.endswith("\n") else text + "\n")
        mounts = [("--bind", pamd, "/etc/pam.d")]
        if self.nss:
            if not nss_module().exists():
                raise FileNotFoundError(f"{nss_module()} is missing: build the NSS module first (nss=False "
                                        "runs without it)")
            nsswitch = self.dir / "nsswitch.conf"
            nsswitch.write_text(_nsswitch_text(Path("/etc/nsswitch.conf").read_text()))
            mounts.append(("--bind", nsswitch, "/etc/nsswitch.conf"))
            mounts.append(("--bind", _shared_ld_cache(), "/etc/ld.so.cache"))
        stage = self.dir / "run"
        stage.mkdir()
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        lines = [
            "#!/bin/bash",
            f"# Makes the {self.kind} nested namespace's mounts, then runs the command.",
            "set -euo pipefail",
        ]
        lines += [f"mount -n {flag} {q(src)} {q(dst)}" for flag, src, dst in mounts]
        lines += [
            # A new /run, assembled aside and moved into place so that the
            # folders bound into it can themselves be under the old /run.
            f"mount -n -t tmpfs -o mode=755 tmpfs {q(stage)}",
            f"mkdir -m 755 {q(stage / 'sshd')} {q(stage / 'fedlogin')} {q(stage / 'fedlogin-test')}",
            f"mount -n --rbind {q(RUN_ROOT)} {q(stage / 'fedlogin-test')}",
        ]
        if self.socket_dir is not None:
            lines.append(f"mount -n --bind {q(self.socket_dir)} {q(stage / 'fedlogin')}")
        lines += [
            f"mount -n --move {q(stage)} /run",
            # pid 1 of the namespace: run the program, pass SIGTERM on, reap orphans.
            '"$@" &',
            "program=$!",
            f": > {q(self.dir / 'started')}",
            "trap 'kill -TERM \"$program\" 2>/dev/null' TERM INT HUP",
            "status=0",
            'while kill -0 "$program" 2>/dev/null; do wait "$program"; status=$?; done',
            'exit "$status"',
        ]
        self.setup_script = self.dir / "setup.sh"
        self.setup_script.write_text("\n".join(lines) + "\n")
        os.chmod(self.setup_script, 0o700)

    def wrap(self, argv: list) -> list[str]:
        """The command line that makes the namespace and runs argv as its
        init. Its process is unshare, which waits for the init (attach())."""
        (self.dir / "started").unlink(missing_ok=True)
        return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--",
                "bash", str(self.setup_script), *[str(a) for a in argv]]

    def attach(self, unshare_pid: int, timeout: float = 10.0):
        """Finds, under the unshare process `unshare_pid`, the namespace's
        init and the program it started; records the program's pid
        (`self.pid`, as the test namespace numbers it) and the mount namespace."""
        outer = _mnt_ns(os.getpid())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(unshare_pid):
                raise RuntimeError(f"{self.kind}: unshare (pid {unshare_pid}) ended while making the namespace")
            for init in _children(unshare_pid):
                ns = _mnt_ns(init)
                if ns is None or ns == outer:
                    continue
                program = _children(init) if (self.dir / "started").exists() else []
                if program:
                    self.init_pid, self.pid, self.ns = init, program[0], ns
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self.kind}: the namespace under pid {unshare_pid} did not start its program "
                           f"within {timeout} s")

    # -- inside --------------------------------------------------------------

    def run_in_ns(self, argv, input: str | None = None, timeout: float = 30.0, user: str | None = None,
                  env: dict | None = None) -> subprocess.CompletedProcess:
        """Runs argv in this mount namespace (nsenter; the pid namespace stays
        the test's), as root or as `user` (a name; setpriv with its uid and
        gid and no other groups, no PAM). Returns the CompletedProcess (text,
        captured)."""
        if self.pid is None:
            raise RuntimeError(f"{self.kind} is not running")
        cmd = ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--"]
        if user is not None:
            uid, gid = self._ids(user)
            cmd += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return subprocess.run(cmd + [str(a) for a in argv], input=input, capture_output=True, text=True,
                              timeout=timeout, env=env or {"PATH": _SYSTEM_PATH, "LC_ALL": "C"})

    def _ids(self, user: str) -> tuple[int, int]:
        """uid and gid of `user` as the namespace sees them (NSS included)."""
        r = subprocess.run(["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--", "getent", "passwd", user],
                           capture_output=True, text=True, timeout=30, env={"PATH": _SYSTEM_PATH})
        if r.returncode != 0:
            raise KeyError(f"{self.kind}: no user {user!r} in the namespace (getent: {r.returncode})")
        fields = r.stdout.split(":")
        return int(fields[2]), int(fields[3])

    def processes(self) -> list[int]:
        """Pids of every live process in this namespace."""
        if self.ns is None:
            return []
        return [p for p in _pids() if _mnt_ns(p) == self.ns]

    def describe(self) -> str:
        """`pid ppid state command` of each process in the namespace."""
        lines = []
        for p in self.processes():
            rest = _stat(p)
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if rest is None:
                continue
            lines.append(f"{p} {rest[1]} {rest[0]} {cmd}")
        return "\n".join(lines)

    def kill_all(self, timeout: float = 5.0):
        """Ends the namespace: SIGTERM to the program (by pid), SIGKILL after
        `timeout` s; its init then exits and the kernel ends every other
        process inside. Waits until no process is left in the namespace."""
        pid, init, self.pid, self.init_pid = self.pid, self.init_pid, None, None
        if init is None or _mnt_ns(init) != self.ns:  # ended already (its pid may be another's now)
            return
        if pid is not None and _mnt_ns(pid) == self.ns:
            _signal(pid, signal.SIGTERM)
            if _wait_gone([pid], timeout):
                _signal(pid, signal.SIGKILL)
        if _wait_gone([init], 2.0):
            _signal(init, signal.SIGKILL)
        left = _wait_gone(self.processes(), 5.0)
        if left:
            raise RuntimeError(f"{self.kind}: processes {left} outlived the namespace\n{self.describe()}")


_made: list[NestedNamespace] = []


@atexit.register
def _end_leftovers():
    """A namespace whose owner was not stopped: its processes end with the tests."""
    for ns in _made:
        try:
            ns.kill_all(timeout=1.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command: [state, ppid, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(parent: int) -> list[int]:
    out = []
    for p in _pids():
        st = _stat(p)
        if st is not None and int(st[1]) == parent:
            out.append(p)
    return out


def _signal(pid: int, sig: int):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)
