#!/usr/bin/env bash
# The fedlogin Debian package under a real systemd: a booted Debian 12
# container (systemd-nspawn) installs the .deb and logs a directory user in.
#
#   Tests/system/test_systemd.sh [out/fedlogin_VERSION_amd64.deb]
#
# Runs as root. The container boots a cached bookworm rootfs
# (Tests/system/rootfs.sh) with --volatile=overlay, so the cached tree is never
# changed, and shares the host's network namespace: oidc-provider-mock runs
# on the host's loopback (from .venv), fedlogind inside reaches it there, and
# the test plays the user's browser against fedlogind's loopback listener.
# Some logins are typed on a pseudo-terminal as a person would: the host's
# OpenSSH client to the container's sshd, and login(1) inside it.
# fedlogin-directoryd runs inside, from the package. Everything started is
# stopped by its pid at the end.
#
# Environment: FEDLOGIN_TEST_CACHE (rootfs cache, default
# /var/cache/fedlogin-test), KEEP=1 keeps the work folder.
# Prints "N passed, N failed"; exits 0 only when nothing failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/Tests/system"
PY="$ROOT/.venv/bin/python"
T_START=$(date +%s.%N)

say() { printf '%s\n' "$*"; }
die() { printf 'test_systemd: error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (it boots a container with systemd-nspawn)"
for tool in systemd-nspawn nsenter gcc mmdebstrap ssh; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install --no-install-recommends systemd-container util-linux gcc mmdebstrap openssh-client)"
done
[ -x "$PY" ] && "$PY" -c 'import httpx, paramiko' 2>/dev/null || die "$PY with httpx and paramiko not found: run scripts/deps.sh"
[ -x "$ROOT/.venv/bin/oidc-provider-mock" ] || die "oidc-provider-mock not in .venv: run scripts/deps.sh"

DEB="${1:-$(ls -t "$ROOT"/out/fedlogin_*_amd64.deb 2>/dev/null | head -1)}"
[ -n "$DEB" ] && [ -f "$DEB" ] || die "no package: build it with packaging/build-deb.sh (or pass its path)"

W="$(mktemp -d /tmp/fedlogin-system.XXXXXX)"
mkdir -p "$W/srv"
NSP="" IDP_PID="" LEADER="" SLAPD_PID=""

cleanup() {
    if [ -n "$SLAPD_PID" ] && kill -0 "$SLAPD_PID" 2>/dev/null; then
        kill -TERM "$SLAPD_PID" 2>/dev/null; wait "$SLAPD_PID" 2>/dev/null
    fi
    if [ -n "$IDP_PID" ] && kill -0 "$IDP_PID" 2>/dev/null; then
        kill -TERM "$IDP_PID" 2>/dev/null; wait "$IDP_PID" 2>/dev/null
    fi
    if [ -n "$NSP" ] && kill -0 "$NSP" 2>/dev/null; then
        kill -TERM "$NSP" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$NSP" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$NSP" 2>/dev/null && kill -KILL "$NSP" 2>/dev/null
        wait "$NSP" 2>/dev/null
    fi
    if [ "${KEEP:-0}" = 1 ]; then say "work folder kept: $W"; else rm -rf --one-file-system "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- checks ---------------------------------------------------------------------
PASSED=0 FAILED=0 FAILED_NAMES=()
# check NAME COMMAND...: one named assertion; the command's output is shown when it fails.
check() {
    local name="$1"; shift
    if "$@" >"$W/check.out" 2>&1; then
        PASSED=$((PASSED + 1)); say "ok    $name"
    else
        FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name"); say "FAIL  $name"
        sed 's/^/      /' "$W/check.out" | tail -n 40
    fi
}
# In the container: all its namespaces, a clean environment.
C() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# C_write PATH MODE < content
C_write() { C sh -c "umask 077; cat > '$1' && chmod $2 '$1'"; }
# until_ok SECONDS COMMAND...: retries every 0.2 s.
until_ok() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
prop() { C systemctl show -P "$2" "$1"; }
status_matches() { prop fedlogind.service StatusText | grep -Eq "$1"; }
active() { [ "$(prop "$1" ActiveState)" = active ]; }

# --- setup: rootfs, IdP, container --------------------------------------------------
say "== fedlogin system test: $(basename "$DEB")"
T0=$(date +%s.%N)
# The rootfs holds none of the package's dependencies: apt-get install
# fetches them from the mirror (the container shares the host's network), so
# the install proves the package's Depends.
ROOTFS="$("$HERE/rootfs.sh")" || die "no rootfs"
T_ROOTFS=$(elapsed "$T0")

cp "$DEB" "$W/srv/fedlogin.deb"
gcc -O2 -Wall -Wextra -Werror -o "$W/srv/pam_client" "$HERE/pam_client.c" -lpam || die "pam_client does not build (apt-get install libpam0g-dev)"
SSH_PORT="$(free_port)"
printf 'Port %s\nListenAddress 127.0.0.1\n' "$SSH_PORT" > "$W/srv/sshd.conf"
# libpam-pwquality and what it needs, for the container to install with dpkg
# (downloaded on the host with its apt lists, never installed here).
PWQUALITY_DEBS="libpam-pwquality libpwquality1 libpwquality-common libcrack2 cracklib-runtime file libmagic1 libmagic-mgc"
mkdir -p "$W/srv/pwquality"
(cd "$W/srv/pwquality" && apt-get download $PWQUALITY_DEBS) >"$W/pwquality-download.log" 2>&1 ||
    say "   warning: apt-get download of libpam-pwquality failed (the pwquality checks will fail): $(tail -n 1 "$W/pwquality-download.log")"

IDP_PORT="$(free_port)"
ISSUER="http://127.0.0.1:$IDP_PORT"
PYTHONWARNINGS=ignore setsid "$ROOT/.venv/bin/oidc-provider-mock" --host 127.0.0.1 --port "$IDP_PORT" \
    >"$W/idp.log" 2>&1 </dev/null &
IDP_PID=$!

MACHINE="fedlogin-test-$$"
T0=$(date +%s.%N)
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -D "$ROOTFS" -b -M "$MACHINE" --register=no --keep-unit \
    --console=read-only --volatile=overlay --bind-ro="$W/srv:/srv/test" >"$W/nspawn.log" 2>&1 </dev/null &
NSP=$!
booted() {
    LEADER="$(pgrep -P "$NSP" | head -1)" && [ -n "$LEADER" ] &&
        case "$(nsenter -t "$LEADER" -a systemctl is-system-running 2>/dev/null)" in running|degraded) true ;; *) false ;; esac
}
until_ok 90 booted || { tail -n 30 "$W/nspawn.log"; die "the container did not boot"; }
T_BOOT=$(elapsed "$T0")
until_ok 20 "$PY" -c "import httpx; httpx.get('$ISSUER/.well-known/openid-configuration', trust_env=False).raise_for_status()" 2>/dev/null ||
    { cat "$W/idp.log"; die "oidc-provider-mock did not start"; }
