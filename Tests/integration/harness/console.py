r"""A console for integration tests: Debian's /bin/login (or su, or any
command) on a terminal, under a tmux server that runs in the foreground in a
nested mount namespace (nested.py) with the test's PAM stack for the
services `login`, `su` and `su-l` and, with nss=True, libnss_fedlogin.so.2.

    with Console(tmp, UNIX_STACK, nss=False) as con:   # UNIX_STACK from sshd.py
        con.start(["login", "alice"])
        con.answer("Password: ", "her password")
        con.expect(r"\$ ?$", regex=True)        # her shell's prompt
        con.send("echo ID=$(id -un)")
        con.expect("ID=alice")
        con.send("exit")
        assert con.wait_exit() == 0

    # su as another user, who must give alice's password:
    con.start(["setpriv", "--reuid=bob", "--regid=bob", "--init-groups", "--",
               "su", "-", "alice", "-c", "id -un"])

expect() waits for text (or a regular expression) that appears after what
the previous expect() matched; send() types a line and Enter, and by default
refuses to type before something was expected (login discards input typed
before its prompt). The tmux socket is private to the console; stop() ends
the tmux server and everything in the namespace by pid.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable

import nested
import sandbox
from nested import socket_dir  # noqa: F401 - re-exported for tests

START_TIMEOUT = 10.0
CONSOLE_SERVICES = ("login", "su", "su-l")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConsoleTimeout(AssertionError):
    pass


class Console:
    """One terminal (a tmux session) in its own nested namespace.

    pam_stack: the text of the services login, su and su-l there (or a dict
      service -> text).
    nss / socket_dir: as for sshd.SSHD.
    """

    def __init__(self, tmp: Path, pam_stack, nss: bool = True, socket_dir: Path | None = None,
                 width: int = 160, height: int = 50):
        self.tmp = Path(tmp)
        self.pam_stack = pam_stack
        self.nss = nss
        self.socket_dir = socket_dir
        self.width, self.height = width, height
        self.ns: nested.NestedNamespace | None = None
        self.server: sandbox.Process | None = None
        self.tmux_socket: Path | None = None
        self._session = 0
        self._consumed = 0
        self._expected = False
        self.start_seconds: float | None = None

    # -- life ----------------------------------------------------------------

    def boot(self, timeout: float = START_TIMEOUT) -> "Console":
        """Starts the tmux server in its namespace (start() does it if needed)."""
        if self.server is not None:
            return self
        t0 = time.monotonic()
        self.ns = nested.NestedNamespace(self.tmp, "console", nested.pam_services(self.pam_stack, CONSOLE_SERVICES),
                                         nss=self.nss, socket_dir=self.socket_dir)
        # sun_path is short; pytest's folders are deep.
        self.tmux_socket = sandbox.short_dir(self.ns.dir) / "tmux.sock"
        conf = self.ns.dir / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 10000\nset -g status off\n"
                        f"set -g default-size {self.width}x{self.height}\n")
        # -D: the server stays in the foreground, a child of the namespace's
        # init (which passes SIGTERM on to it). The terminal's programs get a clean environment (login resets it anyway; su does not).
        argv = ["env", "-i", f"PATH={_SYSTEM_PATH}", "TERM=xterm", "LANG=C.UTF-8", "HOME=/root",
                "tmux", "-S", self.tmux_socket, "-f", conf, "-D"]
        self.server = sandbox.Process(f"tmux-{self.ns.dir.name}", self.ns.wrap(argv), self.tmp)
        try:
            self.ns.attach(self.server.pid, timeout)
            self.server.wait_for_socket(self.tmux_socket, timeout=max(0.5, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def start(self, argv: Iterable[str] = ("login",), timeout: float = START_TIMEOUT) -> "Console":
        """Runs argv (as root) on a fresh terminal of this console; a program
        still running on the previous one is ended first."""
        self.boot(timeout)
        if self._session:
            self._tmux("kill-session", "-t", self.session)
        self._session += 1
        self._consumed = 0
        self._expected = False
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(self.width), "-y", str(self.height),
                   "--", *[str(a) for a in argv])
        return self

    @property
    def server_pid(self) -> int | None:
        """The tmux server's pid (in the test namespace's numbering)."""
        return self.ns.pid if self.ns else None

    @property
    def session(self) -> str:
        return f"con{self._session}"

    def stop(self):
        """Ends the tmux server and every process in the namespace, by pid."""
        if self.server is not None:
            try:
                if self.ns is not None:
                    self.ns.kill_all()
            finally:
                self.server.stop()
        self.server = None

    def __enter__(self):
        return self.boot()

    def __exit__(self, *exc):
        self.stop()

    # -- the terminal --------------------------------------------------------

    def _tmux(self, *args: str, timeout: float = 10.0) -> str:
        if self.server is None or not self.server.alive:
            log = self.server.log_text() if self.server else ""
            raise RuntimeError(f"the console's tmux server is not running\n{log}")
        r = subprocess.run(["tmux", "-S", str(self.tmux_socket), *args], capture_output=True, text=True,
                           timeout=timeout, env={"PATH": _SYSTEM_PATH, "TERM": "xterm", "LC_ALL": "C.UTF-8"})
        if r.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def screen(self) -> str:
        """The visible terminal, trailing blank lines dropped."""
        return self._tmux("capture-pane", "-p", "-t", self.session).rstrip("\n") + "\n"

    def history(self) -> str:
        """Everything the terminal showed since start() (wrapped lines joined,
        trailing blank lines dropped)."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.session).rstrip("\n") + "\n"

    def expect(self, pattern: str, timeout: float = 10.0, regex: bool = False) -> str:
        """Waits until `pattern` (text, or a regular expression) shows after
        what the last expect() matched; returns the matched text."""
        rx = re.compile(pattern if regex else re.escape(pattern), re.MULTILINE)
        # tmux drops trailing spaces: "Password: " is "Password:" at the end of a line.
        at_eol = (re.compile(re.escape(pattern.rstrip(" ")) + r"$", re.MULTILINE)
                  if pattern.endswith(" ") and not regex else None)
        deadline = time.monotonic() + timeout
        while True:
            text = self.history().rstrip("\n")
            m = rx.search(text, self._consumed)
            if m is None and at_eol is not None:
                m = at_eol.search(text, self._consumed)
            if m:
                self._consumed = m.end()
                self._expected = True
                return m.group(0)
            if time.monotonic() > deadline:
                raise ConsoleTimeout(f"console: {pattern!r} did not show within {timeout} s; the screen:\n"
                                     f"{self.screen()}")
            time.sleep(0.03)

    def send(self, line: str, enter: bool = True, force: bool = False):
        """Types `line` (literally) and Enter. Refuses before the first
        expect() of this terminal unless force=True."""
        if not self._expected and not force:
            raise RuntimeError("console: expect the prompt before typing (login discards early input)")
        if line:
            self._tmux("send-keys", "-t", self.session, "-l", line)
        if enter:
            self._tmux("send-keys", "-t", self.session, "Enter")

    def answer(self, prompt: str, line: str, timeout: float = 10.0):
        """expect(prompt), then send(line)."""
        self.expect(prompt, timeout)
        self.send(line)

    def _exit(self) -> int | None:
        """The exit status of the program on the terminal (-N: killed by
        signal N), or None while it runs."""
        dead, status, sig = self._tmux("display-message", "-p", "-t", self.session,
                                       "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}").strip().split(":")
        if dead != "1":
            return None
        if status:
            return int(status)
        if sig:
            return -int(sig)
        # The terminal closed, and tmux has not reaped the program yet. tmux
        # (3.3a) sometimes misses the SIGCHLD of a program that ran su or
        # login and leaves it a zombie: another SIGCHLD makes it reap.
        os.kill(self.ns.pid, signal.SIGCHLD)
        return None

    def dead(self) -> bool:
        return self._exit() is not None

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Waits until the program on the terminal ended; returns its exit
        status (-N: killed by signal N)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self._exit()
            if status is not None:
                return status
            if time.monotonic() > deadline:
                raise ConsoleTimeout(f"console: the program did not end within {timeout} s; the screen:\n"
                                     f"{self.screen()}\nprocesses in the namespace:\n{self.ns.describe()}")
            time.sleep(0.03)

    def run_in_ns(self, argv, **kw) -> subprocess.CompletedProcess:
        """Runs argv in the console's namespace; see NestedNamespace.run_in_ns."""
        return self.ns.run_in_ns(argv, **kw)

    def processes(self) -> list[int]:
        return self.ns.processes() if self.ns else []


def login_shell(con: Console, password: str, timeout: float = 10.0):
    """At a `login USER` terminal: answers the password, then waits for the
    shell and makes its prompt a known marker ("READY$ ")."""
    con.answer("Password: ", password, timeout)
    con.expect(r"\$ ?$", timeout, regex=True)
    con.send("PS1='READY''$ '")
    con.expect("READY$ ", timeout)
