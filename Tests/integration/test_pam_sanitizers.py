"""pam_fedlogin.so under AddressSanitizer + UBSan, LeakSanitizer and valgrind.

Three parts, all against fake fedlogind daemons (test_pam_shim.py's):

1. Every scenario of test_pam_shim.py again, with the ASan + UBSan build of
   the module ($OUT/asan/pam_fedlogin.so) loaded by an ASan-built C PAM
   application ($OUT/asan/pam_driver: the ASan runtime must be loaded by the
   program, so the ctypes client cannot host it). The driver runs one
   transaction per process, relays the conversation to the test's Python
   answer function over its stdin/stdout, and exits through LeakSanitizer:
   any ASan, UBSan or leak report fails the scenario.
2. 10 000 PAM transactions (authenticate + acct_mgmt: 20 000 requests, one
   in ten with a prompt) in one ASan process against a daemon that answers
   RESULT IGNORE at once: every step behaves, no descriptor is left open,
   and LeakSanitizer finds nothing at exit.
3. 300 transactions of the production build ($OUT/pam_fedlogin.so, -O2,
   _FORTIFY_SOURCE) under valgrind --leak-check=full --error-exitcode=1.

Needs root (like test_pam_shim.py: the module talks only to a root-owned
socket whose peer is root) and `make -C pam OUT=$OUT asan-module` (the ASan
module, both drivers) besides the normal `make -C pam OUT=$OUT`. Writes
nothing outside its temporary folders.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import test_pam_shim as shim
from test_pam_shim import FakeDaemon, daemon, pamconf, sockdir  # noqa: F401  (fixtures)

pc = shim.pc  # the ctypes client: constants and scripted() answers
OUT = shim.OUT
PAM_DIR = shim.REPO / "pam"
ASAN_MODULE = OUT / "asan" / "pam_fedlogin.so"
ASAN_DRIVER = OUT / "asan" / "pam_driver"
DRIVER = OUT / "pam_driver"  # no sanitizers: for valgrind
MODULE = shim.MODULE  # the production build

LOOP_TRANSACTIONS = 10_000
VALGRIND_TRANSACTIONS = 300
SANITIZER_ENV = {
    # halt on the first report; exit non-zero on a leak at exit.
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:"
                    "detect_stack_use_after_return=1:check_initialization_order=1",
    "LSAN_OPTIONS": "detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module", autouse=True)
def sanitizer_builds():
    module_src = [PAM_DIR / "pam_fedlogin.c", PAM_DIR / "fedlogin_proto.c", PAM_DIR / "fedlogin_proto.h",
                  PAM_DIR / "fedlogin_escape.c", PAM_DIR / "fedlogin_escape.h"]
    driver_src = [PAM_DIR / "tests" / "pam_driver.c"]
    for built, sources in ((ASAN_MODULE, module_src), (MODULE, module_src), (ASAN_DRIVER, driver_src),
                           (DRIVER, driver_src)):
        assert built.is_file(), f"{built} missing: run make -C pam OUT={OUT} all asan-module"
        assert built.stat().st_mtime >= max(p.stat().st_mtime for p in sources), \
            f"{built} is older than its sources: run make -C pam OUT={OUT} all asan-module"


# --- the C driver, as a stand-in for harness/pamclient.py -----------------

def sanitizer_env(**extra):
    env = dict(os.environ, **SANITIZER_ENV)
    env.update(extra)
    return env


class DriverTransaction:
    """pamclient.Transaction's interface over one pam_driver process."""

    def __init__(self, driver, env, confdir, service, user, answer, tty=None, rhost=None):
        self.transcript = []
        self._answer = answer
        self._stderr = tempfile.TemporaryFile()
        args = [str(driver)]
        if tty:
            args += ["--tty", tty]
        if rhost:
            args += ["--rhost", rhost]
        args += [str(confdir), service, user if user else "-"]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=env, text=True, bufsize=1)
        self._expect_line("ready")

    def _read(self):
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(30)
            raise AssertionError(f"pam_driver died (exit {self._proc.returncode}):\n{self.stderr()}")
        return line.rstrip("\n")

    def _expect_line(self, want):
        got = self._read()
        assert got == want, f"pam_driver said {got!r}, expected {want!r}\n{self.stderr()}"

    def _send(self, line):
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def run(self, step, flags=0):
        self._send(f"run {step} {flags}")
        while True:
            kind, _, rest = self._read().partition(" ")
            if kind == "rc":
                return int(rest)
            assert kind == "msg", f"unexpected line from pam_driver: {kind} {rest}"
            style, _, text_hex = rest.partition(" ")
            style, text = int(style), bytes.fromhex(text_hex).decode()
            self.transcript.append((style, text))
            reply = self._answer(style, text)
            if style in (pc.PAM_PROMPT_ECHO_OFF, pc.PAM_PROMPT_ECHO_ON):
                self._send("fail" if reply is None else "ans " + reply.encode().hex())
            else:
                self._send("ok")

    def getenv(self, name):
        self._send(f"getenv {name}")
        kind, _, rest = self._read().partition(" ")
        assert kind in ("env", "noenv"), f"unexpected line from pam_driver: {kind} {rest}"
        return bytes.fromhex(rest).decode() if kind == "env" else None

    def end(self, rc=pc.PAM_SUCCESS):
        """pam_end, then the process exits through LeakSanitizer; any report fails."""
        try:
            self._send(f"end {rc}")
            self._proc.stdin.close()
            self._proc.wait(30)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        err = self.stderr()
        self._stderr.close()
        assert self._proc.returncode == 0 and not any(r in err for r in SANITIZER_REPORTS), \
            f"pam_driver exit {self._proc.returncode}:\n{err}"

    def messages(self, style=None):
        return [t for s, t in self.transcript if style is None or s == style]


