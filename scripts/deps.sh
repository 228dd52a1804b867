#!/usr/bin/env bash
# Installs what fedlogin's build and tests need on Debian 12, as root.
# Idempotent: packages already present are not reinstalled, the package lists
# are refreshed only when older than an hour, and the Python venv (.venv) is
# rebuilt only when Tests/integration/requirements.txt changed.
#
#   scripts/deps.sh            apt packages + .venv
#   scripts/deps.sh --apt      apt packages only
#   scripts/deps.sh --venv     .venv only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="$ROOT/Tests/integration/requirements.txt"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# Build: the C shims (gcc, make, PAM/NSS headers), the Swift daemon's system
# libraries (systemd, sqlite, libcrypt, libcurl for FoundationNetworking) and
# what the Swift toolchain itself links against on Debian 12.
# Tests: venv, shadow-utils (passwd), login, util-linux (unshare, mount),
# tmux (console login), ssh client, libpam-modules (pam_unix), faketime
# (pam_unix's account expiry days ahead); clang-format
# (the C modules' formatting, checked by make check).
# LDAP: libldap-dev (the directory's LDAP backend, Sources/CLDAP), and slapd
# with ldap-utils for the tests, which run their own slapd from a temporary
# cn=config (Tests/integration/harness/slapd.py). slapd is preseeded to stay
# unconfigured, so its package creates no database and starts no server here.
APT_PACKAGES=(
    gcc make pkg-config binutils clang
    libpam0g-dev libpam-modules libpam-runtime
    libsystemd-dev libsqlite3-dev libcrypt-dev libcurl4-openssl-dev
    libc6-dev libgcc-12-dev libstdc++-12-dev libedit2 libxml2-dev
    libncurses-dev libz3-dev zlib1g-dev libpython3-dev tzdata unzip git
    python3 python3-venv ca-certificates
    util-linux passwd login procps tmux openssh-client sqlite3
    libqrencode-dev zbar-tools
    scdoc lintian mmdebstrap systemd-container dpkg-dev valgrind
    clang-format
    slapd ldap-utils libldap-dev
    faketime
)

want_apt=1
want_venv=1
case "${1:-}" in
    "") ;;
    --apt) want_venv=0 ;;
    --venv) want_apt=0 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages)"

lists_fresh() {
    # Fresh when some Release file was fetched within the last hour.
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Release' -mmin -60 -print -quit 2>/dev/null)" ]
}

install_apt() {
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "apt: all ${#APT_PACKAGES[@]} packages present"
        return
    fi
    say "apt: missing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if lists_fresh; then
        say "apt: package lists are fresh, no update"
    else
        say "apt: apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -qq
    fi
    # --no-install-recommends: a recommended package (libnss-systemd and the
    # like) would edit this machine's /etc/nsswitch.conf.
    # Before apt-get: slapd's postinst then creates no /etc/ldap/slapd.d and
    # no database, and starts nothing.
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    say "apt: installing ${#missing[@]} packages"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "apt: done"
}

pick_python() {
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo /usr/bin/python3
    elif command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
        command -v python3
    else
        die "no python3 with the venv module (apt-get install python3-venv)"
    fi
}

install_venv() {
    [ -f "$REQUIREMENTS" ] || die "missing $REQUIREMENTS"
    local python want have=""
    python="$(pick_python)"
    # The stamp covers the requirements and the interpreter the venv was made from.
    want="$( { sha256sum < "$REQUIREMENTS"; "$python" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -d' ' -f1)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        say "venv: $VENV is up to date"
        return
    fi
    say "venv: building $VENV with $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    "$python" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQUIREMENTS"
    echo "$want" > "$STAMP"
    say "venv: installed $(grep -cE '^[A-Za-z]' "$REQUIREMENTS") packages"
}

if [ "$want_apt" = 1 ]; then install_apt; fi
if [ "$want_venv" = 1 ]; then install_venv; fi

if ! command -v swift >/dev/null && [ ! -x /opt/swift/usr/bin/swift ]; then
    say "note: no Swift toolchain found (expected at /opt/swift/usr/bin)"
fi
say "ok"
