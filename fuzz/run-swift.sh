#!/usr/bin/env bash
# Runs each Swift fuzz target of fedlogin-fuzz (built with -sanitize=fuzzer)
# for RUNS executions, seeded from the committed corpora. New inputs go to
# OUT/corpus-swift-TARGET, a crashing input to OUT/crash-swift-TARGET-*.
#
#   fuzz/run-swift.sh .build-fuzz/debug/fedlogin-fuzz 10000000 out/fuzz
set -euo pipefail
bin="$1"; runs="$2"; out="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
declare -A seeds=(
    [wire]="$here/corpus/swift-wire $repo/Tests/fixtures/protocol $here/corpus/frame"
    [directory]="$here/corpus/swift-directory"
    [config]="$here/corpus/swift-config"
)
for t in wire directory config; do
    mkdir -p "$out/corpus-swift-$t"
    echo "fuzz: swift $t, $runs runs"
    # SWIFT_BACKTRACE=enable=no: libFuzzer, not Swift's backtracer, handles a crash and keeps the input.
    # shellcheck disable=SC2086
    SWIFT_BACKTRACE=enable=no FEDLOGIN_FUZZ_TARGET="$t" "$bin" -runs="$runs" -max_len=8192 \
        -artifact_prefix="$out/crash-swift-$t-" -print_final_stats=1 "$out/corpus-swift-$t" ${seeds[$t]}
done