class DriverClient:
    """Stands in for the `pc` module of test_pam_shim.py: same constants and
    answer helpers, transactions through pam_driver."""

    def __init__(self, driver, env):
        self._driver, self._env = driver, env

    def __getattr__(self, name):
        return getattr(pc, name)

    def Transaction(self, confdir, service, user, answer, tty=None, rhost=None):  # noqa: N802
        return DriverTransaction(self._driver, self._env, confdir, service, user, answer, tty, rhost)

    def authenticate(self, confdir, service, user, answer, steps=("authenticate",), **kw):
        t = self.Transaction(confdir, service, user, answer, **kw)
        codes = []
        try:
            for step in steps:
                rc = t.run(step)
                codes.append(rc)
                if rc != pc.PAM_SUCCESS:
                    break
        finally:
            t.end(codes[-1] if codes else pc.PAM_SUCCESS)
        return codes, t.transcript


def run_logged_asan(confdir, answer, log, user=shim.USER, tty=shim.TTY, rhost=shim.RHOST):
    """test_pam_shim.run_logged with the ASan driver: syslog() lines go to `log`.
    syslog_capture.so is preloaded ahead of the ASan runtime, hence
    verify_asan_link_order=0 (it defines vsyslog/syslog only)."""
    env = sanitizer_env(LD_PRELOAD=str(shim.SYSLOG_CAPTURE), FEDLOGIN_SYSLOG_CAPTURE=str(log))
    env["ASAN_OPTIONS"] += ":verify_asan_link_order=0"
    codes, _ = DriverClient(ASAN_DRIVER, env).authenticate(
        confdir, shim.SERVICE, user, pc.scripted([answer]), tty=tty, rhost=rhost)
    return codes


@pytest.fixture(autouse=True)
def asan_module(monkeypatch):
    """test_pam_shim's scenarios, run here, load the ASan module into the ASan driver."""
    monkeypatch.setattr(shim, "MODULE", ASAN_MODULE)
    monkeypatch.setattr(shim, "pc", DriverClient(ASAN_DRIVER, sanitizer_env()))
    monkeypatch.setattr(shim, "run_logged", run_logged_asan)


# --- 1. every shim scenario under ASan + UBSan + LeakSanitizer ------------

# The two `unprivileged` checks of test_pam_shim.py inspect the production
# .so's exports and links; they say nothing about memory safety.
NOT_RERUN = {"test_exports_only_pam_entry_points", "test_links_only_libc_and_libpam"}
SCENARIOS = sorted(name for name, obj in vars(shim).items()
                   if name.startswith("test_") and callable(obj) and name not in NOT_RERUN)
for _name in SCENARIOS:
    # Collected here as test_asan_<name>, with the fixtures and parameters of the original.
    globals()["test_asan_" + _name[len("test_"):]] = getattr(shim, _name)
del _name


def test_every_shim_scenario_is_rerun():
    assert len(SCENARIOS) >= 25, SCENARIOS
    assert all(("test_asan_" + n[len("test_"):]) in globals() for n in SCENARIOS)


