"""Benchmark 5: many first logins in flight at once. N directory users who
have never logged in on the machine start their first login at the same
moment, each in a process of its own (driver login_storm.c) through the
real libpam and pam_fedlogin.so (the `sshd` service of pam/fedlogin.pam,
whose sign-in is the device grant), against the strict test IdP
(Tests/integration/harness/strict_idp.py).

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/first_logins.py [-n 500] [--alone 5] [--backend ldap]

The benchmark gets its own fedlogin-directoryd and fedlogind (the daemon's
shipped sign-in timeout, no periodic directory sync; pam_fedlogin's
per-frame timeout is its default, 10 s). `--backend ldap`: fedlogin-directoryd
serves the same users from a real slapd of their own (harness/slapd.py, as
the integration tests' `World(backend="ldap")`) instead of a directory file.
One first login is made before
anything is measured, so fedlogind has the IdP's discovery document and
keys cached, as on a machine that has been up for a while. Then `--alone`
first logins one after another (the uncontended figure), then the N at
once. Afterwards the account files in /etc are put back as they were and
the new homes removed, so later benchmarks see the same machine.

Each login plays the user of a device-grant sign-in: when fedlogind shows
the code, the user approves it at the IdP (an HTTP POST to its /device
form), presses Enter, and chooses a passcode (twice). Every login must end
with pam_authenticate and pam_acct_mgmt returning PAM_SUCCESS.

Time fedlogin adds to a login, per login:

    added = L - |(C u I) n L|

  L  from just before pam_authenticate to just after pam_acct_mgmt (client
     clock, CLOCK_MONOTONIC);
  C  the calls of the application's conversation function, including the
     user's approval at the IdP (client side);
  I  the IdP's handling of this login's requests from fedlogind (device
     authorization and token requests, matched by the user code): each from
     the IdP's accept() of the connection to the last byte of its answer
     written (IdP side, same clock).

What is in `added`: pam_fedlogin and pam_unix's account check, the
connections to fedlogind, fedlogind's work (directory lookups through
fedlogin-directoryd, ID token verification, the passcode's yescrypt hash,
groupadd/useradd/chpasswd, state database writes) and every wait for a
thread or the CPU behind the other logins; also the parts of an IdP request
the IdP cannot see: libcurl's connect, the time a connection waits in the
IdP's accept queue, and fedlogind picking the answer up. So it is an upper
bound of fedlogin's own latency.

Memory: fedlogind's VmHWM (peak RSS) after the run, and VmRSS, threads and
open descriptors sampled every 0.1 s during it.

Why logins failed: the first ERROR message each login showed, fedlogind's
warnings and errors, and what pam_fedlogin logged (captured with
out/syslog_capture.so when it is built), each counted by message.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import benchlib
import sandbox
from strict_idp import StrictIdP
from world import World, unique

PASSCODE = "Bench-Passc0de"
SERVICE = "sshd"  # fedlogin's built-in flows for sshd: the device grant first
IDP_BACKLOG = 4096
ETC_ACCOUNT_FILES = ("passwd", "shadow", "group", "gshadow", "subuid", "subgid",
                     "passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-")


class TimedIdP(StrictIdP):
    """The strict test IdP, recording for every request the endpoint, the
    device sign-in it belongs to (its user code, for device authorization
    and token requests), when the connection was accepted and when the
    answer was written. Its listen backlog is raised so that a burst of
    connections waits in the accept queue instead of in SYN retries."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.timings: list[tuple[str | None, str | None, int, int]] = []
        self._local = threading.local()
        self._accepted: dict = {}
        server = self._server
        server.socket.listen(IDP_BACKLOG)
        accept = server.get_request
        accepted = self._accepted

        def get_request():
            sock, addr = accept()
            accepted[sock] = time.monotonic_ns()
            return sock, addr

        server.get_request = get_request
        idp = self
        routes = server.RequestHandlerClass.ROUTES

        class Timed(server.RequestHandlerClass):
            def handle(self):
                idp._local.key = None
                try:
                    super().handle()
                finally:
                    end = time.monotonic_ns()
                    path = urllib.parse.urlsplit(getattr(self, "path", "") or "").path
                    idp.timings.append((routes.get(path), idp._local.key,
                                        accepted.pop(self.request, end), end))

        server.RequestHandlerClass = Timed

    def device_authorization(self, headers, form):
        answer = super().device_authorization(headers, form)
        self._local.key = answer["user_code"]
        return answer

    def token_endpoint(self, headers, form):
        grant = self._devices.get(form.get("device_code") or "")
        if grant is not None:
            self._local.key = grant.user_code
        return super().token_endpoint(headers, form)


