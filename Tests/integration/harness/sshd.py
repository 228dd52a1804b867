"""A real OpenSSH sshd on 127.0.0.1 for integration tests, in a nested mount
namespace (nested.py) with the test's PAM stack for the `sshd` service and,
with nss=True, libnss_fedlogin.so.2 in nsswitch.conf.

    with SSHD(tmp, "auth required pam_unix.so\\naccount required pam_unix.so\\n"
                   "session required pam_unix.so\\n", nss=False) as sshd:
        r = ssh_login(sshd.port, "alice", ["her password"])
        assert r.ok and r.output == "alice\\n"
        sshd.run_in_ns(["getent", "passwd", "alice"])

    # fedlogin's own stack and socket, from a World:
    d = socket_dir()
    w = World(tmp, idp, [name], config={"daemon": {"socket": str(d / "fedlogind.sock")}})
    with world_ssh(w) as sshd:
        r = ssh_login(sshd.port, name, answer_fn, command=["id", "-un"])

The binary comes from Debian's openssh-server package without installing it
(installing writes /etc/pam.d/sshd and starts a service): `apt-get download`
of openssh-server and libwrap0, unpacked with `dpkg -x` once into
/var/cache/fedlogin-test/sshd (or $FEDLOGIN_SSHD_CACHE) and run from there with
LD_LIBRARY_PATH for libwrap. sshd's privilege separation user `sshd` is added
to the test namespace's /etc (as the package's postinst does) if missing.
"""
from __future__ import annotations

import fcntl
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import nested
import sandbox
from nested import socket_dir  # noqa: F401 - re-exported for tests
from strict_idp import free_port

SSHD_PACKAGES = ("openssh-server", "libwrap0")
START_TIMEOUT = 10.0
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The stack of a machine without fedlogin: pam_unix alone.
UNIX_STACK = """\
auth     required pam_unix.so
account  required pam_unix.so
password required pam_unix.so yescrypt
session  required pam_unix.so
"""


def cache_dir() -> Path:
    return Path(os.environ.get("FEDLOGIN_SSHD_CACHE") or "/var/cache/fedlogin-test/sshd")


def sshd_root() -> Path:
    """The unpacked packages (usr/sbin/sshd, usr/lib/x86_64-linux-gnu/libwrap.so.0),
    downloaded and unpacked on first use."""
    cache = cache_dir()
    root = cache / "root"
    if (root / "usr" / "sbin" / "sshd").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "usr" / "sbin" / "sshd").exists():
            return root
        work = Path(tempfile.mkdtemp(prefix="download-", dir=cache))
        try:
            debs = work / "debs"
            debs.mkdir()
            os.chmod(work, 0o755)
            os.chmod(debs, 0o777)  # apt-get download writes as _apt where it can
            r = subprocess.run(["apt-get", "download", *SSHD_PACKAGES], cwd=debs, capture_output=True,
                               text=True, timeout=300, env={"PATH": _SYSTEM_PATH, "LC_ALL": "C"})
            files = sorted(debs.glob("*.deb"))
            if r.returncode != 0 or len(files) != len(SSHD_PACKAGES):
                raise RuntimeError(f"apt-get download {' '.join(SSHD_PACKAGES)} failed ({r.returncode}); "
                                   f"sshd tests need the Debian archive:\n{r.stdout}{r.stderr}")
            unpacked = work / "root"
            for deb in files:
                subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, timeout=120)
            missing = _missing_libraries(unpacked)
            if missing:
                raise RuntimeError(f"sshd from {', '.join(f.name for f in files)} needs libraries this "
                                   f"machine lacks: {missing}")
            os.rename(unpacked, root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root


def _library_path(root: Path) -> str:
    return str(root / "usr" / "lib" / "x86_64-linux-gnu")


def _missing_libraries(root: Path) -> list[str]:
    r = subprocess.run(["ldd", str(root / "usr" / "sbin" / "sshd")], capture_output=True, text=True,
                       env={"PATH": _SYSTEM_PATH, "LD_LIBRARY_PATH": _library_path(root)}, timeout=30)
    return [line.split()[0] for line in r.stdout.splitlines() if "not found" in line]


def ensure_privsep_user():
    """sshd refuses to start without its privilege separation user `sshd`."""
    if any(line.split(":", 1)[0] == "sshd" for line in Path("/etc/passwd").read_text().splitlines()):
        return
    if not sandbox.in_namespace():
        raise RuntimeError("refusing to add the user sshd outside run-in-namespace.sh")
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/run/sshd",
                    "--shell", "/usr/sbin/nologin", "--gid", "nogroup", "sshd"],
                   check=True, capture_output=True, env={"PATH": _SYSTEM_PATH})