say "   rootfs ${T_ROOTFS}s, boot ${T_BOOT}s, IdP $ISSUER, container sshd on 127.0.0.1:$SSH_PORT"

check "the container booted with every unit running" test "$(C systemctl is-system-running)" = running
BEFORE="$(C sh -c 'sha256sum /etc/pam.d/common-* /etc/nsswitch.conf')"
NSS_BEFORE="$(C grep -E '^(passwd|group):' /etc/nsswitch.conf)"

# --- install ------------------------------------------------------------------------
T0=$(date +%s.%N)
not_there() { # none of the libraries fedlogin links is installed yet
    local p
    for p in libcurl4 libsqlite3-0 libqrencode4; do
        if C dpkg -s "$p" >/dev/null 2>&1; then echo "$p is already installed"; return 1; fi
    done
}
check "the rootfs holds none of fedlogin's libraries (libcurl4, libsqlite3-0, libqrencode4)" not_there
apt_install() {
    C sh -c 'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /srv/test/fedlogin.deb' \
        > "$W/apt-install.txt" 2>&1 || { tail -n 20 "$W/apt-install.txt"; return 1; }
    grep -E '^(Setting up|E:)' "$W/apt-install.txt" | sed 's/^/      /'
}
check "apt-get install ./fedlogin.deb installs it with its Depends from the mirror" apt_install
module_place() { # where bookworm's libpam-modules keeps its modules, named by name only in the profiles
    C dpkg -S /lib/x86_64-linux-gnu/security/pam_fedlogin.so /lib/x86_64-linux-gnu/security/pam_unix.so &&
        ! C grep -rq '/security/' /usr/share/pam-configs/fedlogin /usr/share/pam-configs/fedlogin-authfail /usr/share/pam-configs/fedlogin-password
}
check "pam_fedlogin.so is in /lib/x86_64-linux-gnu/security, beside pam_unix.so" module_place
# One executable under three names: the commands are symlinks to it.
MULTI=/usr/libexec/fedlogin/fedlogin
one_executable() {
    local name
    for name in /usr/sbin/fedlogind /usr/bin/fedloginctl /usr/sbin/fedlogin-directoryd; do
        echo "$name -> $(C readlink "$name")"
        C test -L "$name" && [ "$(C readlink -f "$name")" = "$MULTI" ] || return 1
    done
    C test -f "$MULTI" && ! C test -L "$MULTI" && C test -x "$MULTI" && C dpkg -S "$MULTI"
}
check "fedlogind, fedloginctl, fedlogin-directoryd are symlinks to one executable, $MULTI" one_executable
usage_of() { local out; out="$(C "$@" --help)" || return 1; grep -m1 '^USAGE:' <<<"$out"; }
helps() { # --help through each symlink, and as fedlogin NAME, names that command
    local u
    u="$(usage_of fedloginctl)"; echo "$u"; [ "$u" = "USAGE: fedloginctl <subcommand>" ] || return 1
    u="$(usage_of fedlogind)"; echo "$u"; [[ "$u" == "USAGE: fedlogind "* ]] || return 1
    u="$(usage_of fedlogin-directoryd)"; echo "$u"; [[ "$u" == "USAGE: fedlogin-directoryd "* ]] || return 1
    u="$(usage_of "$MULTI" fedloginctl)"; echo "$u"; [ "$u" = "USAGE: fedloginctl <subcommand>" ]
}
check "fedloginctl --help (and fedlogind's, fedlogin-directoryd's) through the symlinks, and as 'fedlogin fedloginctl --help'" helps
unknown_name() { # another name: EX_USAGE (64) and a message that names the three
    local rc1 rc2
    C ln -s "$MULTI" /tmp/fedlogin-other
    C /tmp/fedlogin-other status >"$W/unknown.txt" 2>&1; rc1=$?
    C rm -f /tmp/fedlogin-other
    C "$MULTI" nosuchcommand >>"$W/unknown.txt" 2>&1; rc2=$?
    cat "$W/unknown.txt"; echo "exit $rc1, $rc2"
    [ "$rc1" = 64 ] && [ "$rc2" = 64 ] && grep -q "started as 'fedlogin-other'" "$W/unknown.txt" &&
        grep -q "unknown command 'nosuchcommand'" "$W/unknown.txt" &&
        [ "$(grep -c 'fedlogind, fedloginctl and fedlogin-directoryd' "$W/unknown.txt")" = 2 ]
}
check "the executable under another name, or 'fedlogin' with an unknown command: exit 64, the three names" unknown_name
pam_first() { # The first auth line: pam_fedlogin, with a jump past pam_deny on success.
    C cat /etc/pam.d/common-auth | grep -v '^#' | grep .
    C awk '$1 == "auth" { print; exit }' /etc/pam.d/common-auth |
        grep -Eq '^auth[[:space:]]+\[success=[0-9]+ ignore=ignore authinfo_unavail=ignore user_unknown=ignore default=die\][[:space:]]+pam_fedlogin\.so'
}
check "pam-auth-update puts pam_fedlogin first in common-auth" pam_first
# The rest of the stack: lines as "MODULE ARGS" in order, controls left out.
pam_modules() { C awk -v t="$1" '$1 == t { sub(/^[^]]*\][ \t]*|^[^ \t]+[ \t]+[^ \t]+[ \t]+/, ""); print }' "/etc/pam.d/common-$2"; }
whole_stack() {
    local auth account password
    auth="$(pam_modules auth auth)"; account="$(pam_modules account account)"; password="$(pam_modules password password)"
    printf 'auth:\n%s\naccount:\n%s\npassword:\n%s\n' "$auth" "$account" "$password"
    # authfail right after pam_unix, before pam_deny; the account line before pam_unix;
    # the password line before pam_unix, which takes the new password from it.
    grep -A2 '^pam_unix.so' <<<"$auth" | paste -sd'|' | grep -q '^pam_unix.so[^|]*|pam_fedlogin.so authfail|pam_deny.so$' &&
        head -2 <<<"$account" | paste -sd'|' | grep -q '^pam_fedlogin.so *|pam_unix.so' &&
        grep -v '^pam_pwquality.so' <<<"$password" | head -2 | paste -sd'|' | grep -Eq '^pam_fedlogin.so *\|pam_unix.so .*use_authtok'
}
check "common-auth, common-account, common-password have the authfail, account and password lines" whole_stack
check "fedlogind.socket is listening on /run/fedlogin/fedlogind.sock" \
    sh -c "test \"\$(nsenter -t $LEADER -a systemctl is-active fedlogind.socket)\" = active && nsenter -t $LEADER -a test -S /run/fedlogin/fedlogind.sock"
