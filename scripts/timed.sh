#!/usr/bin/env bash
# Runs a command and records how long it took, against a time budget:
#
#   scripts/timed.sh FILE NAME BUDGET_SECONDS COMMAND [ARGS...]
#
# Appends "NAME  SECONDS s  (budget B s)" to FILE, marked "over budget" when it
# took longer (a note for whoever reads `make check`'s summary, never a
# failure: no test depends on how fast the machine is). Exits with the
# command's status.
set -uo pipefail
file=$1 name=$2 budget=$3
shift 3
start=$(date +%s%N)
"$@"
rc=$?
end=$(date +%s%N)
secs=$(( (end - start + 500000000) / 1000000000 ))
note=""
[ "$secs" -le "$budget" ] || note="  OVER BUDGET"
[ "$rc" -eq 0 ] || note="$note  (failed, status $rc)"
mkdir -p "$(dirname "$file")"
printf '%-24s %5d s  (budget %4d s)%s\n' "$name" "$secs" "$budget" "$note" >> "$file"
exit "$rc"