class Sampler:
    """Samples a process's VmRSS, threads and open descriptors every `period` s."""

    def __init__(self, pid: int, period: float = 0.1):
        self.pid = pid
        self.period = period
        self.max_rss_kb = self.max_threads = self.max_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                s = benchlib.vm_status(self.pid)
                self.max_rss_kb = max(self.max_rss_kb, s.get("VmRSS", 0))
                self.max_threads = max(self.max_threads, s.get("Threads", 0))
                self.max_fds = max(self.max_fds, len(os.listdir(f"/proc/{self.pid}/fd")))
            except OSError:
                pass
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> dict:
    """utime+stime of the process and of its waited-for children (groupadd, useradd, ...), in s."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"self": (int(fields[11]) + int(fields[12])) / tick, "children": (int(fields[13]) + int(fields[14])) / tick}


def union_length(intervals, lo: int, hi: int) -> int:
    """Length of the union of `intervals` clipped to [lo, hi]."""
    total, end = 0, lo
    for a, b in sorted((max(a, lo), min(b, hi)) for a, b in intervals):
        if b <= a or b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def parse(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        f = line.split(" ")
        if len(f) != 12:
            raise RuntimeError(f"login_storm: unexpected line {line!r}")
        conv = [] if f[10] == "-" else [tuple(int(x) for x in p.split(":")) for p in f[10].split(",")]
        out.append({
            "user": f[0], "auth_rc": int(f[1]), "acct_rc": int(f[2]), "t_start": int(f[3]), "t_auth": int(f[4]),
            "t_auth_end": int(f[5]), "t_acct_end": int(f[6]), "t_end": int(f[7]),
            "code": None if f[8] == "-" else f[8], "http": int(f[9]), "conv": conv,
            "error": None if f[11] == "-" else f[11].replace("_", " "),
        })
    return out


def storm(tools: dict, world: World, idp: TimedIdP, prefix: str, first: int, count: int, mode: str) -> dict:
    idp.timings.clear()
    # What pam_fedlogin logs (why a login failed), through the test helper
    # that appends syslog() lines to a file, when it is built.
    env = dict(os.environ)
    capture = sandbox.out_dir() / "syslog_capture.so"
    syslog = world.tmp / f"pam-syslog-{first}.txt"
    if capture.exists():
        env.update(LD_PRELOAD=str(capture), FEDLOGIN_SYSLOG_CAPTURE=str(syslog))
    t0 = time.monotonic()
    out = subprocess.run([str(tools["login_storm"]), str(world.confdir), SERVICE, PASSCODE, str(idp.port), prefix,
                          str(first), str(count), mode], capture_output=True, text=True, timeout=3600, env=env)
    wall = time.monotonic() - t0
    logins = parse(out.stdout)
    if len(logins) != count:
        raise RuntimeError(f"login_storm: {len(logins)} result lines for {count} logins\n{out.stderr}")
    by_code: dict[str, list[tuple[int, int]]] = {}
    shared = {}
    for endpoint, key, a, b in list(idp.timings):
        if key is not None and endpoint in ("device_authorization", "token"):
            by_code.setdefault(key, []).append((a, b))
        elif endpoint not in ("device",):  # the users' approvals are part of the conversation
            shared[endpoint] = shared.get(endpoint, 0) + 1
    for r in logins:
        lo, hi = r["t_auth"], r["t_acct_end"]
        idp_iv = by_code.get(r["code"], []) if r["code"] else []
        r["ok"] = r["auth_rc"] == 0 and r["acct_rc"] == 0
        r["login_ms"] = (hi - lo) / 1e6
        r["conv_ms"] = union_length(r["conv"], lo, hi) / 1e6
        r["idp_ms"] = union_length(idp_iv, lo, hi) / 1e6
        r["idp_requests"] = len(idp_iv)
        r["added_ms"] = (hi - lo - union_length(r["conv"] + idp_iv, lo, hi)) / 1e6
    ok = [r for r in logins if r["ok"]]
    failures: dict[str, int] = {}
    for r in logins:
        if not r["ok"]:
            why = f"auth {r['auth_rc']} acct {r['acct_rc']}: {r['error'] or 'no message'}"
            failures[why] = failures.get(why, 0) + 1
    result = {
        "count": count, "mode": mode, "failed": count - len(ok), "failures": failures, "wall_s": wall,
        "span_s": (max(r["t_acct_end"] for r in logins) - min(r["t_auth"] for r in logins)) / 1e9,
        "other_idp_requests": shared,
        "pam_fedlogin_log": pam_log_summary(syslog),
    }
    failed = [r for r in logins if not r["ok"]]
    if failed:
        result["failed_login_ms"] = benchlib.summary([r["login_ms"] for r in failed])
        # How far they got: fedlogind had shown the sign-in (a user code), or not.
        result["failed_after_sign_in_shown"] = sum(1 for r in failed if r["code"])
    if ok:
        for key in ("login_ms", "conv_ms", "idp_ms", "added_ms"):
            result[key] = benchlib.summary([r[key] for r in ok])
        result["idp_requests_per_login"] = benchlib.summary([r["idp_requests"] for r in ok])
    return result


def pam_log_summary(path: Path, limit: int = 8) -> dict[str, int]:
    """pam_fedlogin's syslog lines, counted by message (usernames and numbers blanked)."""
    counts: dict[str, int] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return counts
    for line in lines:
        if "pam_fedlogin" not in line:
            continue
        text = re.sub(r"\S*/fedlogind\.sock", "fedlogind.sock", line.split("\t", 1)[-1])
        text = re.sub(r"[0-9]+", "N", re.sub(r"user=\S+", "user=U", text))[:200]
        counts[text] = counts.get(text, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])