def packaged_config() -> Path:
    """The sshd_config drop-in the Debian package installs."""
    return sandbox.repo_root() / "packaging" / "debian" / "sshd_config"


class SSHD:
    """sshd -D -e on 127.0.0.1:PORT in its own nested namespace.

    pam_stack: the text of /etc/pam.d/sshd there (or a dict service -> text).
    nss: use libnss_fedlogin.so.2 for passwd and group (needs out/).
    socket_dir: the folder bound at /run/fedlogin (fedlogind.sock in it).
    extra_config: more sshd_config lines (they come after the drop-in and
      before the harness's own lines; sshd keeps the first value of a key).
    """

    def __init__(self, tmp: Path, pam_stack, nss: bool = True, socket_dir: Path | None = None,
                 extra_config: Iterable[str] = (), log_level: str = "VERBOSE"):
        self.tmp = Path(tmp)
        self.pam_stack = pam_stack
        self.nss = nss
        self.socket_dir = socket_dir
        self.extra_config = list(extra_config)
        self.log_level = log_level
        self.port: int | None = None
        self.process: sandbox.Process | None = None
        self.ns: nested.NestedNamespace | None = None
        self.start_seconds: float | None = None

    # -- life ----------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> "SSHD":
        t0 = time.monotonic()
        root = sshd_root()
        ensure_privsep_user()
        self.ns = nested.NestedNamespace(self.tmp, "sshd", nested.pam_services(self.pam_stack, ("sshd",)),
                                         nss=self.nss, socket_dir=self.socket_dir)
        key = self.ns.dir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fedlogin-test", "-f", str(key)],
                       check=True, capture_output=True, timeout=30)
        last = None
        for _ in range(3):  # a free port can be taken between the check and the bind
            port = free_port()
            try:
                self._start_on(root, port, key, timeout - (time.monotonic() - t0))
                self.start_seconds = time.monotonic() - t0
                return self
            except _PortTaken as e:
                last = e
        raise RuntimeError(f"sshd: no free port after 3 tries: {last}")

    def _start_on(self, root: Path, port: int, key: Path, timeout: float):
        d = self.ns.dir
        config = d / f"sshd_config-{port}"
        pidfile = d / f"sshd-{port}.pid"
        lines = [
            "# fedlogin integration test",
            f"Include {packaged_config()}",
            *self.extra_config,
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {key}",
            f"PidFile {pidfile}",
            "UsePAM yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "PubkeyAuthentication no",
            "AuthenticationMethods keyboard-interactive",
            "LoginGraceTime 300",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            f"LogLevel {self.log_level}",
        ]
        config.write_text("\n".join(lines) + "\n")
        sshd = root / "usr" / "sbin" / "sshd"  # absolute: sshd re-executes itself
        test = subprocess.run(self.ns.wrap([sshd, "-t", "-f", config]), capture_output=True, text=True, timeout=30,
                              env={"PATH": _SYSTEM_PATH, "LD_LIBRARY_PATH": _library_path(root)})
        if test.returncode != 0:
            raise RuntimeError(f"sshd -t refused {config}:\n{test.stderr}")
        # A clean environment, as a service manager would give it.
        argv = ["env", "-i", f"PATH={_SYSTEM_PATH}", f"LD_LIBRARY_PATH={_library_path(root)}", "LANG=C.UTF-8",
                sshd, "-D", "-e", "-f", config]
        self.process = sandbox.Process(f"sshd-{port}", self.ns.wrap(argv), self.tmp)
        self.port = port
        deadline = time.monotonic() + max(timeout, 1.0)
        try:
            self.ns.attach(self.process.pid, timeout=max(timeout, 1.0))
            while True:
                log = self.process.log_text()
                if f"Server listening on 127.0.0.1 port {port}" in log:
                    break
                if "Address already in use" in log or "Cannot bind any address" in log:
                    raise _PortTaken(log)
                if not self.process.alive:
                    raise RuntimeError(f"sshd exited with {self.process.returncode} before listening\n"
                                       f"--- sshd log ({self.process.stderr_path}) ---\n{log}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sshd did not listen on 127.0.0.1:{port} within {timeout:.0f} s\n"
                                       f"--- sshd log ({self.process.stderr_path}) ---\n{log}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Ends sshd and every process in its namespace (sessions too), by
        pid. Its log stays readable (log_text())."""
        if self.process is not None and self.process.alive:
            try:
                if self.ns is not None:
                    self.ns.kill_all()
            finally:
                self.process.stop()

    @property
    def pid(self) -> int | None:
        """The listening sshd's pid (in the test namespace's numbering)."""
        return self.ns.pid if self.ns else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    def wait_log(self, text: str, timeout: float = 5.0) -> bool:
        """Waits until sshd's log holds `text` (sshd may log a login's end
        after the client saw it); returns whether it did."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def __enter__(self):
        return self if self.alive else self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- inside --------------------------------------------------------------

    def run_in_ns(self, argv, **kw) -> subprocess.CompletedProcess:
        """Runs argv in sshd's namespace (same PAM, NSS and /run), e.g.
        run_in_ns(["getent", "passwd", name]). See NestedNamespace.run_in_ns."""
        return self.ns.run_in_ns(argv, **kw)

    run_in_sshd_ns = run_in_ns

    def processes(self) -> list[int]:
        return self.ns.processes() if self.ns else []


