"""Benchmark 3: fedlogind's start-to-ready time and idle memory.

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/daemon_start.py [--starts 10]

Start to ready: from just before the process is spawned to the first
successful connect() on its socket (polled every 0.5 ms), with the
configuration and state of a machine that has one provisioned user (a
restart, as after a reboot or an upgrade). Idle RSS: VmRSS from
/proc/PID/status `settle` seconds after ready, with no request served.
Each start is stopped with SIGTERM before the next.
"""
from __future__ import annotations

import argparse
import os
import socket
import stat
import time
from pathlib import Path

import benchlib
import sandbox


def _connectable(path: str) -> bool:
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except (ConnectionRefusedError, FileNotFoundError):
            return False


def one_start(tmp: Path, config: Path, settle: float, timeout: float = 30.0) -> dict:
    sock = None
    t0 = time.monotonic()
    proc = sandbox.start_fedlogind(tmp, config, wait=False)
    try:
        sock = str(proc.socket)
        # A stale socket file from the previous run refuses connections until
        # the new daemon binds, so connect() success is the signal.
        while not _connectable(sock):
            if not proc.alive:
                raise RuntimeError(f"fedlogind exited with {proc.returncode}\n{proc.log_text()[-3000:]}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"fedlogind not ready after {timeout} s")
            time.sleep(0.0005)
        ready_ms = (time.monotonic() - t0) * 1000
        time.sleep(settle)
        mem = benchlib.vm_status(proc.pid)
        return {"ready_ms": ready_ms, **mem}
    finally:
        proc.stop()


def run(machine: benchlib.BenchMachine, starts: int = 10, settle: float = 2.0) -> dict:
    """Stops the machine's fedlogind, then starts it `starts` times."""
    if machine.fedlogind and machine.fedlogind.alive:
        machine.fedlogind.stop()
    os.environ["FEDLOGIN_BIN"] = str(machine.bin_dir)
    runs = [one_start(machine.tmp / "starts", machine.world.config, settle) for _ in range(starts)]
    return {
        "starts": starts,
        "settle_s": settle,
        "ready_ms": benchlib.summary([r["ready_ms"] for r in runs]),
        "idle_rss_kb": benchlib.summary([r["VmRSS"] for r in runs]),
        "idle_hwm_kb": benchlib.summary([r["VmHWM"] for r in runs]),
        "threads": runs[-1].get("Threads"),
        "runs": runs,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between ready and reading VmRSS")
    args = ap.parse_args()
    benchlib.run_standalone(lambda machine, _: run(machine, args.starts, args.settle))


if __name__ == "__main__":
    main()