ready_line() { active fedlogind.service && status_matches '^ready: '; }
check "fedlogind is active and its status says ready" until_ok 30 ready_line
say "      status: $(prop fedlogind.service StatusText)"
check "systemctl status shows the status line" sh -c "nsenter -t $LEADER -a systemctl status fedlogind --no-pager | grep -q 'Status: \"ready: '"
check "the socket is 0666 and owned by root" sh -c "nsenter -t $LEADER -a stat -c '%a %U' /run/fedlogin/fedlogind.sock | grep -qx '666 root'"
check "no ordering cycle at boot or install" sh -c "! nsenter -t $LEADER -a journalctl -b --no-pager | grep -i 'ordering cycle'"
check "sshd accepts the drop-in: keyboard-interactive on, LoginGraceTime 300" \
    sh -c "nsenter -t $LEADER -a sshd -T | grep -qx 'kbdinteractiveauthentication yes' && nsenter -t $LEADER -a sshd -T | grep -qx 'logingracetime 300'"
check "fedlogin-directoryd stays off without a directory file" sh -c "! nsenter -t $LEADER -a systemctl is-active -q fedlogin-directoryd"
hardened() { # The sandbox is in effect for the running daemon, not only written in the unit.
    local pid; pid="$(prop fedlogind.service MainPID)"
    C grep -E '^(NoNewPrivs|Seccomp):' "/proc/$pid/status"
    C grep -qE '^NoNewPrivs:[[:space:]]+1$' "/proc/$pid/status" && C grep -qE '^Seccomp:[[:space:]]+2$' "/proc/$pid/status" &&
        ! C nsenter -t "$pid" -m touch /usr/lib/fedlogin-write-test 2>/dev/null &&
        C nsenter -t "$pid" -m sh -c 'touch /etc/.fedlogin-write-test && rm /etc/.fedlogin-write-test'
}
check "fedlogind runs sandboxed: no new privileges, seccomp, /usr read-only, /etc writable" hardened
say "      $(C systemd-analyze security fedlogind.service --no-pager 2>/dev/null | tail -n 1)"

# NSS: libnss_fedlogin.so.2 after the local sources of passwd and group.
nss_lines() {
    local now
    now="$(C grep -E '^(passwd|group):' /etc/nsswitch.conf)"
    echo "before:"; echo "$NSS_BEFORE"; echo "after:"; echo "$now"
    [ "$(wc -l <<<"$now")" = 2 ] && [ "$now" = "$(sed 's/$/ fedlogin/' <<<"$NSS_BEFORE")" ] &&
        grep -q '^passwd:.*files.* fedlogin$' <<<"$now" &&
        C test -f /usr/lib/x86_64-linux-gnu/libnss_fedlogin.so.2
}
check "nsswitch.conf: fedlogin after the last source of the passwd and group lines" nss_lines
check "getent passwd root and getent group root still work" \
    sh -c "nsenter -t $LEADER -a getent passwd root | grep -qx 'root:x:0:0:root:/root:/bin/bash' && nsenter -t $LEADER -a getent group root | grep -q '^root:x:0:'"
# getent_missing SECONDS: a name nobody knows is "not found" (exit 2) within SECONDS.
getent_missing() {
    local t0 rc
    t0=$(date +%s.%N)
    C getent passwd fedlogin-nosuchuser; rc=$?
    echo "exit $rc after $(elapsed "$t0") s" | tee "$W/getent.txt"
    [ "$rc" = 2 ] && awk -v a="$t0" -v b="$(date +%s.%N)" -v max="$1" 'BEGIN { exit !(b - a < max) }'
}
check "getent passwd of an unknown name with fedlogind running: exit 2 within 2 s" getent_missing 2
say "      getent: $(cat "$W/getent.txt")"
check "fedlogind publishes its NSS answers in /run/fedlogin/nss.cache (root's, mode 644)" \
    sh -c "test \"\$(nsenter -t $LEADER -a stat -c %u:%a /run/fedlogin/nss.cache)\" = 0:644"
T_INSTALL=$(elapsed "$T0")

# --- directory and IdP ------------------------------------------------------------------
T0=$(date +%s.%N)
# alice sets a local passcode; bob's directory password hash is synced as-is;
# both are associated with the device, so their accounts are made ahead of
# their first sign-in. carol is not: her first login over SSH needs the NSS module.
BOB_PASSWORD="Bob-Sync-Pass1"
BOB_HASH="$("$PY" -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))' "$BOB_PASSWORD")"
C install -d -m 0755 /etc/fedlogin-directoryd
C_write /etc/fedlogin-directoryd/directory.json 0600 <<EOF
{
  "policy": {"password_sync": false, "default_idp": "demo", "routing": [],
             "passcode": {"min_length": 8, "min_classes": 3}},
  "users": [
    {"username": "alice", "email": "alice@example.test", "display_name": "Alice Example",
     "groups": ["staff"], "disabled": false, "password_authority": "local",
     "password_hash": null, "uid": null},
    {"username": "bob", "email": "bob@example.test", "display_name": "Bob Example",
     "groups": ["staff"], "disabled": false, "password_authority": "directory",
     "password_hash": "$BOB_HASH", "password_sync": true, "uid": null},
    {"username": "carol", "email": "carol@example.test", "display_name": "Carol Example",
     "groups": ["staff"], "disabled": false, "password_authority": "local",
     "password_hash": null, "uid": null},
    {"username": "dave", "email": "dave@example.test", "display_name": "Dave Example",
     "groups": ["staff"], "disabled": false, "password_authority": "local",
     "password_hash": null, "uid": null}
  ],
  "devices": {"test-device-1": ["alice", "bob"]}
}
EOF
check "fedlogin-directoryd starts once its directory file exists" \
    sh -c "nsenter -t $LEADER -a systemctl enable --now fedlogin-directoryd 2>&1 && nsenter -t $LEADER -a systemctl is-active fedlogin-directoryd"
