"""Benchmark 4: user lookups through glibc's NSS with libnss_fedlogin.so.2,
as every program makes them (getpwnam_r, driver nss_bench.c).

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/nss_lookup.py [--runs 5] [--ms 1000]

Each measurement runs nss_bench in a mount namespace of its own, nested in
the benchmark's, where (as on a machine with the Debian package installed):

  /etc/nsswitch.conf  `passwd: files fedlogin` and `group: files fedlogin`
                      (variant "fedlogin"), or `passwd: files` and
                      `group: files` (variant "files", the baseline);
                      every other line as in /etc/nsswitch.conf
  /etc/ld.so.cache    the system's libraries plus a copy of
                      out/libnss_fedlogin.so.2, so glibc loads the module by
                      its plain name
  /run                a fresh tmpfs with /run/fedlogin bound to the folder of
                      the benchmark daemon's socket, which is therefore
                      /run/fedlogin/fedlogind.sock, the module's fixed path

Lookups:
  directory  a directory user with no local account: `files` misses, then
             fedlogind answers (a passwd entry with a reserved uid)
  miss       a name neither local nor in the directory: both sources miss
  local      a local account: `files` answers, fedlogin is never asked

fedlogind caches its answers for 10 s per name; every run starts with
WARMUP unmeasured lookups, so the cache is warm (an entry expires 10 s after
it was made, so about one lookup per 10 s of a run asks the directory again).
The variants and lookups take turns, run by run; the figures are medians of
the runs.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import benchlib
import nested
import sandbox
from world import unique

MODULE = "libnss_fedlogin.so.2"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (key, lookup kind, nsswitch variant, threads)
MEASURES = [
    ("directory_1", "directory", "fedlogin", 1),
    ("directory_4", "directory", "fedlogin", 4),
    ("miss_fedlogin", "miss", "fedlogin", 1),
    ("miss_files", "miss", "files", 1),
    ("local_fedlogin", "local", "fedlogin", 1),
    ("local_files", "local", "files", 1),
]

SETUP = """\
#!/bin/bash
# Mounts the benchmark's nsswitch.conf, ld.so.cache and /run/fedlogin, then runs the command.
set -euo pipefail
nsswitch="$1" cache="$2" sockdir="$3" stage="$4"
shift 4
mount -n --bind "$nsswitch" /etc/nsswitch.conf
mount -n --bind "$cache" /etc/ld.so.cache
mount -n -t tmpfs -o mode=755 tmpfs "$stage"
mkdir -m 755 "$stage/fedlogin"
mount -n --bind "$sockdir" "$stage/fedlogin"
mount -n --move "$stage" /run
exec "$@"
"""


def nsswitch_text(original: str, sources: str) -> str:
    """`original` with its passwd and group lines set to `sources`."""
    out, seen = [], set()
    for line in original.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in ("passwd", "group") and ":" in line and not line.lstrip().startswith("#"):
            out.append(f"{key}:         {sources}")
            seen.add(key)
        else:
            out.append(line)
    out += [f"{key}:         {sources}" for key in ("passwd", "group") if key not in seen]
    return "\n".join(out) + "\n"


def ld_cache(tmp: Path, module: Path) -> Path:
    """An ld.so.cache of the system's libraries plus a copy of `module`."""
    libdir = tmp / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(module, libdir / MODULE)
    return nested.make_ld_cache(tmp, libdir)


class Namespaces:
    """The files of the two nsswitch variants and the command line that runs
    a program in a mount namespace with one of them."""

    def __init__(self, tmp: Path, socket_path: Path):
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        sock = Path(socket_path).resolve()
        if sock.name != "fedlogind.sock":
            raise ValueError(f"{sock}: the NSS module only talks to a socket named fedlogind.sock")
        self.socket_dir = sock.parent
        self.cache = ld_cache(self.dir / "ld", sandbox.out_dir() / MODULE)
        original = Path("/etc/nsswitch.conf").read_text()
        self.nsswitch = {}
        for variant, sources in (("fedlogin", "files fedlogin"), ("files", "files")):
            f = self.dir / f"nsswitch-{variant}.conf"
            f.write_text(nsswitch_text(original, sources))
            self.nsswitch[variant] = f
        self.setup = self.dir / "setup.sh"
        self.setup.write_text(SETUP)
        self.setup.chmod(0o700)
        self.stage = self.dir / "run"
        self.stage.mkdir(exist_ok=True)

    def wrap(self, variant: str, argv: list) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "--", "bash", str(self.setup),
                str(self.nsswitch[variant]), str(self.cache), str(self.socket_dir), str(self.stage),
                *[str(a) for a in argv]]


def one_run(ns: Namespaces, tools: dict, variant: str, name: str, expect: str, threads: int, ms: int,
            warmup: int) -> dict:
    argv = ns.wrap(variant, [tools["nss_bench"], name, expect, threads, ms, warmup])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={"PATH": SYSTEM_PATH})
    if out.returncode != 0:
        raise RuntimeError(f"nss_bench {variant} {name} {expect} x{threads} failed ({out.returncode}): "
                           f"{out.stdout}{out.stderr}")
    lookups, elapsed, _wrong, p50, p99 = (int(x) for x in out.stdout.split())
    return {"lookups": lookups, "elapsed_s": elapsed / 1e9, "per_s": lookups / (elapsed / 1e9),
            "cost_us": elapsed / 1e3 / lookups * threads, "p50_us": p50 / 1e3, "p99_us": p99 / 1e3}


def run(machine: benchlib.BenchMachine, tools: dict, runs: int = 5, ms: int = 1000, warmup: int = 100) -> dict:
    directory_user = unique("nssdir")
    miss = unique("nssmiss")
    # The directory gets a second user, who never logs in here.
    machine.world.rewrite_directory([{"username": machine.user}, {"username": directory_user}])
    names = {"directory": (directory_user, "found"), "miss": (miss, "notfound"), "local": (machine.user, "found")}
    ns = Namespaces(machine.tmp / "nss", machine.socket)
    samples: dict[str, list[dict]] = {key: [] for key, *_ in MEASURES}
    for _ in range(runs):
        for key, kind, variant, threads in MEASURES:
            name, expect = names[kind]
            samples[key].append(one_run(ns, tools, variant, name, expect, threads, ms, warmup))
    result = {"runs": runs, "ms": ms, "warmup": warmup, "names": {k: v[0] for k, v in names.items()}}
    for key, runs_ in samples.items():
        result[key] = {
            "per_s": benchlib.percentile([r["per_s"] for r in runs_], 50),
            "cost_us": benchlib.percentile([r["cost_us"] for r in runs_], 50),
            "p50_us": benchlib.percentile([r["p50_us"] for r in runs_], 50),
            "p99_us": benchlib.percentile([r["p99_us"] for r in runs_], 50),
            "per_s_runs": [round(r["per_s"]) for r in runs_],
        }
    result["miss_ratio"] = result["miss_fedlogin"]["cost_us"] / result["miss_files"]["cost_us"]
    result["local_ratio"] = result["local_fedlogin"]["cost_us"] / result["local_files"]["cost_us"]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each measurement (default 5)")
    ap.add_argument("--ms", type=int, default=1000, help="length of a run in ms (default 1000)")
    ap.add_argument("--warmup", type=int, default=100, help="unmeasured lookups before each run (default 100)")
    args = ap.parse_args()
    benchlib.run_standalone(lambda machine, tools: run(machine, tools, args.runs, args.ms, args.warmup), tools=True)


if __name__ == "__main__":
    main()
