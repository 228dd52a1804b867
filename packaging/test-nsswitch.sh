#!/bin/sh
# Tests packaging/debian/nsswitch.sh, the nsswitch.conf edit of postinst and
# postrm, on sample files: fedlogin goes after the last source of passwd:
# and group:, a second install changes nothing, and removal gives back the
# file byte for byte. build-deb.sh runs it; it writes only to a temporary
# folder.
#
#   sh packaging/test-nsswitch.sh
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/debian/nsswitch.sh"

T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
failed=0

fail() { echo "test-nsswitch: FAIL $*" >&2; failed=1; }

# case NAME EXPECTED-AFTER-INSTALL: the input is $T/in.
case_() {
    name="$1"
    cp "$T/in" "$T/nsswitch.conf"
    chmod 0644 "$T/nsswitch.conf"
    rm -f "$T/note"
    nss_add "$T/nsswitch.conf" "$T/note"
    printf '%s' "$2" > "$T/want"
    cmp -s "$T/nsswitch.conf" "$T/want" || { fail "$name: after install"; diff "$T/want" "$T/nsswitch.conf" >&2 || true; }
    cp "$T/nsswitch.conf" "$T/installed"
    nss_add "$T/nsswitch.conf" "$T/note"   # an upgrade
    cmp -s "$T/nsswitch.conf" "$T/installed" || fail "$name: a second install changed the file"
    [ "$(stat -c %a "$T/nsswitch.conf")" = 644 ] || fail "$name: mode changed"
    nss_remove "$T/nsswitch.conf" "$T/note"
    cmp -s "$T/nsswitch.conf" "$T/in" || { fail "$name: not as before after removal"; diff "$T/in" "$T/nsswitch.conf" >&2 || true; }
    [ ! -e "$T/note" ] || fail "$name: the note is left"
    nss_remove "$T/nsswitch.conf" "$T/note"   # a purge after the removal
    cmp -s "$T/nsswitch.conf" "$T/in" || fail "$name: a second removal changed the file"
}

# Debian 12's file (base-files).
printf 'passwd:         files systemd\ngroup:          files systemd\nshadow:         files systemd\nhosts:          files dns\n' > "$T/in"
case_ debian 'passwd:         files systemd fedlogin
group:          files systemd fedlogin
shadow:         files systemd
hosts:          files dns
'

# Tabs, trailing blanks, a comment after the sources, actions, no final newline.
printf 'passwd:\tcompat [NOTFOUND=return] files  \ngroup: files # local only\n#passwd: ldap\nnetgroup: nis' > "$T/in"
case_ comments "$(printf 'passwd:\tcompat [NOTFOUND=return] files fedlogin  \ngroup: files fedlogin # local only\n#passwd: ldap\nnetgroup: nis')"

# The admin named fedlogin already on group: that entry is theirs and stays.
printf 'passwd: files\ngroup: fedlogin files\n' > "$T/in"
case_ admin 'passwd: files fedlogin
group: fedlogin files
'
cp "$T/in" "$T/nsswitch.conf"; rm -f "$T/note"
nss_add "$T/nsswitch.conf" "$T/note"
[ "$(cat "$T/note")" = passwd ] || fail "admin: the note should list passwd only, it has: $(cat "$T/note")"

# No sources on the line, no group line: nothing to do.
printf 'passwd:\nhosts: files\n' > "$T/in"
case_ empty 'passwd:
hosts: files
'

# An admin took fedlogin off after installation: removal leaves the line alone.
printf 'passwd: files systemd\ngroup: files systemd\n' > "$T/in"
cp "$T/in" "$T/nsswitch.conf"; rm -f "$T/note"
nss_add "$T/nsswitch.conf" "$T/note"
printf 'passwd: files systemd\ngroup: files systemd fedlogin\n' > "$T/nsswitch.conf"
nss_add "$T/nsswitch.conf" "$T/note"
grep -qx 'passwd: files systemd' "$T/nsswitch.conf" || fail "admin removal: an upgrade added fedlogin back"
nss_remove "$T/nsswitch.conf" "$T/note"
cmp -s "$T/nsswitch.conf" "$T/in" || fail "admin removal: not as before after removal"

# No nsswitch.conf at all.
rm -f "$T/nsswitch.conf" "$T/note"
nss_add "$T/nsswitch.conf" "$T/note"
[ ! -e "$T/nsswitch.conf" ] || fail "missing file: created"
nss_remove "$T/nsswitch.conf" "$T/note"

[ "$failed" = 0 ] || exit 1
echo "test-nsswitch: ok"
