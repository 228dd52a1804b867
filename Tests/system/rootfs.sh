#!/usr/bin/env bash
# Prints the path of a Debian 12 (bookworm) root filesystem for booting with
# systemd-nspawn, building it with mmdebstrap when the cache has none.
#
#   Tests/system/rootfs.sh [--rebuild] [PACKAGE...]
#
# PACKAGEs are installed beside the base set. The system test passes none:
# it installs the .deb with apt-get, which fetches its Depends from the
# mirror, so a missing dependency fails the install. --rebuild builds afresh.
#
# Cache: $FEDLOGIN_TEST_CACHE (default /var/cache/fedlogin-test)/rootfs-KEY,
# where KEY hashes this script, the package list and the mirror, so a change
# to either (a new dependency of the package, say) builds a new one; older
# ones are removed. The tree is never changed after it is built: tests boot
# it with --volatile=overlay.
set -euo pipefail

CACHE="${FEDLOGIN_TEST_CACHE:-/var/cache/fedlogin-test}"
SUITE=bookworm
# A minimal Debian that boots: systemd as init, sshd and PAM for the logins
# under test. None of fedlogin's own dependencies (libcurl4, libsqlite3-0,
# libqrencode4, procps): apt-get brings them from the package's Depends.
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,libpam-modules,libpam-runtime,iproute2,ca-certificates

say() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install --no-install-recommends mmdebstrap)"

mirror() {
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

rebuild=0
if [ "${1:-}" = --rebuild ]; then rebuild=1; shift; fi
for p in "$@"; do
    [[ "$p" =~ ^[a-z0-9][a-z0-9.+-]+$ ]] || die "not a package name: $p"
    case ",$PACKAGES," in *",$p,"*) ;; *) PACKAGES="$PACKAGES,$p" ;; esac
done

MIRROR="$(mirror)"
KEY="$( { cat "${BASH_SOURCE[0]}"; echo "$SUITE $PACKAGES $MIRROR"; } | sha256sum | cut -c1-16)"
ROOTFS="$CACHE/rootfs-$KEY"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one build at a time; others wait and reuse it

if [ "$rebuild" = 1 ]; then
    rm -rf --one-file-system "$ROOTFS"
fi
if [ -f "$ROOTFS/.complete" ]; then
    echo "$ROOTFS"
    exit 0
fi

say "building $ROOTFS ($SUITE from $MIRROR); takes a minute or two"
for old in "$CACHE"/rootfs-*; do
    [ -d "$old" ] && [ "$old" != "$ROOTFS" ] && rm -rf --one-file-system "$old"
done
tmp="$CACHE/.rootfs-build.$$"
rm -rf --one-file-system "$tmp"
# The tests give sshd its port and address through /srv/test/sshd.conf, so
# side-by-side runs on the shared loopback do not collide.
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    --customize-hook='echo fedlogin-test > "$1/etc/hostname"' \
    --customize-hook='printf "Include /srv/test/sshd.conf\n" > "$1/etc/ssh/sshd_config.d/00-test.conf"' \
    "$SUITE" "$tmp" "$MIRROR" >&2 || { rm -rf --one-file-system "$tmp"; die "mmdebstrap failed"; }
touch "$tmp/.complete"
mv "$tmp" "$ROOTFS"
say "done"
echo "$ROOTFS"