"$PY" "$HERE/driver.py" idp-user --issuer "$ISSUER" --sub alice --email alice@example.test
"$PY" "$HERE/driver.py" idp-user --issuer "$ISSUER" --sub bob --email bob@example.test
"$PY" "$HERE/driver.py" idp-user --issuer "$ISSUER" --sub carol --email carol@example.test
"$PY" "$HERE/driver.py" idp-user --issuer "$ISSUER" --sub dave --email dave@example.test

printf 'mock-client-secret\n' | C_write /etc/fedlogin/demo.secret 0600
C_write /etc/fedlogin/conf.d/50-test.conf 0644 <<EOF
[daemon]
device_id = "test-device-1"

[idp.demo]
display_name = "Demo IdP"
issuer = "$ISSUER"
client_id = "fedlogin"
client_secret_file = "/etc/fedlogin/demo.secret"
allow_http_loopback = true
flows = ["loopback"]
EOF

# --- reload ---------------------------------------------------------------------------
PID1="$(prop fedlogind.service MainPID)"
C systemctl reload fedlogind.service
reloaded() { active fedlogind.service && status_matches '^ready: 1 IdP, .*directory reachable'; }
check "reload with a valid configuration: ready, 1 IdP, directory reachable" until_ok 30 reloaded
say "      status: $(prop fedlogind.service StatusText)"
check "reload keeps the same process" test "$(prop fedlogind.service MainPID)" = "$PID1"
check "the journal has 'configuration reloaded' with its MESSAGE_ID" \
    sh -c "nsenter -t $LEADER -a journalctl -u fedlogind --no-pager -o cat MESSAGE_ID=7d1c9b8a6f5e4d3ca2b1908f7e6d5c55 | grep -q ."

printf '[signin]\ntimeout = 1\n' | C_write /etc/fedlogin/conf.d/90-broken.conf 0644
C systemctl reload fedlogind.service
refused() { active fedlogind.service && status_matches 'signin\.timeout'; }
check "reload with an invalid configuration: still active, status names the key" until_ok 30 refused
say "      status: $(prop fedlogind.service StatusText)"
check "the refused reload keeps the same process" test "$(prop fedlogind.service MainPID)" = "$PID1"
check "the journal names the key and the reason" \
    sh -c "nsenter -t $LEADER -a journalctl -u fedlogind --no-pager -o cat | grep 'not reloaded' | grep 'signin.timeout' | grep -q 'at least 10 seconds'"
# TOML the parser aborts on (Tests/integration/test_daemon.py): fedlogind
# parses it first in a child, itself started again as fedlogind through
# /proc/self/exe, the multi-call executable here.
printf '[idp.demo]\nscopes = ["openid",}\n' | C_write /etc/fedlogin/conf.d/90-broken.conf 0644
C systemctl reload fedlogind.service
malformed() { active fedlogind.service && status_matches 'malformed TOML'; }
check "reload with TOML the parser aborts on: still active, the status says malformed TOML" until_ok 30 malformed
say "      status: $(prop fedlogind.service StatusText)"
check "the malformed reload keeps the same process" test "$(prop fedlogind.service MainPID)" = "$PID1"
C rm -f /etc/fedlogin/conf.d/90-broken.conf
C systemctl reload fedlogind.service
check "reload after the fix: ready again" until_ok 30 reloaded

# --- socket activation -------------------------------------------------------------------
C systemctl stop fedlogind.service 2>/dev/null  # "it can still be activated by fedlogind.socket"
check "systemctl stop fedlogind stops the daemon, the socket keeps listening" \
    sh -c "test \"\$(nsenter -t $LEADER -a systemctl is-active fedlogind.service)\" = inactive && nsenter -t $LEADER -a systemctl is-active -q fedlogind.socket && nsenter -t $LEADER -a test -S /run/fedlogin/fedlogind.sock"
check "a connection to the socket starts fedlogind again (fedloginctl status)" C fedloginctl status
check "the socket-activated fedlogind is active and ready" until_ok 30 reloaded
check "it is a new process" test "$(prop fedlogind.service MainPID)" != "$PID1"
C systemctl stop fedlogind.service 2>/dev/null
check "fedlogind stopped: its NSS cache file is gone" sh -c "! nsenter -t $LEADER -a test -e /run/fedlogin/nss.cache"
check "getent passwd of an unknown name with fedlogind stopped, its socket listening: exit 2 within 4 s" getent_missing 4
say "      getent: $(cat "$W/getent.txt")"

# The watchdog, on a short interval so the test need not wait 30 s: fedlogind
# must keep pinging or systemd restarts it.
C mkdir -p /run/systemd/system/fedlogind.service.d
printf '[Service]\nWatchdogSec=2s\n' | C_write /run/systemd/system/fedlogind.service.d/watchdog.conf 0644
C systemctl daemon-reload
C systemctl restart fedlogind.service
watchdog_pings() {
    local pid t1 t2
    pid="$(prop fedlogind.service MainPID)"
    t1="$(prop fedlogind.service WatchdogTimestampMonotonic)"
    sleep 5
    t2="$(prop fedlogind.service WatchdogTimestampMonotonic)"
    echo "WatchdogUSec=$(prop fedlogind.service WatchdogUSec) pid $pid -> $(prop fedlogind.service MainPID), last ping $t1 -> $t2"
    [ "$(prop fedlogind.service WatchdogUSec)" = 2s ] && [ "$(prop fedlogind.service MainPID)" = "$pid" ] &&
        [ "$t2" -gt "$t1" ] && active fedlogind.service
}
check "WatchdogSec=2s: fedlogind keeps pinging and is not restarted" watchdog_pings
C rm -f /run/systemd/system/fedlogind.service.d/watchdog.conf
C systemctl daemon-reload
C systemctl restart fedlogind.service
check "WatchdogSec=30s from the unit again" test "$(prop fedlogind.service WatchdogUSec)" = 30s
T_SYSTEMD=$(elapsed "$T0")

