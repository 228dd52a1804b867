#!/usr/bin/env bash
# Runs a command as root in a private mount (and pid) namespace in which
# account changes stay private:
#   /etc                 a fresh copy of the host's /etc (useradd, pam_unix,
#                        login see and change only the copy)
#   /home                tmpfs
#   /run/fedlogin-test   tmpfs
#   /var/log             a copy with empty lastlog/faillog/wtmp/btmp
#   /var/mail            tmpfs
# FEDLOGIN_NAMESPACE=1 is set for the command. Every process left in the
# namespace ends with the command. Exits with the command's status; the copy
# is removed afterwards. If the host's account or PAM files changed during
# the run (they must not), it says so and exits 97.
#
#   sudo Tests/integration/run-in-namespace.sh .venv/bin/pytest Tests/integration
set -euo pipefail

me="run-in-namespace.sh"
if [ "$(id -u)" -ne 0 ]; then
    echo "$me: must run as root (it creates a mount namespace and bind-mounts a copy of /etc over /etc); try: sudo $0 $*" >&2
    exit 2
fi
if [ $# -eq 0 ]; then
    echo "usage: $me COMMAND [ARGS...]" >&2
    exit 2
fi
if [ "${FEDLOGIN_NAMESPACE:-}" = 1 ] && mountpoint -q /etc; then
    exec "$@"  # already inside
fi

# What must be the same after the run: accounts, PAM, NSS, homes, login records.
host_state() {
    (
        cd /etc
        for f in passwd shadow group gshadow subuid subgid nsswitch.conf login.defs; do
            [ -e "$f" ] && sha256sum "$f"
        done
        [ -d pam.d ] && find pam.d -xdev -type f -print0 | sort -z | xargs -0r sha256sum
        [ -d pam.d ] && find pam.d -printf '%p %y %m %u %g\n' | sort
    )
    find /home /var/mail -maxdepth 1 -printf '%p %y %m %u %g\n' 2>/dev/null | sort
    for f in /var/log/lastlog /var/log/faillog /var/log/wtmp /var/log/btmp; do
        [ -e "$f" ] && stat -c '%n %s %Y' "$f"
    done
    true
}

T="$(mktemp -d /tmp/fedlogin-ns.XXXXXX)"  # 0700: holds a copy of /etc/shadow
cleanup() { rm -rf --one-file-system -- "$T"; }
trap cleanup EXIT

before="$(host_state)"
cp -a /etc "$T/etc"
mkdir -p "$T/varlog"
for f in lastlog faillog wtmp btmp; do
    [ -e "/var/log/$f" ] && cp -a --attributes-only "/var/log/$f" "$T/varlog/$f"
done
chown --reference=/var/log "$T/varlog" && chmod --reference=/var/log "$T/varlog"
# The mount point stays (empty) on the host: removing it while another run
# uses it would detach that run's tmpfs.
mkdir -p -m 755 /run/fedlogin-test

inner='
set -e
T="$1"; shift
mount --bind "$T/etc" /etc
mount -t tmpfs -o mode=755 tmpfs /home
mount -t tmpfs -o mode=755 tmpfs /run/fedlogin-test
mount --bind "$T/varlog" /var/log
if [ -d /var/mail ]; then
    mount -t tmpfs -o "mode=$(stat -c %a /var/mail),gid=$(stat -c %g /var/mail)" tmpfs /var/mail
fi
export FEDLOGIN_NAMESPACE=1
set +e
"$@"
'
set +e
unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
    -- bash -c "$inner" inner "$T" "$@"
rc=$?
set -e

after="$(host_state)"
if [ "$before" != "$after" ]; then
    echo "$me: ERROR: the host's files changed during the run:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    [ "$rc" -eq 0 ] && rc=97
fi
exit "$rc"
