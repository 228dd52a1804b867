#!/usr/bin/env bash
# fedlogin benchmarks: every measurement side by side, printed as one
# Markdown table (docs/performance.md explains the figures and the goals).
#
#   sudo bench/run.sh [run_all.py options]     e.g. --n-pam 50 --json /tmp/bench.json
#
# Runs as root in the private mount namespace of the integration tests
# (Tests/integration/run-in-namespace.sh): the benchmark provisions accounts
# in a copy of /etc, and the host's login files are never changed.
#
# Needs: the daemon build (.build/debug, or $FEDLOGIN_BIN), out/pam_fedlogin.so
# and out/libnss_fedlogin.so.2, the Python venv (.venv, with oidc-provider-mock),
# gcc and libpam0g-dev.
# A release build in .build-release/release is measured too when present:
#   nice -n 19 swift build -c release --scratch-path .build-release
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-$repo/.venv/bin/python}"

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: must run as root (the benchmarks provision accounts in a private mount namespace); try: sudo $0 $*" >&2
    exit 2
fi
missing=()
[ -x "${FEDLOGIN_BIN:-$repo/.build/debug}/fedlogind" ] || missing+=("${FEDLOGIN_BIN:-$repo/.build/debug}/fedlogind (swift build)")
[ -f "${FEDLOGIN_OUT:-$repo/out}/pam_fedlogin.so" ] || missing+=("${FEDLOGIN_OUT:-$repo/out}/pam_fedlogin.so (make modules)")
[ -f "${FEDLOGIN_OUT:-$repo/out}/libnss_fedlogin.so.2" ] || missing+=("${FEDLOGIN_OUT:-$repo/out}/libnss_fedlogin.so.2 (make modules)")
[ -x "$python" ] || missing+=("$python (scripts/deps.sh)")
command -v gcc >/dev/null || missing+=("gcc")
[ -f /usr/include/security/pam_appl.h ] || missing+=("/usr/include/security/pam_appl.h (libpam0g-dev)")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'bench/run.sh: missing: %s\n' "${missing[@]}" >&2
    exit 2
fi

exec bash "$repo/Tests/integration/run-in-namespace.sh" "$python" "$here/run_all.py" "$@"