# --- 2 and 3. many transactions in one process ----------------------------

def loop_services(confdir, module, sock):
    """`flloop`: PAM_IGNORE from the module falls through to pam_permit, so
    every step returns PAM_SUCCESS exactly when the module said IGNORE (any
    failure code ends the stack with that code)."""
    confdir.mkdir(exist_ok=True)
    line = f"{module} socket={sock} timeout=5000 connect_timeout=2000"
    (confdir / "flloop").write_text(
        f"auth     [success=bad ignore=ignore default=die] {line}\n"
        "auth     required pam_permit.so\n"
        f"account  [success=bad ignore=ignore default=die] {line}\n"
        "account  required pam_permit.so\n")
    return confdir


def ignoring_daemon(sock, prompt_every=10):
    """A fake fedlogind that answers RESULT IGNORE at once; one AUTHENTICATE
    in `prompt_every` first gets an INFO and a password prompt."""
    counts = {"AUTHENTICATE": 0, "ACCT_MGMT": 0}

    def script(p):
        name, fields = p.recv()
        assert fields[0] == shim.USER.encode(), fields
        counts[name] += 1
        if name == "AUTHENTICATE" and counts[name] % prompt_every == 0:
            p.send("INFO", "working on it")
            p.send("PROMPT_ECHO_OFF", "Password: ")
            assert p.expect("ANSWER") == [b"hunter2"]
        p.send("RESULT", 1, "not a fedlogin user")

    d = FakeDaemon(sock, script)
    d.sock.listen(128)
    return d, counts


def run_loop(cmd, env, timeout):
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - start


def loop_command(driver, confdir, count):
    return [str(driver), "--loop", str(count), "--answer", "hunter2", "--tty", shim.TTY, "--rhost", shim.RHOST,
            str(confdir), "flloop", shim.USER, "authenticate", "acct_mgmt"]


def test_asan_10000_transactions_in_one_process_leak_nothing(sockdir, tmp_path):
    d, counts = ignoring_daemon(sockdir / "d.sock")
    confdir = loop_services(tmp_path / "pam.d", ASAN_MODULE, sockdir / "d.sock")
    proc, elapsed = run_loop(loop_command(ASAN_DRIVER, confdir, LOOP_TRANSACTIONS), sanitizer_env(), 120)
    d.check()
    report = f"exit {proc.returncode} after {elapsed:.1f} s\n{proc.stdout}\n{proc.stderr[:20000]}"
    assert proc.returncode == 0, report
    assert not any(r in proc.stderr for r in SANITIZER_REPORTS), report
    assert (f"loop: {LOOP_TRANSACTIONS} transactions, {2 * LOOP_TRANSACTIONS} steps, 0 unexpected"
            in proc.stdout), report
    assert counts == {"AUTHENTICATE": LOOP_TRANSACTIONS, "ACCT_MGMT": LOOP_TRANSACTIONS}


def test_valgrind_finds_no_error_or_leak(sockdir, tmp_path):
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind missing: apt-get install --no-install-recommends valgrind (scripts/deps.sh)"
    d, counts = ignoring_daemon(sockdir / "d.sock")
    confdir = loop_services(tmp_path / "pam.d", MODULE, sockdir / "d.sock")
    cmd = [valgrind, "--quiet", "--error-exitcode=1", "--leak-check=full",
           "--show-leak-kinds=definite,indirect,possible", "--errors-for-leak-kinds=definite,indirect,possible",
           "--keep-debuginfo=yes"] + loop_command(DRIVER, confdir, VALGRIND_TRANSACTIONS)
    proc, elapsed = run_loop(cmd, dict(os.environ), 120)
    d.check()
    report = f"exit {proc.returncode} after {elapsed:.1f} s\n{proc.stdout}\n{proc.stderr[:20000]}"
    assert proc.returncode == 0, report
    assert "ERROR SUMMARY" not in proc.stderr and "definitely lost" not in proc.stderr, report
    assert (f"loop: {VALGRIND_TRANSACTIONS} transactions, {2 * VALGRIND_TRANSACTIONS} steps, 0 unexpected"
            in proc.stdout), report
    assert counts == {"AUTHENTICATE": VALGRIND_TRANSACTIONS, "ACCT_MGMT": VALGRIND_TRANSACTIONS}