class _PortTaken(RuntimeError):
    pass


def world_ssh(world, nss: bool = True, stack: str | None = None, **kw) -> SSHD:
    """An SSHD (not started; use `with`) wired to a World: the PAM service
    sshd is World's fedlogin stack (its confdir's `sshd`, socket= pointing at
    World's socket) and /run/fedlogin is the folder of World's socket, which
    must be named fedlogind.sock (the NSS module's fixed path). Make World
    with a socket in socket_dir() so users other than root reach it too."""
    sock = Path(world.socket)
    if sock.name != "fedlogind.sock":
        raise ValueError(f"World's socket {sock} must be named fedlogind.sock to be "
                         "/run/fedlogin/fedlogind.sock in the namespace")
    text = stack if stack is not None else (Path(world.confdir) / "sshd").read_text()
    return SSHD(world.tmp, text, nss=nss, socket_dir=sock.parent, **kw)


# ---------------------------------------------------------------------------
# The client: paramiko keyboard-interactive
# ---------------------------------------------------------------------------

# answer_fn(name, instructions, prompt_text, echo) -> str
AnswerFn = Callable[[str, str, str, bool], str]


@dataclass
class Exchange:
    """One prompt of a keyboard-interactive request (prompt None: a request
    with no prompt, only name and instructions)."""
    name: str
    instructions: str
    prompt: str | None
    echo: bool | None
    answer: str | None


@dataclass
class SSHLogin:
    """What ssh_login saw. Unpacks as (ok, transcript, output, status)."""
    ok: bool
    transcript: list[Exchange] = field(default_factory=list)
    output: str = ""
    status: int | None = None
    stderr: str = ""
    error: str | None = None  # why it failed (authentication, timeout, ...)
    auth_seconds: float | None = None
    seconds: float | None = None

    def __iter__(self):
        return iter((self.ok, self.transcript, self.output, self.status))

    def prompts(self) -> list[str]:
        return [e.prompt for e in self.transcript if e.prompt is not None]

    def text(self) -> str:
        """Every name, instruction and prompt text, in order."""
        parts = []
        for e in self.transcript:
            parts += [t for t in (e.name, e.instructions, e.prompt) if t]
        return "\n".join(parts)


def scripted(answers: Iterable[str]) -> AnswerFn:
    """An answer_fn that gives `answers` in order (then fails the login)."""
    left = list(answers)

    def answer(name, instructions, prompt, echo):
        if not left:
            raise RuntimeError(f"no answer left for prompt {prompt!r}")
        return left.pop(0)

    return answer


_URL_LINE = re.compile(r"^\s*(https?://\S+)\s*$", re.MULTILINE)


class SignInAnswerer:
    """An answer_fn that plays the user of a sign-in over SSH: for every
    address on a line of its own in a request's name, instructions or prompt
    text (sshd passes PAM's information text along with the next prompt) it
    first acts as the browser, browser_fn(url), once per address; then it
    answers the prompt from `answers` in order (no answer left: the login
    fails). E.g. SignInAnswerer(device_browser(name), ["", PASSCODE, PASSCODE])
    with device_browser from test_signin_flows.py."""

    def __init__(self, browser_fn: Callable[[str], object] | None, answers: Iterable[str]):
        self.browser_fn = browser_fn
        self.answers = list(answers)
        self.urls: list[str] = []
        self.browser_results: list[object] = []

    def __call__(self, name, instructions, prompt, echo):
        for text in (name, instructions, prompt):
            for url in _URL_LINE.findall(text or ""):
                if url in self.urls:
                    continue
                self.urls.append(url)
                if self.browser_fn is not None:
                    self.browser_results.append(self.browser_fn(url))
        if not self.answers:
            raise RuntimeError(f"no answer left for prompt {prompt!r}")
        return self.answers.pop(0)


