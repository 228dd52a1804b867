#!/usr/bin/env bash
# Renders the man pages (docs/man/*.scd, scdoc syntax) into roff.
#
#   docs/man/build.sh OUTDIR     write OUTDIR/fedlogind.8, OUTDIR/fedlogin.conf.5, ...
#   docs/man/build.sh --markdown FILE
#                                write fedlogin.conf(5) as Markdown (scd2md.py),
#                                e.g. docs/configuration.md
#   docs/man/build.sh --check    render to a temporary folder, and check that
#                                fedlogin.conf.5.scd documents exactly the keys
#                                the configuration parser accepts (and that
#                                docs/configuration.md, when generated, is current),
#                                and that packaging/fedlogin.conf lists them all
#
# fedlogin.conf.5.scd is the one reference of the configuration keys. The
# check reads the parser (Sources/FedloginCore/Config/ConfigParser.swift), so
# a key added there without documentation fails it. Needs scdoc.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PARSER="$ROOT/Sources/FedloginCore/Config/ConfigParser.swift"

die() { printf 'man: error: %s\n' "$*" >&2; exit 1; }
command -v scdoc >/dev/null || die "scdoc not found (apt-get install --no-install-recommends scdoc)"

render() { # OUTDIR
    mkdir -p "$1"
    local src name
    for src in "$HERE"/*.scd; do
        name="$(basename "$src" .scd)"
        scdoc < "$src" > "$1/$name" || die "scdoc failed on $src"
        echo "$1/$name"
    done
}

# The keys the parser accepts, as "section.key" (sections "idp" and "service" for [idp.NAME] and [service.NAME]).
parser_keys() {
    awk '
        # Each section is read by a function of its name: func daemon(...).
        match($0, /func [a-z]+\(/) {
            f = substr($0, RSTART + 5, RLENGTH - 6)
            s = (f ~ /^(daemon|accounts|signin|service|idp)$/) ? f : ""
        }
        s != "" && match($0, /case "[a-z_]+":/) {
            k = substr($0, RSTART + 6, RLENGTH - 8); print s "." k
        }
    ' "$PARSER" | sort -u
}

# The keys the man page documents: "*key* = " lines under "# [section]".
documented_keys() {
    awk '
        /^# \[/ { s = $2; gsub(/[\[\]]/, "", s); sub(/\.NAME$/, "", s) }
        /^# [A-Z]/ && !/^# \[/ { s = "" }
        s != "" && match($0, /^\*[a-z_]+\* = /) {
            k = substr($0, 2, RLENGTH - 5); print s "." k
        }
    ' "$HERE/fedlogin.conf.5.scd" | sort -u
}

# The keys the shipped /etc/fedlogin/fedlogin.conf lists (commented out):
# "key = " lines under "[section]", "# [idp.NAME]" or "# [service.NAME]".
shipped_keys() {
    awk '
        /^\[/ { s = $1; gsub(/[\[\]]/, "", s); sub(/\..*/, "", s) }
        /^# \[(idp|service)\./ { s = $2; gsub(/[\[\]]/, "", s); sub(/\..*/, "", s) }
        s != "" && match($0, /^# ?[a-z_]+ = /) { k = $0; sub(/^# ?/, "", k); sub(/ = .*/, "", k); print s "." k }
    ' "$ROOT/packaging/fedlogin.conf" | sort -u
}

case "${1:-}" in
    --check)
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        n="$(render "$tmp" | wc -l)"
        [ -s "$PARSER" ] || die "$PARSER not found"
        missing="$(comm -23 <(parser_keys) <(documented_keys))"
        extra="$(comm -13 <(parser_keys) <(documented_keys))"
        [ -z "$missing" ] || die "fedlogin.conf.5.scd does not document: $(echo $missing)"
        [ -z "$extra" ] || die "fedlogin.conf.5.scd documents keys the parser does not accept: $(echo $extra)"
        unshipped="$(comm -23 <(parser_keys) <(shipped_keys))"
        [ -z "$unshipped" ] || die "packaging/fedlogin.conf does not list: $(echo $unshipped)"
        unknown="$(comm -13 <(parser_keys) <(shipped_keys))"
        [ -z "$unknown" ] || die "packaging/fedlogin.conf lists keys the parser does not accept: $(echo $unknown)"
        md="$ROOT/docs/configuration.md"
        if [ -f "$md" ] && grep -q 'Generated from docs/man/fedlogin.conf.5.scd' "$md"; then
            python3 "$HERE/scd2md.py" "$HERE/fedlogin.conf.5.scd" | cmp -s - "$md" ||
                die "docs/configuration.md is out of date: docs/man/build.sh --markdown docs/configuration.md"
        fi
        echo "man: $n pages render; fedlogin.conf(5) documents and packaging/fedlogin.conf lists all $(parser_keys | wc -l) configuration keys"
        ;;
    --markdown)
        [ -n "${2:-}" ] || die "usage: $0 --markdown FILE"
        python3 "$HERE/scd2md.py" "$HERE/fedlogin.conf.5.scd" > "$2"
        echo "$2"
        ;;
    ""|-h|--help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        [ -n "${1:-}" ] || exit 2
        ;;
    *)
        render "$1"
        ;;
esac