# --- logins ------------------------------------------------------------------------------
T0=$(date +%s.%N)
PASSCODE="Correct-Horse9"
PAMC=(nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /srv/test/pam_client)
first_login() {
    "$PY" "$HERE/driver.py" pam --sub alice --answer "" --answer "$PASSCODE" --answer "$PASSCODE" -- "${PAMC[@]}" sshd alice |
        tee "$W/first-login.txt"
    grep -q '^  RESULT authenticate 0 ' "$W/first-login.txt" && grep -q '^  RESULT acct_mgmt 0 ' "$W/first-login.txt"
}
say "-- first login of alice through the installed PAM stack (service sshd):"
first_login; rc=$?
check "first login: authenticate and acct_mgmt succeed" test "$rc" = 0
uid_in_range() { local e; e="$(C getent passwd alice)" && echo "$e" && awk -F: '$3 >= 70000 && $3 <= 79999 { ok = 1 } END { exit !ok }' <<<"$e"; }
check "alice is a local account with a uid from [accounts]" uid_in_range
home_made() { # owned by alice, with the files of /etc/skel
    C stat -c '%U %a %n' /home/alice /home/alice/.bashrc
    [ "$(C stat -c %U /home/alice)" = alice ] && [ "$(C stat -c %U /home/alice/.bashrc)" = alice ]
}
check "alice's home was made from /etc/skel and is hers" home_made
check "fedloginctl users lists alice" sh -c "nsenter -t $LEADER -a fedloginctl users | grep -q '^alice'"
journal_event() { # MESSAGE_ID FIELD=VALUE...: at least one such journal entry
    C journalctl --no-pager -o cat MESSAGE_ID="$@" | grep .
}
check "journal: account created (MESSAGE_ID, FEDLOGIN_USER)" journal_event 9a3b7c2d1e4f4a5b8c6d7e8f9a0b1c33 FEDLOGIN_USER=alice
check "journal: login success (MESSAGE_ID, FEDLOGIN_USER, FEDLOGIN_SERVICE)" journal_event 5b1f0c9e7d2a4c43a6e1f08d3c2b7a11 FEDLOGIN_USER=alice FEDLOGIN_SERVICE=sshd
check "journal: ID token verified (MESSAGE_ID, FEDLOGIN_USER)" journal_event 3b3d68842f744f5f90e4fe31caabbc14 FEDLOGIN_USER=alice
check "journal: email matched (MESSAGE_ID, FEDLOGIN_USER)" journal_event 3b8b37730e5b472ea5b603ae166d3679 FEDLOGIN_USER=alice
check "journal: account check passed (MESSAGE_ID, FEDLOGIN_USER)" journal_event 2dbe725fbb0b4ef7842b8912bdf87c0b FEDLOGIN_USER=alice
reported() { C fedlogin-directoryd reports | grep -q '^alice <-> test-device-1'; }
check "the directory received alice's binding" until_ok 30 reported
check "no secret in the journal" sh -c "! nsenter -t $LEADER -a journalctl -b --no-pager -o export | grep -aq -e '$PASSCODE' -e mock-client-secret"

say "-- passcode login over SSH (keyboard-interactive, 127.0.0.1:$SSH_PORT):"
ssh_login() {
    "$PY" "$HERE/driver.py" ssh --port "$SSH_PORT" --user alice --password "$PASSCODE" -- id -un | tee "$W/ssh.txt"
    grep -qx alice "$W/ssh.txt"
}
check "alice logs in over SSH with her passcode" ssh_login
wrong_ssh() { ! "$PY" "$HERE/driver.py" ssh --port "$SSH_PORT" --user alice --password "Wrong-Horse9" -- id -un; }
check "a wrong passcode is refused over SSH" wrong_ssh

say "-- bob, associated with the device and with a synced password: his account is made ahead (sync):"
bob_hash() { [ "$(C getent shadow bob | cut -d: -f2)" = "$BOB_HASH" ]; }
check "bob's account exists with the directory's password hash, as-is, before any sign-in" until_ok 30 bob_hash
bob_ssh() {
    "$PY" "$HERE/driver.py" ssh --port "$SSH_PORT" --user bob --password "$BOB_PASSWORD" -- id -un | tee "$W/ssh-bob.txt"
    grep -qx bob "$W/ssh-bob.txt"
}
check "bob logs in over SSH with his directory password" bob_ssh

say "-- first login of carol over the container's sshd (NSS module, then PAM):"
carol_known() { C getent passwd carol | tee "$W/carol-getent.txt" | grep -q '^carol:x:7'; }
check "getent passwd carol: a directory user not yet local resolves through libnss_fedlogin" carol_known
carol_first() {
    "$PY" "$HERE/driver.py" ssh --port "$SSH_PORT" --user carol --sub carol --answer "" --answer "$PASSCODE" --answer "$PASSCODE" \
        -- sh -c "'id -un; id -u'" | tee "$W/ssh-carol.txt"
    [ "$(tail -n 2 "$W/ssh-carol.txt" | head -n 1)" = carol ] && [ "$(tail -n 1 "$W/ssh-carol.txt")" = "$(cut -d: -f3 "$W/carol-getent.txt")" ]
}
check "carol's first SSH login signs in, creates her account with the announced uid, and runs her command" carol_first
carol_again() {
    "$PY" "$HERE/driver.py" ssh --port "$SSH_PORT" --user carol --password "$PASSCODE" -- id -un | tee "$W/ssh-carol2.txt"
    grep -qx carol "$W/ssh-carol2.txt"
}
check "carol logs in over SSH with her new passcode" carol_again

# The real OpenSSH client and login(1), each on a pseudo-terminal, typed at as a
# person types (driver.py tty): the passcode reset, login(1), the lockout.
say "-- carol at a terminal: ssh (OpenSSH client, keyboard-interactive) and login(1):"
NEW_PASSCODE="Reset-Passcode7"
OFFER='Wrong passcode\. Forgot it\? Type "reset" to sign in with your identity provider and choose a new one, or press Enter:'
SSH_OPTS=(-F /dev/null -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null
    -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o LogLevel=ERROR)
