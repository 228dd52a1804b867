"""Runs every fedlogin benchmark for each daemon build and prints one
Markdown table (the goals beside the figures). Run it through bench/run.sh,
which enters the private mount namespace first.

    .venv/bin/python bench/run_all.py [--build NAME=DIR ...] [--n-pam 200] [--n-rtt 2000]
                                      [--nss-runs 5] [--nss-ms 1000] [--starts 10]
                                      [--storm 500] [--storm-alone 5] [--ldap] [--json FILE]

Builds: every --build NAME=DIR (DIR holds fedlogind and fedlogin-directoryd);
by default `debug` (.build/debug, or $FEDLOGIN_BIN) and, when it exists,
.build-release/release (named `release`, or `release-static` when built
with --static-swift-stdlib). Each build gets its own fedlogind,
fedlogin-directoryd and provisioned user; oidc-provider-mock is shared. The
first-login storm (--storm N at once, 0 to skip) gets its own daemons and
the strict test IdP. --ldap adds the LDAP backend's benchmark
(bench/ldap_directory.py without its first logins at once: 10 000 users in a
slapd of its own; directory requests through fedlogin-directoryd vs straight
to slapd, and a sync of 50 accounts).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import daemon_start
import first_logins
import ldap_directory
import nss_lookup
import pam_stack
import roundtrip

# The goals (performance is measured and reported, never asserted by the tests).
GOAL_OVERHEAD = 0.05  # fedlogin stack vs pam_unix alone, median login time
GOAL_RTT_P50_US = 100.0
GOAL_RTT_P99_US = 1000.0
GOAL_RSS_MB = 30.0  # MB = 10^6 bytes
GOAL_READY_MS = 200.0
GOAL_NSS_PER_S = 20000.0  # getpwnam of a directory user, 1 and 4 threads
GOAL_NSS_MISS_RATIO = 2.0  # a miss with fedlogin in nsswitch.conf vs `files` alone
GOAL_STORM_RSS_MB = 60.0  # fedlogind's peak RSS through N first logins at once
GOAL_STORM_ADDED_MS = 100.0  # median time fedlogin adds per first login, IdP and conversation excluded
GOAL_LDAP_ADDED_US = 100.0  # fedlogin-directoryd over the same LDAP searches straight to slapd, p50


def default_builds() -> list[tuple[str, Path]]:
    builds = [("debug", Path(os.environ.get("FEDLOGIN_BIN") or benchlib.REPO / ".build" / "debug"))]
    release = benchlib.REPO / ".build-release" / "release"
    if (release / "fedlogind").exists() and (release / "fedlogin-directoryd").exists():
        builds.append(("release" if links_swift_runtime(release / "fedlogind") else "release-static", release))
    return builds


def links_swift_runtime(exe: Path) -> bool:
    """False for a build made with --static-swift-stdlib."""
    out = subprocess.run(["ldd", str(exe)], capture_output=True, text=True)
    return "libswiftCore.so" in out.stdout


def parse_build(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--build wants NAME=DIR, not {text!r}")
    return name, Path(path).absolute()


def bench_build(name: str, bin_dir: Path, idp, tools: dict, tmp: Path, args) -> dict:
    for exe in ("fedlogind", "fedlogin-directoryd"):
        if not (bin_dir / exe).exists():
            sys.exit(f"{bin_dir / exe} is missing: build it first")
    log = lambda what: print(f"[{name}] {what}", file=sys.stderr, flush=True)  # noqa: E731
    # A copy: a rebuild of the build folder during the run cannot change what is measured.
    snapshot = benchlib.snapshot_bin(bin_dir, tmp / name / "bin")
    log("provisioning a user through a first login")
    machine = benchlib.BenchMachine(tmp / name, idp, snapshot)
    try:
        result = {"bin_dir": str(bin_dir), "fedlogind_bytes": (snapshot / "fedlogind").stat().st_size}
        log(f"PAM stacks: {args.n_pam} logins each, interleaved")
        result["pam"] = pam_stack.run(machine, tools, args.n_pam, args.warmup_pam)
        log(f"round trips: {args.n_rtt} per request")
        result["rtt"] = roundtrip.run(machine, tools, args.n_rtt, args.warmup_rtt)
        result["loaded"] = benchlib.vm_status(machine.fedlogind.pid)
        log(f"NSS lookups: {args.nss_runs} runs of {args.nss_ms} ms each")
        result["nss"] = nss_lookup.run(machine, tools, args.nss_runs, args.nss_ms)
        log(f"starts: {args.starts}")
        result["start"] = daemon_start.run(machine, args.starts, args.settle)
    finally:
        machine.stop()
    if args.storm:
        log(f"first logins: {args.storm_alone} one by one, then {args.storm} at once")
        result["storm"] = first_logins.run(tmp / name / "storm", snapshot, tools, args.storm, args.storm_alone)
    if args.ldap:
        log("LDAP backend: 10 000 users, directory requests both ways, a sync of 50 accounts")
        result["ldap"] = ldap_directory.run(tmp / name / "ldap", snapshot, tools, argparse.Namespace(
            users=10000, groups=300, devices=1000, requests=2000, sync=50, storm=0, storm_alone=0, log=None))
    return result


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def mb(kb: float) -> float:
    return kb * 1024 / 1e6


def rows(r: dict) -> dict[str, str]:
    p, t, s, n = r["pam"], r["rtt"], r["start"], r["nss"]
    f, u = p["fedlogin"]["login"], p["unix"]["login"]
    over = p["ratio_median"] - 1
    over90 = p["ratio_p90"] - 1
    ar = t["authenticate_root"]
    rss = mb(s["idle_rss_kb"]["median"])
    ready = s["ready_ms"]["median"]

    def rtt(x):
        return f"{x['median']:.0f} / {x['p99']:.0f} µs"

    return {
        "login_fedlogin": f"{f['median']:.2f} / {f['p90']:.2f} ms",
        "login_unix": f"{u['median']:.2f} / {u['p90']:.2f} ms",
        "overhead": (f"{over * 100:+.1f} % (p90 {over90 * 100:+.1f} %): "
                     f"{verdict(over <= GOAL_OVERHEAD)}"),
        "added": f"{p['paired_added_ms']['median'] * 1000:.0f} µs",
        "module": f"{p['fedlogin-module']['login']['median'] * 1000:.0f} / {p['fedlogin-module']['login']['p90'] * 1000:.0f} µs",
        "txn_fedlogin": f"{p['fedlogin']['transaction']['median']:.2f} ms",
        "txn_unix": f"{p['unix']['transaction']['median']:.2f} ms",
        "rtt_root": (f"{rtt(ar)}: p50 {verdict(ar['median'] <= GOAL_RTT_P50_US)}, "
                     f"p99 {verdict(ar['p99'] <= GOAL_RTT_P99_US)}"),
        "rtt_user": rtt(t["authenticate_provisioned"]),
        "rtt_nss": rtt(t["nss_getpwnam"]),
        "rtt_floor": rtt(t["floor"]),
        "rss": f"{rss:.1f} MB: {verdict(rss <= GOAL_RSS_MB)}",
        "rss_loaded": f"{mb(r['loaded']['VmRSS']):.1f} MB (peak {mb(r['loaded']['VmHWM']):.1f} MB)",
        "ready": (f"{ready:.0f} ms (p90 {s['ready_ms']['p90']:.0f} ms): "
                  f"{verdict(ready <= GOAL_READY_MS)}"),
        "size": f"{r['fedlogind_bytes'] / 1e6:.0f} MB",
        "nss_dir_1": nss_rate(n["directory_1"]),
        "nss_dir_4": nss_rate(n["directory_4"]),
        "nss_miss": (f"{n['miss_fedlogin']['cost_us']:.1f} µs vs {n['miss_files']['cost_us']:.1f} µs: "
                     f"{n['miss_ratio']:.2f}x: {verdict(n['miss_ratio'] < GOAL_NSS_MISS_RATIO)}"),
        "nss_local": (f"{n['local_fedlogin']['cost_us']:.1f} µs vs {n['local_files']['cost_us']:.1f} µs "
                      f"({n['local_ratio']:.2f}x)"),
        **storm_rows(r.get("storm")),
        **ldap_rows(r.get("ldap")),
    }


def ldap_rows(ld: dict | None) -> dict[str, str]:
    if ld is None:
        return {f"ldap_{op}": "not run" for op in (*ldap_directory.OPS, "sync")}
    out = {}
    for op, m in ld["ops"].items():
        v, s = m["via_directoryd_us"], m["straight_us"]
        out[f"ldap_{op}"] = (f"{v['median']:.0f} vs {s['median']:.0f} µs (+{m['added_p50_us']:.0f} µs): "
                             f"{verdict(m['added_p50_us'] <= GOAL_LDAP_ADDED_US)}")
    sy = ld.get("sync")
    out["ldap_sync"] = f"{sy['second_sync_s']:.2f} s (first, pre-provisioning: {sy['first_sync_s']:.2f} s)" if sy else "-"
    return out


def nss_rate(m: dict) -> str:
    return (f"{m['per_s']:,.0f}/s (p50 {m['p50_us']:.0f} µs): {verdict(m['per_s'] >= GOAL_NSS_PER_S)}"
            .replace(",", " "))


def storm_rows(st: dict | None) -> dict[str, str]:
    if st is None:
        return {k: "not run" for k in ("storm_failed", "storm_rss", "storm_added", "storm_parts", "storm_span",
                                      "storm_alone")}
    a = st["at_once"]
    hwm = mb(st["memory"]["hwm_kb"])
    out = {
        "storm_failed": f"{a['failed']} of {a['count']}: {verdict(a['failed'] == 0)}",
        "storm_rss": (f"{hwm:.1f} MB ({st['memory']['max_threads']} threads, {st['memory']['max_fds']} fds at most): "
                      f"{verdict(hwm <= GOAL_STORM_RSS_MB)}"),
        "storm_span": (f"{a['span_s']:.1f} s ({st['accounts_made']} accounts made, "
                       f"{st['accounts_made'] / a['span_s']:.1f}/s)"),
    }
    if "added_ms" in a:
        added = a["added_ms"]
        out["storm_added"] = (f"{added['median']:.0f} / {added['p90']:.0f} ms: "
                              f"{verdict(added['median'] <= GOAL_STORM_ADDED_MS)}")
        out["storm_parts"] = (f"{a['login_ms']['median']:.0f} / {a['idp_ms']['median']:.0f} / "
                              f"{a['conv_ms']['median']:.0f} ms")
    else:
        out["storm_added"] = out["storm_parts"] = "no login succeeded"
    alone = st.get("alone")
    out["storm_alone"] = (f"{alone['added_ms']['median']:.0f} ms (login {alone['login_ms']['median']:.0f} ms)"
                          if alone and "added_ms" in alone else "-")
    return out


LINES = [
    ("login_fedlogin", "Login, fedlogin stack (pam_fedlogin + pam_unix): median / p90", "-"),
    ("login_unix", "Login, pam_unix alone: median / p90", "-"),
    ("overhead", "fedlogin stack over pam_unix alone (median)", "<= 5 %"),
    ("added", "Time added per login (median of paired differences)", "-"),
    ("module", "pam_fedlogin alone (its auth and account lines + pam_permit): median / p90", "-"),
    ("txn_fedlogin", "Whole transaction incl. pam_start/pam_end, fedlogin stack (median)", "-"),
    ("txn_unix", "Whole transaction incl. pam_start/pam_end, pam_unix alone (median)", "-"),
    ("rtt_root", "Round trip AUTHENTICATE root -> IGNORE: p50 / p99", "p50 <= 100 µs, p99 <= 1 ms"),
    ("rtt_user", "Round trip AUTHENTICATE provisioned user -> IGNORE: p50 / p99", "-"),
    ("rtt_nss", "Round trip NSS_GETPWNAM -> NOTFOUND: p50 / p99", "-"),
    ("rtt_floor", "Round trip floor, C echo server, same framing: p50 / p99", "-"),
    ("rss", "Idle RSS after start (VmRSS, median of starts)", "<= 30 MB"),
    ("rss_loaded", "RSS after the login and round trip runs", "-"),
    ("ready", "Start to socket ready (median of starts)", "<= 200 ms"),
    ("size", "fedlogind executable size", "-"),
    ("nss_dir_1", "NSS getpwnam, directory user not yet local, 1 thread", ">= 20 000/s"),
    ("nss_dir_4", "NSS getpwnam, directory user not yet local, 4 threads", ">= 20 000/s"),
    ("nss_miss", "NSS getpwnam miss, per lookup: files fedlogin vs files", "< 2x"),
    ("nss_local", "NSS getpwnam local user, per lookup: files fedlogin vs files", "equal"),
    ("storm_failed", "First logins at once: failed", "0"),
    ("storm_rss", "First logins at once: fedlogind peak RSS (VmHWM)", "<= 60 MB"),
    ("storm_added", "First logins at once: time fedlogin adds (IdP, conversation excluded): median / p90",
     "median <= 100 ms"),
    ("storm_parts", "First logins at once: login / IdP / conversation time (medians)", "-"),
    ("storm_span", "First logins at once: first start to last end (accounts made)", "-"),
    ("storm_alone", "First login alone (one by one): time fedlogin adds, median", "-"),
    ("ldap_lookup", "LDAP, 10 000 users: `lookup` p50 through fedlogin-directoryd vs straight to slapd",
     "+ <= 100 µs"),
    ("ldap_access", "LDAP, 10 000 users: `access` p50 through fedlogin-directoryd vs straight to slapd",
     "+ <= 100 µs"),
    ("ldap_device_users", "LDAP, 10 000 users: `device_users` p50 through fedlogin-directoryd vs straight",
     "+ <= 100 µs"),
    ("ldap_sync", "LDAP: sync of 50 associated accounts", "-"),
]


def markdown(results: dict, info: dict, args) -> str:
    names = list(results)
    out = []
    m = info["machine"]
    out.append(f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, {m['memory_mib']} MiB RAM.  ")
    out.append("Builds: " + ", ".join(f"{n} ({results[n]['bin_dir']})" for n in names) + ".  ")
    out.append(f"N: {args.n_pam} logins per PAM stack (interleaved, after {args.warmup_pam} warm-up rounds); "
               f"{args.n_rtt} round trips per request (after {args.warmup_rtt} warm-up); "
               f"{args.nss_runs} NSS runs of {args.nss_ms} ms per lookup kind; "
               f"{args.starts} starts ({args.settle:g} s idle before reading VmRSS); "
               f"{args.storm} first logins at once (after {args.storm_alone} one by one).  ")
    out.append(f"Run: {info['started']}, {info['seconds']:.0f} s; load average before {info['load_before']}, "
               f"after {m['loadavg']}.")
    out.append("")
    per_build = {n: rows(results[n]) for n in names}
    out.append("| Measure | Goal | " + " | ".join(names) + " |")
    out.append("|---|---|" + "---|" * len(names))
    for key, label, goal in LINES:
        out.append(f"| {label} | {goal} | " + " | ".join(per_build[n][key] for n in names) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", type=parse_build, metavar="NAME=DIR")
    ap.add_argument("--n-pam", type=int, default=200)
    ap.add_argument("--warmup-pam", type=int, default=10)
    ap.add_argument("--n-rtt", type=int, default=2000)
    ap.add_argument("--warmup-rtt", type=int, default=200)
    ap.add_argument("--nss-runs", type=int, default=5)
    ap.add_argument("--nss-ms", type=int, default=1000)
    ap.add_argument("--storm", type=int, default=500, help="first logins at once (0: skip)")
    ap.add_argument("--storm-alone", type=int, default=5, help="first logins one by one before the storm")
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--ldap", action="store_true", help="also the LDAP backend's benchmark (a minute or more per build)")
    ap.add_argument("--json", type=Path, help="also write every figure (and the raw start runs) here")
    args = ap.parse_args()
    benchlib.require_namespace()
    builds = args.build or default_builds()

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = benchlib.loadavg()
    t0 = time.monotonic()
    tmp = benchlib.scratch_dir()
    idp = None
    results = {}
    try:
        tools = benchlib.build_tools(tmp / "tools")
        idp = benchlib.start_idp(tmp / "idp")
        for name, bin_dir in builds:
            results[name] = bench_build(name, Path(bin_dir), idp, tools, tmp, args)
    finally:
        if idp:
            idp.stop()
        benchlib.remove_dir(tmp)
    info = {"machine": benchlib.machine(), "load_before": load_before, "started": started,
            "seconds": time.monotonic() - t0}
    if args.json:
        args.json.write_text(json.dumps({"info": info, "results": results}, indent=2) + "\n")
    print(markdown(results, info, args))


if __name__ == "__main__":
    main()
