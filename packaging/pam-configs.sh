#!/bin/sh
# Writes fedlogin's pam-auth-update profiles into DIR (the package installs
# them in /usr/share/pam-configs), built from the one stack definition,
# pam/fedlogin.pam:
#
#   fedlogin           priority 320, above pam_unix (256): the first auth line
#                      and the account line (Primary, so it comes before
#                      pam_unix, whose new_authtok_reqd=done would skip a
#                      later one), and the session line (Additional: it shows
#                      the text a login kept for the session, e.g. a first
#                      login's welcome)
#   fedlogin-authfail  priority 64, below pam_unix: the authfail line, after
#                      pam_unix and before pam_deny
#   fedlogin-password  priority 1088, above pam_unix and libpam-pwquality
#                      (1024): the password line; pam_unix then gets its
#                      use_authtok line
#
# In pam/fedlogin.pam a line ends the stack on success (success=done); in a
# profile it jumps to the end of the primary block instead (success=end), so
# pam_permit and the additional modules still run.
#
#   sh packaging/pam-configs.sh DIR
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR="$1"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STACK="$ROOT/pam/fedlogin.pam"

die() { printf 'pam-configs.sh: %s\n' "$*" >&2; exit 1; }

# line TYPE AUTHFAIL(0|1): the control and arguments of the pam_fedlogin.so
# line of TYPE in pam/fedlogin.pam, with success=done made success=end and a
# tab before the module (pam-auth-update's own layout).
line() {
    awk -v type="$1" -v authfail="$2" '
        $1 == type && $0 ~ /pam_fedlogin\.so/ && (($0 ~ / authfail/) == (authfail == 1)) {
            $1 = ""; sub(/^[ \t]+/, ""); print; exit
        }' "$STACK" | sed 's/success=done/success=end/; s/\([]l]\) *pam_fedlogin/\1\tpam_fedlogin/'
}

AUTH="$(line auth 0)"
AUTHFAIL="$(line auth 1)"
ACCOUNT="$(line account 0)"
PASSWORD="$(line password 0)"
SESSION="$(line session 0)"
case "$AUTH" in *success=end*pam_fedlogin.so*) ;; *) die "pam/fedlogin.pam: no 'auth [success=done ...] pam_fedlogin.so' line" ;; esac
case "$AUTHFAIL" in *success=end*pam_fedlogin.so*authfail*) ;; *) die "pam/fedlogin.pam: no 'auth [success=done ...] pam_fedlogin.so authfail' line" ;; esac
case "$ACCOUNT" in *pam_fedlogin.so*) ;; *) die "pam/fedlogin.pam: no 'account ... pam_fedlogin.so' line" ;; esac
case "$SESSION" in *optional*pam_fedlogin.so*) ;; *) die "pam/fedlogin.pam: no 'session optional pam_fedlogin.so' line" ;; esac
case "$PASSWORD" in *success=end*pam_fedlogin.so*) ;; *) die "pam/fedlogin.pam: no 'password [success=done ...] pam_fedlogin.so' line" ;; esac

mkdir -p "$DIR"
cat > "$DIR/fedlogin" <<EOF
Name: fedlogin: sign in with the organization's identity provider
Default: yes
Priority: 320
Auth-Type: Primary
Auth:
	$AUTH
Auth-Initial:
	$AUTH
Account-Type: Primary
Account:
	$ACCOUNT
Account-Initial:
	$ACCOUNT
Session-Type: Additional
Session:
	$SESSION
Session-Initial:
	$SESSION
EOF
cat > "$DIR/fedlogin-authfail" <<EOF
Name: fedlogin: count failed passwords, offer a passcode reset
Default: yes
Priority: 64
Auth-Type: Primary
Auth:
	$AUTHFAIL
Auth-Initial:
	$AUTHFAIL
EOF
cat > "$DIR/fedlogin-password" <<EOF
Name: fedlogin: change passwords by their password authority
Default: yes
Priority: 1088
Password-Type: Primary
Password:
	$PASSWORD
Password-Initial:
	$PASSWORD
EOF
chmod 0644 "$DIR/fedlogin" "$DIR/fedlogin-authfail" "$DIR/fedlogin-password"