ssh_tty() { # USER STEP...: `ssh USER@127.0.0.1 id -un` on the host, on a pseudo-terminal
    local user="$1"; shift
    "$PY" "$HERE/driver.py" tty --sub "$user" "$@" -- ssh "${SSH_OPTS[@]}" "$user@127.0.0.1" id -un | tee "$W/tty.txt"
}
ssh_reset() {
    ssh_tty carol --expect 'Password:' --secret Wrong-Horse9 --expect "$OFFER" --send reset \
        --expect 'Sign in with Demo IdP to choose a new passcode for carol\.' --browser \
        --expect 'Press Enter once you have signed in:' --send '' \
        --expect 'Choose a passcode for carol on this machine:' --secret "$NEW_PASSCODE" \
        --expect 'Repeat the passcode:' --secret "$NEW_PASSCODE" --expect '(?m)^carol$'
}
check "ssh: a wrong passcode gets the reset offer; reset signs in at the IdP, sets a new passcode and logs in" ssh_reset
say "   what carol's terminal showed:"; grep '^  |' "$W/tty.txt" | sed 's/^/   /'
ssh_ok() { ssh_tty "$1" --expect 'Password:' --secret "$2" --expect "(?m)^$1\$"; }
# The OpenSSH client at its default LogLevel (it prints userauth banners),
# logging in to a shell as `ssh USER@HOST` does: the welcome comes once, as the
# session starts (sshd prints session text for a login shell only).
dave_first() {
    "$PY" "$HERE/driver.py" tty --sub dave --expect 'Sign in with Demo IdP' --browser \
        --expect 'Press Enter once you have signed in:' --send '' \
        --expect 'Choose a passcode for dave on this machine:' --secret "$PASSCODE" \
        --expect 'Repeat the passcode:' --secret "$PASSCODE" \
        --expect 'Welcome, Dave Example\. Your account dave is ready on this machine\.' --expect '\$ $' \
        --send 'echo "shell: $(id -un)"; exit' --expect '(?m)^shell: dave\r?$' \
        -- ssh "${SSH_OPTS[@]/LogLevel=ERROR/LogLevel=INFO}" dave@127.0.0.1 | tee "$W/tty-dave.txt"
    [ "$(grep -c '^  |.*Welcome, Dave Example\. Your account dave' "$W/tty-dave.txt")" = 1 ]
}
check "ssh (OpenSSH client, default LogLevel, terminal): dave's first login shows the welcome once" dave_first
check "ssh: carol logs in with the new passcode" ssh_ok carol "$NEW_PASSCODE"
ssh_old_refused() { ssh_tty carol --exit 255 --expect 'Password:' --secret "$PASSCODE" --expect "$OFFER" --send '' --expect 'Permission denied'; }
check "ssh: the old passcode is refused (the offer, Enter, permission denied)" ssh_old_refused

login_tty() { # STEP...: login(1) in the container on a terminal of its own (script(1) makes one)
    "$PY" "$HERE/driver.py" tty "$@" -- nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
        script -qfec 'login carol' /dev/null | tee "$W/tty.txt"
}
console_login() {
    login_tty --expect 'Password:' --secret Wrong-Horse9 --expect "$OFFER" --send '' \
        --expect 'Login incorrect' --expect 'login: ' --send carol --expect 'Password:' --secret "$NEW_PASSCODE" \
        --expect 'carol@[^ ]*\$ ' --send 'echo "console: $(id -un) on $(tty)"; exit' --expect 'console: carol on /dev/pts/[0-9]+'
}
check "login(1): a wrong passcode gets the reset offer, Enter fails it, the right passcode logs in" console_login
say "   the console:"; grep '^  |' "$W/tty.txt" | grep -v '^  | *$' | sed 's/^/   /'

# The lockout: the directory's policy allows 3 failed attempts.
C sed -i 's/"min_classes": 3}}/"min_classes": 3}, "lockout": {"max_attempts": 3, "duration": 900}}/' /etc/fedlogin-directoryd/directory.json
check "fedloginctl sync takes the directory's lockout policy (max_attempts 3)" C fedloginctl sync
ssh_wrong() { ssh_tty carol --exit 255 --expect 'Password:' --secret Wrong-Horse9 --expect "$OFFER" --send '' --expect 'Permission denied'; }
lock_out() {
    ssh_wrong && ssh_wrong &&
        ssh_tty carol --exit 255 --expect 'Password:' --secret Wrong-Horse9 \
            --expect 'The account carol is locked after too many failed attempts until [0-9-]+ [0-9:]+ [A-Z]+\. Try again then, or ask an administrator to unlock it\.' \
            --expect "$OFFER" --send '' --expect 'Permission denied'
}
check "ssh: the third wrong passcode locks carol out, and the SSH client shows until when (before the offer)" lock_out
ssh_locked() { ssh_tty carol --exit 255 --absent 'Password:' --expect 'Permission denied'; }
check "ssh: while locked out, carol is refused before any password prompt" ssh_locked
expiry() { # USER: field 8 of /etc/shadow
    C getent shadow "$1" | cut -d: -f8
}
mirrored() {
    C chage -l carol; C fedloginctl users
    [ "$(expiry carol)" = 1 ] && C chage -l carol | grep -q '^Account expires.*: Jan 02, 1970$' &&
        C fedloginctl users | grep '^carol ' | grep -q 'locked after failed attempts until'
}
check "carol is locked out: fedloginctl users says until when, /etc/shadow has expiry day 1 (chage -l)" mirrored
C systemctl stop fedlogind.socket fedlogind.service
ssh_expired() { ssh_tty carol --exit 255 --expect 'Password:' --secret "$NEW_PASSCODE" --expect 'Permission denied'; }
offline_locked() {
    ! C systemctl is-active -q fedlogind.service fedlogind.socket && [ "$(expiry carol)" = 1 ] &&
        ssh_expired && ssh_ok alice "$PASSCODE"
}
check "with fedlogind and its socket stopped, pam_unix refuses carol's right passcode (expiry day 1); alice logs in" offline_locked
C systemctl start fedlogind.socket
unlocked() { C fedloginctl unlock carol | tee /dev/stderr | grep -qx 'carol unlocked' && [ -z "$(expiry carol)" ]; }
check "fedlogind started again: fedloginctl unlock carol lifts the lock and the expiry in /etc/shadow" unlocked
check "ssh: after unlock carol logs in with her passcode" ssh_ok carol "$NEW_PASSCODE"
C sed -i 's/, "lockout": {"max_attempts": 3, "duration": 900}}/}/' /etc/fedlogin-directoryd/directory.json
C fedloginctl sync >/dev/null

pam_login() { # USER PASSWORD
    "$PY" "$HERE/driver.py" pam --sub "$1" --answer "$2" -- "${PAMC[@]}" sshd "$1" | tee "$W/pam.txt"
    grep -q '^  RESULT authenticate 0 ' "$W/pam.txt" && grep -q '^  RESULT acct_mgmt 0 ' "$W/pam.txt" &&
        ! grep -q 'http://' "$W/pam.txt"
}
check "passcode login through PAM: no sign-in, pam_unix" pam_login alice "$PASSCODE"

C useradd -m -s /bin/bash localuser
printf 'localuser:Local-Pass1\n' | C chpasswd
check "a local account logs in while fedlogind runs" pam_login localuser Local-Pass1

