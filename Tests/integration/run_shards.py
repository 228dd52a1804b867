#!/usr/bin/env python3
"""Runs the integration suite as N shards side by side, each in a mount and
pid namespace of its own (run-in-namespace.sh: its own copy of /etc, its own
processes), so that two shards never share account files or see each
other's daemons. On a 2-core machine most of a test's time is spent waiting
(for a sign-in, a timeout, a process to start), so two shards take about
half the time of one.

    Tests/integration/run_shards.py [--shards N] [--out DIR] PYTHON [PYTEST ARGS...]

Test files are dealt out by their measured running time (WEIGHTS, seconds
on a 2-core machine; a file not listed counts DEFAULT_WEIGHT), the heaviest
first, each to the lightest shard so far. Each shard's output goes to
DIR/integration-shard-K.log and is printed when the shard ends; the last
line sums them up. Exits 1 if any shard failed (or ran no test).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Seconds each file takes alone (pytest --durations=0, summed per file).
WEIGHTS = {
    "test_faults.py": 40,
    "test_first_login.py": 30,
    "test_local_credential.py": 47,
    "test_pam_shim.py": 25,
    "test_login_paths.py": 25,
    "test_secret_memory.py": 30,
    "test_passwd_stack.py": 25,
    "test_lifecycle.py": 27,
    "test_signin_flows.py": 15,
    "test_ssh_console.py": 20,
    "test_pam_sanitizers.py": 20,
    "test_strict_idp.py": 12,
    "test_idps.py": 12,
    "test_daemon.py": 12,
    "test_device_access.py": 10,
    "test_ldap_directory.py": 6,
    "test_ldap_tls.py": 6,
    "test_ldap_failover.py": 25,
    "test_ldap_acl.py": 3,
    "test_flooding.py": 10,
    "test_nss_daemon.py": 6,
}
DEFAULT_WEIGHT = 10


def deal(files, shards):
    groups = [[] for _ in range(shards)]
    load = [0.0] * shards
    for f in sorted(files, key=lambda f: (-WEIGHTS.get(f.name, DEFAULT_WEIGHT), f.name)):
        i = load.index(min(load))
        groups[i].append(f)
        load[i] += WEIGHTS.get(f.name, DEFAULT_WEIGHT)
    return groups


SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "out"))
    ap.add_argument("python")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()

    def basetemp(shard):
        # Of this run alone: two runs on one machine never share (and empty)
        # each other's folders. Short, as sockets are made beneath it.
        return f"/tmp/flit-{os.getpid()}-{shard}"

    files = sorted(HERE.glob("test_*.py"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for k, group in enumerate(deal(files, a.shards)):
        if not group:
            continue
        log = out / f"integration-shard-{k + 1}.log"
        cmd = ["bash", str(HERE / "run-in-namespace.sh"), a.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--basetemp={basetemp(k + 1)}", *a.pytest_args, *[str(f) for f in group]]
        fh = open(log, "w")
        print(f"shard {k + 1}: {' '.join(f.name for f in group)}", flush=True)
        procs.append((k + 1, subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT), fh, log, time.time()))
    totals = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    ok = True
    for k, p, fh, log, start in procs:
        rc = p.wait()
        fh.close()
        text = log.read_text(errors="replace")
        sys.stdout.write(f"--- shard {k} (status {rc}, {time.time() - start:.0f} s) ---\n{text}")
        last = [l for l in text.splitlines() if SUMMARY.search(l)]
        counts = dict((kind, int(n)) for n, kind in SUMMARY.findall(last[-1])) if last else {}
        totals["passed"] += counts.get("passed", 0)
        totals["failed"] += counts.get("failed", 0)
        totals["errors"] += counts.get("errors", 0) + counts.get("error", 0)
        totals["skipped"] += counts.get("skipped", 0)
        if rc != 0 or counts.get("passed", 0) == 0:
            ok = False
    failed = totals["failed"] + totals["errors"]
    print(f"integration: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    if ok:  # kept after a failure, for its files
        for k, *_ in procs:
            shutil.rmtree(basetemp(k), ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
