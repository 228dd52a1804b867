"""Benchmark 2: pam_fedlogin <-> fedlogind request round trips, with the C
client rtt_client.c doing what the PAM module does for a request the daemon
answers alone (lstat, connect, SO_PEERCRED, one frame out, frames in until
the final one, close). The floor is echo_server.c: the same framing served
by a single-threaded blocking C server that does no work.

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/roundtrip.py [-n 2000]

Requests:
  AUTHENTICATE root            a local, non-fedlogin user: RESULT IGNORE
  AUTHENTICATE <provisioned>   a fedlogin account: RESULT IGNORE (pam_unix decides)
  NSS_GETPWNAM <unknown>       NSS_NOTFOUND
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import benchlib
import sandbox


def client(tools: dict, socket_path, n: int, warmup: int, kind: str, name: str) -> dict:
    out = subprocess.run([str(tools["rtt_client"]), str(socket_path), str(n), str(warmup), kind, name],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"rtt_client {kind} {name} failed: {out.stderr}")
    samples = [int(x) / 1000.0 for x in out.stdout.split()]  # µs
    result = benchlib.summary(samples)
    result["reply"] = out.stderr.strip().split("\n")[-1]
    return result


def floor(tools: dict, tmp: Path, n: int, warmup: int) -> dict:
    sock = sandbox.short_dir(tmp) / "echo.sock"
    server = sandbox.Process("echo_server", [tools["echo_server"], sock], tmp)
    try:
        server.wait_for_socket(sock, 10)
        return client(tools, sock, n, warmup, "authenticate", "root")
    finally:
        server.stop()


def run(machine: benchlib.BenchMachine, tools: dict, n: int = 2000, warmup: int = 200) -> dict:
    result = {"n": n, "warmup": warmup, "unit": "us"}
    result["authenticate_root"] = client(tools, machine.socket, n, warmup, "authenticate", "root")
    result["authenticate_provisioned"] = client(tools, machine.socket, n, warmup, "authenticate", machine.user)
    result["nss_getpwnam"] = client(tools, machine.socket, n, warmup, "getpwnam", "nosuchuser")
    result["floor"] = floor(tools, machine.tmp / "echo", n, warmup)
    for key, want in (("authenticate_root", "reply 0x86 1"), ("authenticate_provisioned", "reply 0x86 1"),
                      ("nss_getpwnam", "reply 0x92 0"), ("floor", "reply 0x86 1")):
        if result[key]["reply"] != want:
            raise RuntimeError(f"{key}: unexpected {result[key]['reply']!r} (expected {want!r})")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="round trips per request kind (default 2000)")
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()
    benchlib.run_standalone(lambda machine, tools: run(machine, tools, args.n, args.warmup), tools=True)


if __name__ == "__main__":
    main()