# passwd (the installed common-password) as root: ANSWER... to its prompts.
pam_passwd() { # USER ANSWER...
    local user="$1"; shift
    "$PY" "$HERE/driver.py" pam --sub "$user" "${@/#/--answer=}" -- "${PAMC[@]}" passwd "$user" chauthtok | tee "$W/passwd.txt"
    grep -q '^  RESULT chauthtok 0 ' "$W/passwd.txt"
}
check "passwd for a local account while fedlogind runs (pam_fedlogin asks, pam_unix stores)" pam_passwd localuser Local-Pass2 Local-Pass2
check "the local account logs in with its new password" pam_login localuser Local-Pass2
check "passwd for root while fedlogind runs" pam_passwd root Root-Pass2 Root-Pass2
alice_passwd() { # a fedlogin passcode: fedlogind's prompts and policy, then back to the first passcode
    pam_passwd alice short Other-Passcode7 Other-Passcode7 && grep -q 'too weak' "$W/passwd.txt" &&
        grep -q 'Passcode changed.' "$W/passwd.txt" && pam_login alice Other-Passcode7 &&
        pam_passwd alice "$PASSCODE" "$PASSCODE"
}
check "passwd for alice follows the directory's passcode policy" alice_passwd

C systemctl stop fedlogind.socket fedlogind.service
check "getent passwd of an unknown name with fedlogind and its socket stopped: exit 2 within 1 s" getent_missing 1
say "      getent: $(cat "$W/getent.txt")"
check "with fedlogind and its socket stopped, getent passwd alice still works (files)" sh -c "nsenter -t $LEADER -a getent passwd alice | grep -q '^alice:'"
check "with fedlogind and its socket stopped, alice logs in offline" pam_login alice "$PASSCODE"
check "with fedlogind and its socket stopped, a local account logs in" pam_login localuser Local-Pass2
passwd_offline() { pam_passwd localuser Local-Pass3 Local-Pass3 && pam_login localuser Local-Pass3 && pam_passwd root Root-Pass3 Root-Pass3; }
check "with fedlogind and its socket stopped, passwd for a local account and for root works" passwd_offline
C systemctl start fedlogind.socket

