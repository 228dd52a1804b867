"""Benchmark 1: a provisioned user's login through the fedlogin PAM stack
(pam/fedlogin.pam: pam_fedlogin, then pam_unix, in auth and in account)
against the same stack without its pam_fedlogin lines (pam_unix alone),
with the same C driver (pam_bench.c, pam_start_confdir) and the same user
and passcode. The stacks take turns, round by round.

    Tests/integration/run-in-namespace.sh .venv/bin/python bench/pam_stack.py [-n 200]

What is timed per transaction: pam_authenticate + pam_acct_mgmt ("login");
pam_start_confdir .. pam_end ("whole transaction") is recorded too.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import benchlib
import sandbox

FEDLOGIN_SERVICE = "fedlogin"
UNIX_SERVICE = "unix"
# pam_fedlogin's own share: its auth and account lines, each followed by
# pam_permit (no password hash to check).
MODULE_SERVICE = "fedlogin-module"
SERVICES = (FEDLOGIN_SERVICE, UNIX_SERVICE, MODULE_SERVICE)


def make_stacks(tmp: Path, socket_path: Path) -> Path:
    """A confdir with the fedlogin stack (`fedlogin`, from pam/fedlogin.pam),
    the same stack without its pam_fedlogin lines (`unix`), and
    pam_fedlogin's lines of a successful login alone (`fedlogin-module`)."""
    confdir = sandbox.make_confdir(Path(tmp) / "pam-stacks", socket_path, services=(FEDLOGIN_SERVICE, "other"))
    lines = (confdir / FEDLOGIN_SERVICE).read_text().splitlines()
    ours = [i for i, ln in enumerate(lines) if "pam_fedlogin.so" in ln and not ln.lstrip().startswith("#")]
    if not ours:
        raise RuntimeError("no pam_fedlogin line in the stack")
    unix = [ln for i, ln in enumerate(lines) if i not in ours]
    (confdir / UNIX_SERVICE).write_text("\n".join(unix) + "\n")
    # The lines a successful login runs: the `authfail` line only runs after
    # pam_unix refused the password, the password lines only on a change.
    module = []
    for kind in ("auth", "account"):
        module += [lines[i] for i in ours if lines[i].split()[0] == kind and "authfail" not in lines[i].split()]
        module.append(f"{kind:<8} required   pam_permit.so")
    (confdir / MODULE_SERVICE).write_text("\n".join(module) + "\n")
    return confdir


def run(machine: benchlib.BenchMachine, tools: dict, n: int = 200, warmup: int = 10) -> dict:
    confdir = make_stacks(machine.tmp, machine.socket)
    out = subprocess.run([str(tools["pam_bench"]), str(confdir), machine.user, benchlib.PASSCODE, str(n),
                          str(warmup), *SERVICES],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"pam_bench failed ({out.returncode}): {out.stderr}\n{machine.world.logs()[-4000:]}")
    login: dict[str, list[float]] = {s: [] for s in SERVICES}
    whole: dict[str, list[float]] = {s: [] for s in SERVICES}
    for line in out.stdout.splitlines():
        service, _round, auth_acct, total = line.split()
        login[service].append(int(auth_acct) / 1e6)  # ms
        whole[service].append(int(total) / 1e6)
    result = {"n": n, "warmup": warmup, "user": machine.user, "unit": "ms"}
    for name in SERVICES:
        result[name] = {"login": benchlib.summary(login[name]), "transaction": benchlib.summary(whole[name])}
    f, u = result[FEDLOGIN_SERVICE]["login"], result[UNIX_SERVICE]["login"]
    result["ratio_median"] = f["median"] / u["median"]
    result["ratio_p90"] = f["p90"] / u["p90"]
    result["added_median_ms"] = f["median"] - u["median"]
    # Paired differences: each round ran both stacks back to back.
    result["paired_added_ms"] = benchlib.summary(
        [a - b for a, b in zip(login[FEDLOGIN_SERVICE], login[UNIX_SERVICE])])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200, help="transactions per stack (default 200)")
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    benchlib.run_standalone(lambda machine, tools: run(machine, tools, args.n, args.warmup), tools=True)


if __name__ == "__main__":
    main()
