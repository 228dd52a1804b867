"""Shared pieces of fedlogin's benchmarks: statistics, the C tools, the
machine description, and a sandboxed machine with one provisioned user.

The benchmarks run the real parts (fedlogind, fedlogin-directoryd,
oidc-provider-mock, libpam with pam_fedlogin.so and pam_unix.so) through the
integration harness in Tests/integration/harness, inside the private mount
namespace of Tests/integration/run-in-namespace.sh.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "Tests" / "integration" / "harness"))

import sandbox  # noqa: E402
from world import World, passwd_entry, unique  # noqa: E402

PASSCODE = "Bench-Passc0de"


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def percentile(values, p: float) -> float:
    """The p-th percentile (0-100), linear between the two nearest ranks."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values) -> dict:
    xs = list(values)
    return {
        "n": len(xs),
        "min": min(xs),
        "median": percentile(xs, 50),
        "p90": percentile(xs, 90),
        "p99": percentile(xs, 99),
        "max": max(xs),
        "mean": sum(xs) / len(xs),
    }


# ---------------------------------------------------------------------------
# The C tools
# ---------------------------------------------------------------------------

_TOOLS = {
    "pam_bench": (["pam_bench.c"], ["-lpam"]),
    "rtt_client": (["rtt_client.c"], []),
    "echo_server": (["echo_server.c"], []),
    "nss_bench": (["nss_bench.c"], ["-lpthread"]),
    "login_storm": (["login_storm.c"], ["-lpam"]),
    "ldap_bench": (["ldap_bench.c"], ["-lldap", "-llber"]),
}


def build_tools(dest: Path) -> dict[str, Path]:
    """Compiles the C tools into `dest` (gcc -O2); returns name -> path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (sources, libs) in _TOOLS.items():
        exe = dest / name
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                        *[str(BENCH_DIR / s) for s in sources], *libs], check=True)
        out[name] = exe
    return out


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024),
        "loadavg": loadavg(),
    }


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the figures."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def snapshot_bin(bin_dir: Path, dest: Path) -> Path:
    """Copies fedlogind, fedlogin-directoryd (and fedloginctl when there) and
    the resource bundles beside them to `dest`; returns `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for exe in ("fedlogind", "fedlogin-directoryd"):
        shutil.copy2(Path(bin_dir) / exe, dest / exe)
    if (Path(bin_dir) / "fedloginctl").exists():  # the LDAP benchmark's sync
        shutil.copy2(Path(bin_dir) / "fedloginctl", dest / "fedloginctl")
    for res in Path(bin_dir).glob("*.resources"):
        shutil.copytree(res, dest / res.name, dirs_exist_ok=True)
    return dest


def require_namespace():
    if os.geteuid() != 0 or not sandbox.in_namespace():
        sys.exit("fedlogin benchmarks create accounts: run them as root through "
                 "Tests/integration/run-in-namespace.sh (bench/run.sh does).")


# ---------------------------------------------------------------------------
# A machine with one provisioned user
# ---------------------------------------------------------------------------


class BenchMachine:
    """oidc-provider-mock (shared), fedlogin-directoryd and fedlogind from
    `bin_dir`, and one user provisioned by a first login through the PAM
    stack, exactly as a person's first login would do it."""

    def __init__(self, tmp: Path, idp, bin_dir: Path, prefix: str = "bench"):
        os.environ["FEDLOGIN_BIN"] = str(bin_dir)  # the harness reads it per start
        self.tmp = Path(tmp)
        self.bin_dir = Path(bin_dir)
        self.user = unique(prefix)
        idp.set_user(self.user, email=f"{self.user}@example.test", email_verified=True,
                     name=self.user.capitalize())
        self.world = World(self.tmp, idp, [{"username": self.user}])
        codes, a = self.world.login(self.user, ["", PASSCODE, PASSCODE])
        if codes != [0, 0] or passwd_entry(self.user) is None:
            raise RuntimeError(f"the first login of {self.user} failed: {codes} {a.transcript}\n{self.world.logs()}")
        # The second login is the one measured: fedlogind says IGNORE, pam_unix checks the passcode.
        codes, a = self.world.login(self.user, [PASSCODE], browser=None)
        if codes != [0, 0]:
            raise RuntimeError(f"the second login of {self.user} failed: {codes} {a.transcript}")

    @property
    def socket(self) -> Path:
        return self.world.socket

    @property
    def fedlogind(self):
        return self.world.fedlogind

    def stop(self):
        self.world.stop()


def start_idp(tmp: Path):
    return sandbox.start_mock_idp(Path(tmp))


def scratch_dir(prefix: str = "fedlogin-bench-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def remove_dir(path: Path):
    shutil.rmtree(path, ignore_errors=True)


def run_standalone(body, tools: bool = False):
    """Runs one benchmark on its own: an IdP and a BenchMachine on the debug
    build in a scratch folder (plus the C tools when `tools`), prints what
    `body(machine, tools)` returns as JSON, and stops everything."""
    import json
    require_namespace()
    tmp = scratch_dir()
    idp = machine = None
    try:
        built = build_tools(tmp / "tools") if tools else None
        idp = start_idp(tmp / "idp")
        machine = BenchMachine(tmp / "debug", idp, sandbox.bin_dir())
        print(json.dumps(body(machine, built), indent=2))
    finally:
        if machine:
            machine.stop()
        if idp:
            idp.stop()
        remove_dir(tmp)