# With libpam-pwquality: pam_fedlogin, pam_pwquality, pam_unix in common-password.
pwq_install() {
    C sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /srv/test/pwquality/*.deb' || return 1
    pam_modules password password | tee /dev/stderr | head -3 | paste -sd'|' |
        grep -Eq '^pam_fedlogin.so *\|pam_pwquality.so [^|]*\|pam_unix.so .*use_authtok'
}
check "libpam-pwquality installs: pam-auth-update puts it between pam_fedlogin and pam_unix" pwq_install
passwd_pwquality() {
    pam_passwd localuser Quality-Pass-4x Quality-Pass-4x Quality-Pass-4x && pam_login localuser Quality-Pass-4x &&
        pam_passwd root Quality-Root-5y Quality-Root-5y Quality-Root-5y && pam_passwd alice short Other-Passcode8 Other-Passcode8 &&
        grep -q 'too weak' "$W/passwd.txt" && pam_login alice Other-Passcode8 && pam_passwd alice "$PASSCODE" "$PASSCODE"
}
check "with libpam-pwquality: passwd for a local account, root and alice (fedlogind's policy) works" passwd_pwquality
C systemctl stop fedlogind.socket fedlogind.service
passwd_pwquality_offline() { pam_passwd localuser Quality-Pass-6z Quality-Pass-6z Quality-Pass-6z && pam_login localuser Quality-Pass-6z; }
check "with libpam-pwquality and fedlogind stopped: passwd for a local account works" passwd_pwquality_offline
C systemctl start fedlogind.socket
check "dpkg -P libpam-pwquality takes it out of common-password" \
    sh -c "nsenter -t $LEADER -a dpkg -P libpam-pwquality >/dev/null && ! nsenter -t $LEADER -a grep -q pam_pwquality /etc/pam.d/common-password"
T_LOGIN=$(elapsed "$T0")

# An upgrade (here: the same version again) runs postinst's upgrade path.
AUTH_BEFORE="$(C cat /etc/pam.d/common-auth)"
check "dpkg -i again (upgrade path) succeeds" C dpkg -i /srv/test/fedlogin.deb
upgraded() {
    active fedlogind.socket && active fedlogind.service && status_matches '^ready: 1 IdP, 4 managed users, directory reachable' &&
        [ "$(C cat /etc/pam.d/common-auth)" = "$AUTH_BEFORE" ]
}
check "after the upgrade: socket and daemon active, alice still managed, common-auth unchanged" until_ok 30 upgraded
say "      status: $(prop fedlogind.service StatusText)"
check "after the upgrade: alice logs in with her passcode" pam_login alice "$PASSCODE"
check "fedlogind never crashed (NRestarts=0)" test "$(prop fedlogind.service NRestarts)" = 0
# libdispatch renices its worker threads (down to nice -4, its manager thread);
# without CAP_SYS_NICE that needs RLIMIT_NICE 24 (the units' LimitNICE=-4).
check "the units set LimitNICE=-4 (RLIMIT_NICE 24)" \
    test "$(prop fedlogind.service LimitNICE) $(prop fedlogin-directoryd.service LimitNICE)" = "24 24"
NICE_LIMIT="$(C awk '/^Max nice priority/ { print $4 }' "/proc/$(prop fedlogind.service MainPID)/limits")"
if [ "$NICE_LIMIT" = 24 ]; then
    check "no thread priority noise from libdispatch in the journal" \
        sh -c "! nsenter -t $LEADER -a journalctl -u fedlogind -u fedlogin-directoryd --no-pager -o cat | grep -q 'Failed to set thread priority'"
else
    say "skip  no thread priority noise: the container's systemd cannot raise RLIMIT_NICE (fedlogind has $NICE_LIMIT; the host withholds CAP_SYS_RESOURCE)"
fi
say "   fedlogind's warnings in the journal:"
C journalctl -u fedlogind -u fedlogin-directoryd -p warning --no-pager -o cat | sed 's/^/      /'

# --- the LDAP backend ------------------------------------------------------------------------
# fedlogin-directoryd turned to a real slapd on the host's loopback (the
# container shares the host's network) with the shipped drop-in, and one
# first login through it: the account is made, the binding is an entry in slapd.
T0=$(date +%s.%N)
say "-- the LDAP backend: erin's first login against slapd:"
mkdir -p "$W/ldap"
eval "$("$PY" "$HERE/ldap_directory.py" "$W/ldap" test-device-1 alice bob carol dave erin)" || die "no LDAP directory (ldap_directory.py)"
setsid "${SLAPD_ARGV[@]}" >"$W/slapd.log" 2>&1 </dev/null &
SLAPD_PID=$!
slapd_up() { ldapsearch -x -LLL -H "$SLAPD_URI" -s base -b "" "(objectClass=*)" namingContexts >/dev/null 2>&1; }
check "slapd (the test's own cn=config) answers on $SLAPD_URI" until_ok 20 slapd_up
cp "$W/ldap/directoryd.conf" "$W/ldap/ldap.secret" "$W/srv/"
C install -m 0600 /srv/test/ldap.secret /etc/fedlogin-directoryd/ldap.secret
C install -m 0644 /srv/test/directoryd.conf /etc/fedlogin-directoryd/directoryd.conf
check "fedlogin-directoryd --check-config accepts the LDAP configuration" \
    C fedlogin-directoryd serve --config /etc/fedlogin-directoryd/directoryd.conf --check-config
check "fedlogin-directoryd check: the directory, the device's entry and erin are found" \
    C fedlogin-directoryd check --config /etc/fedlogin-directoryd/directoryd.conf --device test-device-1 --user erin
# The drop-in under /run: it goes with the container, as an admin's would with /etc.
C install -D -m 0644 /usr/share/fedlogin/ldap/fedlogin-directoryd-ldap.conf /run/systemd/system/fedlogin-directoryd.service.d/ldap.conf
C systemctl daemon-reload
C systemctl restart fedlogin-directoryd.service
ldap_serving() {
    active fedlogin-directoryd.service &&
        C systemctl show -P ExecStart fedlogin-directoryd.service | grep -q -- '--config /etc/fedlogin-directoryd/directoryd.conf'
}
check "with the shipped drop-in fedlogin-directoryd serves the LDAP configuration" until_ok 20 ldap_serving
"$PY" "$HERE/driver.py" idp-user --issuer "$ISSUER" --sub erin --email erin@example.test
erin_login() {
    "$PY" "$HERE/driver.py" pam --sub erin --answer "" --answer "$PASSCODE" --answer "$PASSCODE" -- "${PAMC[@]}" sshd erin |
        tee "$W/erin-login.txt"
    grep -q '^  RESULT authenticate 0 ' "$W/erin-login.txt" && grep -q '^  RESULT acct_mgmt 0 ' "$W/erin-login.txt"
}
check "erin's first login through the installed PAM stack, the directory in slapd" erin_login
check "erin is a local account made by fedlogin" sh -c "nsenter -t $LEADER -a fedloginctl users | grep -q '^erin'"
erin_bound() {
    ldapsearch -x -LLL -H "$SLAPD_LDAPI" -D "$SLAPD_ROOT_DN" -w "$SLAPD_ROOT_PW" -b "ou=devices,dc=example,dc=test" \
        "(objectClass=fedloginBinding)" | tee "$W/ldap-bindings.txt" | grep -q "erin"
}
check "erin's binding is in slapd (ldapsearch)" until_ok 30 erin_bound
check "erin logs in again with her passcode" pam_login erin "$PASSCODE"
C rm -f /run/systemd/system/fedlogin-directoryd.service.d/ldap.conf
C systemctl daemon-reload
kill -TERM "$SLAPD_PID" 2>/dev/null; wait "$SLAPD_PID" 2>/dev/null; SLAPD_PID=""
T_LDAP=$(elapsed "$T0")

# --- remove and purge ----------------------------------------------------------------------
T0=$(date +%s.%N)
quiet_dpkg() { # dpkg ARGS...: succeeds and warns about no directory left behind
    C dpkg "$@" > "$W/dpkg-$1.txt" 2>&1 || { cat "$W/dpkg-$1.txt"; return 1; }
    ! grep -i 'warning' "$W/dpkg-$1.txt"
}
check "dpkg -r removes the package, without warnings" quiet_dpkg -r fedlogin
same_pam() { diff <(echo "$BEFORE") <(C sh -c 'sha256sum /etc/pam.d/common-* /etc/nsswitch.conf'); }
check "after dpkg -r: common-* PAM files and nsswitch.conf as before" same_pam
units_gone() {
    local u s
    for u in fedlogind.service fedlogind.socket fedlogin-directoryd.service; do
        s="$(prop "$u" LoadState)"; echo "$u: $s"; [ "$s" = not-found ] || return 1
    done
    if C pgrep -af '^/usr/sbin/fedlogin'; then echo "still running"; return 1; fi
    if C test -e /run/fedlogin/fedlogind.sock; then echo "/run/fedlogin/fedlogind.sock is left"; return 1; fi
}
check "after dpkg -r: units gone, nothing running, no socket" units_gone
check "after dpkg -r: alice still logs in with her passcode (pam_unix)" pam_login alice "$PASSCODE"
check "after dpkg -r: libnss_fedlogin.so.2 is gone, getent passwd root works" \
    sh -c "! nsenter -t $LEADER -a test -e /usr/lib/x86_64-linux-gnu/libnss_fedlogin.so.2 && nsenter -t $LEADER -a getent passwd root | grep -q '^root:'"
check "dpkg -P purges the package, without warnings (no directory 'not empty')" quiet_dpkg -P fedlogin
check "after dpkg -P: common-* PAM files and nsswitch.conf as before" same_pam
purged() {
    local left
    left="$(C sh -c 'ls -d /etc/fedlogin /etc/fedlogin-directoryd /var/lib/fedlogin /var/lib/fedlogin-directoryd /etc/ssh/sshd_config.d/fedlogin.conf /usr/share/pam-configs/fedlogin /usr/share/pam-configs/fedlogin-authfail /usr/share/pam-configs/fedlogin-password 2>/dev/null; find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name "fedlogin*" 2>/dev/null')"
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}
check "after dpkg -P: configuration, state, unit links gone" purged
T_REMOVE=$(elapsed "$T0")

if [ "$FAILED" -gt 0 ]; then
    say "-- fedlogind's journal (last 40 lines):"
    C journalctl -u fedlogind -u fedlogind.socket -u fedlogin-directoryd --no-pager -n 40 -o short-monotonic | sed 's/^/   /'
fi
T_TOTAL=$(elapsed "$T_START")
printf '   time: rootfs %.1fs, boot %.1fs, install %.1fs, systemd checks %.1fs, logins %.1fs, LDAP %.1fs, remove/purge %.1fs, total %.1fs\n' \
    "$T_ROOTFS" "$T_BOOT" "$T_INSTALL" "$T_SYSTEMD" "$T_LOGIN" "$T_LDAP" "$T_REMOVE" "$T_TOTAL"
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] || { say "failed: ${FAILED_NAMES[*]}"; exit 1; }