def ssh_login(port: int, user: str, answer_fn: AnswerFn | Iterable[str], command=("id", "-un"),
              timeout: float = 60.0, host: str = "127.0.0.1") -> SSHLogin:
    """A keyboard-interactive SSH login as `user` that answers each prompt with
    answer_fn(name, instructions, prompt_text, echo) (or a list of answers in
    order), then runs `command` (a list, quoted for the remote shell, or a
    string; None: no command). Every wait is bounded by `timeout` s."""
    import paramiko

    if not callable(answer_fn):
        answer_fn = scripted(answer_fn)
    result = SSHLogin(ok=False)
    raised: list[BaseException] = []
    t0 = time.monotonic()

    def handler(title, instructions, prompts):
        if not prompts:
            result.transcript.append(Exchange(title, instructions, None, None, None))
            return []
        answers = []
        for text, echo in prompts:
            try:
                a = answer_fn(title, instructions, text, echo)
            except BaseException as e:  # noqa: BLE001 - raised again after the transport closed
                raised.append(e)
                a = None
            result.transcript.append(Exchange(title, instructions, text, echo, a))
            if a is None:
                raise paramiko.AuthenticationException(f"no answer for prompt {text!r}")
            answers.append(a)
        return answers

    sock = socket.create_connection((host, port), timeout=min(timeout, 10))
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.auth_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        try:
            transport.auth_interactive(user, handler)
        except paramiko.AuthenticationException as e:
            result.error = f"authentication failed: {e}"
        except paramiko.SSHException as e:
            result.error = f"ssh: {e}"
        result.auth_seconds = time.monotonic() - t0
        if raised:
            raise raised[0]
        if result.error is None and transport.is_authenticated():
            result.ok = True
            if command is not None:
                _run(transport, command, timeout, result)
        elif result.error is None:
            result.error = "not authenticated"
    finally:
        transport.close()
        sock.close()
        result.seconds = time.monotonic() - t0
    return result


def _run(transport, command, timeout: float, result: SSHLogin):
    cmd = command if isinstance(command, str) else shlex.join(str(c) for c in command)
    chan = transport.open_session(timeout=timeout)
    chan.settimeout(timeout)
    chan.exec_command(cmd)
    out, err = b"", b""
    deadline = time.monotonic() + timeout
    while not (chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"ssh command {cmd!r} did not finish in {timeout} s; output so far: {out!r}")
        if chan.recv_ready():
            out += chan.recv(65536)
        elif chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        else:
            time.sleep(0.01)
    while chan.recv_ready():
        out += chan.recv(65536)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(65536)
    result.status = chan.recv_exit_status()
    result.output = out.decode(errors="replace")
    result.stderr = err.decode(errors="replace")
    chan.close()


# ---------------------------------------------------------------------------
# The client: paramiko publickey
# ---------------------------------------------------------------------------

def write_key(tmp_path, name):
    """An ed25519 key pair in tmp_path; the public key in NAME's
    ~/.ssh/authorized_keys. Returns the private key for key_login."""
    key = tmp_path / f"{name}.key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True, capture_output=True, timeout=30)
    entry = pwd.getpwnam(name)
    uid, gid, home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text((tmp_path / f"{name}.key.pub").read_text())
    for p in (ssh, ssh / "authorized_keys"):
        os.chown(p, uid, gid)
    os.chmod(ssh / "authorized_keys", 0o600)
    import paramiko

    return paramiko.Ed25519Key.from_private_key_file(str(key))


def key_login(port, user, key, timeout=30):
    """A publickey SSH login that runs `id -un`; returns its output, or None when refused."""
    import paramiko

    t = paramiko.Transport(("127.0.0.1", port))
    try:
        t.start_client(timeout=timeout)
        try:
            t.auth_publickey(user, key)
        except paramiko.AuthenticationException:
            return None
        if not t.is_authenticated():
            return None
        chan = t.open_session(timeout=timeout)
        chan.settimeout(timeout)
        chan.exec_command("id -un")
        return chan.makefile().read().decode()
    finally:
        t.close()


__all__ = ["SSHD", "SSHLogin", "Exchange", "SignInAnswerer", "UNIX_STACK", "scripted", "socket_dir", "ssh_login", "sshd_root",
           "world_ssh", "write_key", "key_login"]