def save_accounts() -> dict[str, bytes]:
    return {n: (Path("/etc") / n).read_bytes() for n in ETC_ACCOUNT_FILES if (Path("/etc") / n).exists()}


def restore_accounts(saved: dict[str, bytes], prefix: str):
    """Puts the account files back as they were and removes the homes the
    run made, so later benchmarks see the same machine as before."""
    for name, data in saved.items():
        (Path("/etc") / name).write_bytes(data)
    for home in Path("/home").glob(f"{prefix}*"):
        shutil.rmtree(home, ignore_errors=True)


def daemon_problems(log: str, limit: int = 8) -> dict[str, int]:
    """fedlogind's warnings, errors and abandoned logins, counted by message
    (usernames and numbers blanked), the most frequent first."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[2] != "fedlogind:":
            continue
        level, text = parts[1], parts[3].split("] ", 1)[-1]
        if level not in ("warning", "error", "critical") and "abandoned" not in text:
            continue
        text = re.sub(r"[0-9]+", "N", text.split(" - while executing", 1)[0])[:200]
        counts[f"{level}: {text}"] = counts.get(f"{level}: {text}", 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])


def run(tmp: Path, bin_dir: Path, tools: dict, n: int = 500, alone: int = 5, log_copy: Path | None = None,
        backend: str = "file") -> dict:
    os.environ["FEDLOGIN_BIN"] = str(bin_dir)  # the harness reads it per start
    tmp = Path(tmp)
    prefix = unique("fl") + "u"
    names = [f"{prefix}{i}" for i in range(alone + n + 1)]
    idp = TimedIdP()
    saved = save_accounts()
    world = None
    try:
        for name in names:
            idp.add_user(name, email=f"{name}@example.test")
        # The daemon's own sign-in timeout (the tests shorten it). No periodic
        # directory sync: it would run in the middle of the logins at a moment
        # that differs from run to run.
        world = World(tmp, idp, names, config={"signin": {"timeout": None}, "daemon": {"sync_interval": 0}},
                      backend=backend)
        pid = world.fedlogind.pid
        warm = storm(tools, world, idp, prefix, 0, 1, "one-by-one")
        if warm["failed"]:
            raise RuntimeError(f"the warm-up first login failed: {warm['failures']}\n{world.logs()[-4000:]}")
        result = {"n": n, "alone_n": alone, "prefix": prefix, "backend": backend}
        if alone:
            result["alone"] = storm(tools, world, idp, prefix, 1, alone, "one-by-one")
        before = benchlib.vm_status(pid)
        cpu0 = cpu_seconds(pid)
        with Sampler(pid) as sampler:
            result["at_once"] = storm(tools, world, idp, prefix, alone + 1, n, "at-once")
        cpu1 = cpu_seconds(pid)
        after = benchlib.vm_status(pid)
        result["memory"] = {
            "rss_before_kb": before["VmRSS"], "rss_after_kb": after["VmRSS"], "hwm_kb": after["VmHWM"],
            "sampled_max_rss_kb": sampler.max_rss_kb, "max_threads": sampler.max_threads,
            "max_fds": sampler.max_fds,
        }
        result["cpu_s"] = {k: cpu1[k] - cpu0[k] for k in cpu0}
        passwd = [line.split(":") for line in Path("/etc/passwd").read_text().splitlines()]
        stormed, everyone = set(names[alone + 1:]), set(names)
        result["accounts_made"] = sum(1 for f in passwd if f[0] in stormed)
        uids = [f[2] for f in passwd if f[0] in everyone]
        result["duplicate_uids"] = len(uids) - len(set(uids))
        result["daemon_log_problems"] = daemon_problems(world.fedlogind.log_text())
        return result
    finally:
        if world is not None:
            world.stop()
            if log_copy is not None:
                Path(log_copy).write_text(world.logs())
        idp.stop()
        restore_accounts(saved, prefix)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="first logins at once (default 500)")
    ap.add_argument("--alone", type=int, default=5, help="first logins one by one before (default 5)")
    ap.add_argument("--log", type=Path, help="write the logs of fedlogind and fedlogin-directoryd here")
    ap.add_argument("--backend", choices=("file", "ldap"), default="file",
                    help="fedlogin-directoryd's backend: a directory file (default) or a real slapd")
    args = ap.parse_args()
    import json
    benchlib.require_namespace()
    tmp = benchlib.scratch_dir()
    try:
        tools = benchlib.build_tools(tmp / "tools")
        print(json.dumps(run(tmp / "debug", sandbox.bin_dir(), tools, args.n, args.alone, args.log, args.backend),
                         indent=2))
    finally:
        benchlib.remove_dir(tmp)


if __name__ == "__main__":
    main()
