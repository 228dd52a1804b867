"""Benchmark 6: fedlogin-directoryd on its LDAP backend, against a real slapd
of its own (Tests/integration/harness/slapd.py) holding 10 000 users, 300
groups and 1 000 devices.

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/ldap_directory.py \\
        [--users 10000 --groups 300 --devices 1000] [--requests 2000] [--sync 50] [--storm 500] [--json FILE]

Four measurements, in one run:

1. `lookup`, `access` and `device_users`, p50/p99, two ways side by side,
   each on one persistent connection (driver bench/ldap_bench.c):
   - through fedlogin-directoryd: one connection to its socket, one request
     frame after another, as fedlogind's pooled connections send them;
   - straight to slapd: one connection to the same ldap:// URI, bound once
     as fedlogin-directoryd binds (the bind DN and password file of the
     configuration slapd.directoryd_config() wrote for it), making for each
     request the same searches fedlogin-directoryd's backend makes (listed
     in ldap_bench.c: keep that list in step with LDAPDirectory.swift),
     reading every value.
   - and, for reference, straight to slapd with a new connection and bind
     for each request (`ldap-fresh`): what a backend pays that does not
     keep its LDAP connections.
   The same requests (random users and devices, a fixed seed) in the same
   order every way, in rotating rounds so that all see the same machine.
   The difference of the medians is what fedlogin-directoryd adds (the goal:
   at most 100 us at p50).
2. A directory sync of fedlogind (`fedloginctl sync`) on a device with
   `--sync` associated users: the first sync pre-provisions their accounts
   (useradd for each); the second syncs the existing accounts (a lookup
   each). Both timed.
3. `--storm` first logins at once on the LDAP backend (bench/first_logins.py
   --backend ldap; 0 skips it).

The users are u00000... with a prefix of the run, uid 80000 + i (in the
directory uid range of the default configuration), each in three groups; each
device has five associated users, fedlogind's own device has `--sync` (50).
fedlogin-directoryd binds as fedlogind's device (slapd.directoryd_config()),
and under the shipped ACLs a device reads only its own device entry: the
`access` and `device_users` requests name that device (random users), as
fedlogind's requests do; `device_users` then reads its 50 users. The policy
is the harness's default (self-service on, so device_users also reads the
device's binding entries). The account files in /etc are put back
afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time
import tomllib
from pathlib import Path

import benchlib
import first_logins
import sandbox
import slapd as slapd_harness
from strict_idp import StrictIdP
from world import unique

OPS = ("lookup", "access", "device_users")
MDB_DATABASE = "olcDatabase={1}mdb,cn=config"


def directory(prefix: str, n_users: int, n_groups: int, n_devices: int, n_sync: int, device_id: str):
    """The user records (with their groups) and the devices with their associated users."""
    # One crypt(3) hash for all (a hash each would take minutes to make).
    password_hash = slapd_harness.crypt_hash("Bench-Passw0rd")
    users = []
    for i in range(n_users):
        groups = sorted({f"{prefix}g{(i * k + k) % n_groups:03d}" for k in (1, 7, 13)})
        users.append({"username": f"{prefix}{i:05d}", "groups": groups, "uid": 80000 + i,
                      "password_authority": "directory", "password_hash": password_hash})
    devices = {device_id: [f"{prefix}{i:05d}" for i in range(n_sync)]}
    for d in range(1, n_devices):
        devices[f"{prefix}dev{d:04d}"] = [f"{prefix}{(d * 10 + k) % n_users:05d}" for k in range(5)]
    return users, devices


def request_lines(rng: random.Random, op: str, n: int, users: list[str], devices: list[str]) -> list[str]:
    if op == "lookup":
        return [f"lookup {rng.choice(users)}" for _ in range(n)]
    if op == "access":
        return [f"access {rng.choice(users)} {rng.choice(devices)}" for _ in range(n)]
    return [f"device_users {rng.choice(devices)}" for _ in range(n)]


def timed(tool: Path, argv: list[str]) -> list[int]:
    """The driver's times, in ns, one per measured request."""
    r = subprocess.run([str(tool), *argv], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{tool.name} {argv[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return [int(line.split()[1]) for line in r.stdout.splitlines()]


def side_by_side(tools: dict, world: "BenchWorld", tmp: Path, users: list[str], devices: list[str], n: int,
                 rounds: int = 6, warmup: int = 50) -> dict:
    # Straight to slapd as fedlogin-directoryd connects: its URI, bind DN and password file.
    ldap = tomllib.loads(world.directoryd_config.read_text())["ldap"]
    rng = random.Random(12)
    result = {}
    ldap_args = [ldap["uris"][0], ldap["bind_dn"], ldap["bind_password_file"], ldap["users_base"],
                 ldap["groups_base"], ldap["devices_base"], ldap["policy_dn"]]
    for op in OPS:
        times: dict[str, list[int]] = {"via": [], "straight": [], "fresh": []}
        for r in range(rounds):
            lines = request_lines(rng, op, warmup + n // rounds, users, devices)
            req = tmp / f"{op}-{r}.txt"
            req.write_text("\n".join(lines) + "\n")
            sides = {"via": ["socket", str(world.directoryd.socket), str(req), str(warmup)],
                     "straight": ["ldap", *ldap_args, str(req), str(warmup)],
                     "fresh": ["ldap-fresh", *ldap_args, str(req), str(warmup)]}
            order = list(sides)
            for name in order[r % 3:] + order[:r % 3]:
                times[name].extend(timed(tools["ldap_bench"], sides[name]))
        v, s, f = (benchlib.summary([x / 1000 for x in times[k]]) for k in ("via", "straight", "fresh"))
        result[op] = {"via_directoryd_us": v, "straight_us": s, "straight_new_connection_us": f,
                      "added_p50_us": v["median"] - s["median"], "added_p99_us": v["p99"] - s["p99"]}
    return result


def sync_times(world: "BenchWorld") -> dict:
    """`fedloginctl sync` twice: it pre-provisions the associated users, then
    syncs their accounts. Each: seconds, and what it did (counts; the first
    errors in full)."""
    out = {}
    for name in ("first", "second"):
        t0 = time.monotonic()
        r = world.ctl_json("sync")
        out[f"{name}_sync_s"] = time.monotonic() - t0
        out[f"{name}_sync"] = {k: (len(v) if isinstance(v, list) else v) for k, v in r.items()}
        if r.get("errors"):
            out[f"{name}_sync_errors"] = r["errors"][:3]
    return out


class BenchWorld:
    """World(backend="ldap") for a large directory: slapd from the harness
    (Slapd(...) makes the base entries and the policy), the users, groups and
    devices written by the harness's data_ldif and loaded with one slapadd
    (with a time limit of its own, and a database size to fit them) before
    slapd starts; then fedlogin-directoryd --config
    slapd.directoryd_config(...) and fedlogind, as the tests' World starts
    them."""

    def __init__(self, tmp: Path, idp, records: list[dict], devices: dict[str, list[str]], config: dict):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.directoryd = self.fedlogind = None
        # fedlogind's own device (the first of `devices`, with its users:
        # slapadd does not check that a DN value names an entry) comes with
        # the constructor, so directoryd_config() may bind as it.
        own = next(iter(devices))
        self.slapd = slapd_harness.Slapd(self.tmp / "slapd", devices={own: devices[own]})
        users, groups = slapd_harness.from_directory_records([sandbox.directory_user(**r) for r in records])
        policy = slapd_harness.default_policy()
        base = slapd_harness.data_ldif([], {}, {own: devices[own]}, policy)
        have = {e.split("\n", 1)[0] for e in base.split("\n\n") if e.strip()}
        bulk = [e for e in slapd_harness.data_ldif(users, groups, devices, policy).split("\n\n")
                if e.strip() and e.split("\n", 1)[0] not in have]
        (self.tmp / "bulk.ldif").write_text("\n\n".join(bulk) + "\n")
        # Room for the data: the harness's database is sized for the tests.
        (self.tmp / "size.ldif").write_text(f"dn: {MDB_DATABASE}\nchangetype: modify\nreplace: olcDbMaxSize\n"
                                            f"olcDbMaxSize: {1 << 30}\n")
        for argv in (["slapmodify", "-n0", "-F", str(self.slapd.conf_dir), "-l", str(self.tmp / "size.ldif")],
                     ["slapadd", "-n1", "-F", str(self.slapd.conf_dir), "-l", str(self.tmp / "bulk.ldif")]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                raise RuntimeError(f"{argv[0]} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        try:
            self.slapd.start()
            self.directoryd_config = self.slapd.directoryd_config(self.tmp / "directoryd")
            self.directoryd = sandbox.start_directoryd(self.tmp, Path("/nonexistent"),
                                                       extra_args=["--config", str(self.directoryd_config)])
            self.config = sandbox.write_config(self.tmp, {"demo": idp}, **config)
            self.fedlogind = sandbox.start_fedlogind(self.tmp, self.config)
        except BaseException:
            self.stop()
            raise
        self.socket = Path(tomllib.loads(self.config.read_text())["daemon"]["socket"])

    def ctl_json(self, *args):
        out = subprocess.run([str(sandbox.bin_dir() / "fedloginctl"), *args, "--json", "--socket", str(self.socket)],
                             capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"fedloginctl {' '.join(args)}: {out.stdout}{out.stderr}")
        return json.loads(out.stdout)

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in (self.fedlogind, self.directoryd) if p is not None)

    def stop(self):
        for p in (self.fedlogind, self.directoryd):
            if p is not None and p.alive:
                p.stop()
        self.slapd.stop()


def run(tmp: Path, bin_dir: Path, tools: dict, args) -> dict:
    os.environ["FEDLOGIN_BIN"] = str(bin_dir)
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    prefix = unique("lb") + "u"
    device_id = f"{prefix}dev0000"
    records, devices = directory(prefix, args.users, args.groups, args.devices, args.sync, device_id)
    idp = StrictIdP()
    saved = first_logins.save_accounts()
    world = None
    result: dict = {"users": args.users, "groups": args.groups, "devices": args.devices, "requests": args.requests}
    try:
        t0 = time.monotonic()
        world = BenchWorld(tmp / "world", idp, records, devices,
                           config={"daemon": {"device_id": device_id, "sync_interval": 0}})
        result["setup_s"] = time.monotonic() - t0
        names = [r["username"] for r in records]
        # fedlogin-directoryd binds as fedlogind's device, whose entry is the
        # only device entry it can read (the shipped ACLs): the requests name
        # that device, as fedlogind's do.
        result["ops"] = side_by_side(tools, world, tmp, names, [device_id], args.requests)
        if args.sync:
            result["sync"] = {"accounts": args.sync, **sync_times(world)}
    finally:
        if world is not None:
            world.stop()
            if args.log:
                Path(args.log).write_text(world.logs())
        idp.stop()
        first_logins.restore_accounts(saved, prefix)
    if args.storm:
        result["storm"] = first_logins.run(tmp / "storm", bin_dir, tools, args.storm, args.storm_alone,
                                           backend="ldap")
    return result


def markdown(r: dict) -> str:
    rows = ["| request | through fedlogin-directoryd p50 / p99 | straight to slapd p50 / p99 | added at p50 "
            "(goal <= 100 us) | straight, a new bound connection each p50 / p99 |", "|---|---|---|---|---|"]
    for op, m in r["ops"].items():
        v, s, f = m["via_directoryd_us"], m["straight_us"], m["straight_new_connection_us"]
        verdict = "met" if m["added_p50_us"] <= 100 else "**missed**"
        rows.append(f"| `{op}` | {v['median']:.0f} / {v['p99']:.0f} us | {s['median']:.0f} / {s['p99']:.0f} us | "
                    f"{m['added_p50_us']:.0f} us: {verdict} | {f['median']:.0f} / {f['p99']:.0f} us |")
    if "sync" in r:
        sy = r["sync"]
        rows.append("")
        rows.append(f"Sync of {sy['accounts']} associated accounts: first (pre-provisions them) "
                    f"{sy['first_sync_s']:.2f} s, then (existing accounts) {sy['second_sync_s']:.2f} s.")
    if "storm" in r:
        st = r["storm"]["at_once"]
        rows.append("")
        rows.append(f"{st['count']} first logins at once (LDAP backend): {st['failed']} failed "
                    f"{st['failures'] or ''}, first start to last end {st['span_s']:.1f} s, "
                    f"accounts made {r['storm']['accounts_made']}.")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--groups", type=int, default=300)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per operation and side")
    ap.add_argument("--sync", type=int, default=50, help="associated accounts to sync (0: no sync)")
    ap.add_argument("--storm", type=int, default=500, help="first logins at once on the LDAP backend (0: none)")
    ap.add_argument("--storm-alone", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--log", type=Path, help="write the logs of the daemons here")
    args = ap.parse_args()
    benchlib.require_namespace()
    tmp = benchlib.scratch_dir()
    try:
        tools = benchlib.build_tools(tmp / "tools")
        r = run(tmp / "run", sandbox.bin_dir(), tools, args)
        r["machine"] = benchlib.machine()
        if args.json:
            args.json.write_text(json.dumps(r, indent=2))
        print(json.dumps(r, indent=2))
        print()
        print(markdown(r))
    finally:
        benchlib.remove_dir(tmp)


if __name__ == "__main__":
    main()
