#!/usr/bin/env bash
# Builds out/fedlogin_<version>_<arch>.deb with dpkg-deb.
#
#   packaging/build-deb.sh             release build (static Swift stdlib), PAM and NSS modules, man pages, .deb
#   packaging/build-deb.sh --no-build  package what .build-release and out/ already hold
#
# The Swift executables come from
#   swift build -c release --static-swift-stdlib --scratch-path .build-release -Xlinker -z -Xlinker now
# so the package needs no Swift toolchain on the target. The package holds
# one of them, the multi-call fedlogin (/usr/libexec/fedlogin/fedlogin), with
# fedlogind, fedloginctl and fedlogin-directoryd as symlinks to it: one copy
# of the Swift runtime and Foundation instead of three. The version is
# fedloginVersion in Sources/FedloginDaemon/Server/Control.swift; it must match
# the top entry of packaging/debian/changelog.
#
# FEDLOGIN_DEB_COMPRESSION=gzip (and FEDLOGIN_DEB_LEVEL=1) skips the ~1.5 min
# of xz for a quick local iteration (lintian refuses none); release packages
# use the default, xz.
# FEDLOGIN_DEB_BIN=DIR (with --no-build) packages DIR/fedlogin.
#
# Needs: the Swift toolchain, gcc/make, dpkg-dev (dpkg-shlibdeps), binutils
# (strip), scdoc (man pages). Writes only under out/ and .build-release/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/packaging"
OUT="${FEDLOGIN_OUT:-$ROOT/out}"
SCRATCH="${FEDLOGIN_RELEASE_SCRATCH:-$ROOT/.build-release}"
SWIFT="${SWIFT:-swift}"
# The multi-call executable, installed once; each command is a symlink to it
# under its name, where the units, the docs and the man pages say.
EXE=/usr/libexec/fedlogin/fedlogin
declare -A COMMANDS=([fedlogind]=/usr/sbin [fedloginctl]=/usr/bin [fedlogin-directoryd]=/usr/sbin)

say() { printf 'build-deb: %s\n' "$*"; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

build=1
case "${1:-}" in
    "") ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
esac

for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture strip scdoc gzip; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install --no-install-recommends dpkg-dev binutils scdoc)"
done

VERSION="$(sed -n 's/^public let fedloginVersion = "\(.*\)"$/\1/p' "$ROOT/Sources/FedloginDaemon/Server/Control.swift")"
[ -n "$VERSION" ] || die "no fedloginVersion in Sources/FedloginDaemon/Server/Control.swift"
CHANGELOG_VERSION="$(sed -n '1s/^fedlogin (\([^)]*\)).*/\1/p' "$PKG/debian/changelog")"
[ "$VERSION" = "$CHANGELOG_VERSION" ] ||
    die "version $VERSION (Control.swift) differs from $CHANGELOG_VERSION (packaging/debian/changelog): add a changelog entry"
ARCH="$(dpkg-architecture -qDEB_HOST_ARCH)"
MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
DEB="$OUT/fedlogin_${VERSION}_${ARCH}.deb"

# --- build --------------------------------------------------------------------
if [ "$build" = 1 ]; then
    say "swift build -c release --static-swift-stdlib --scratch-path $SCRATCH"
    mkdir -p "$OUT"
    log="$OUT/swift-release-build.log"
    # -z now: full RELRO (BIND_NOW), as Debian builds its own packages.
    if ! (cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --scratch-path "$SCRATCH" \
        -Xlinker -z -Xlinker now) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "the Swift release build failed (log: $log)"
    fi
    say "PAM and NSS modules"
    make -s -C "$ROOT/pam" OUT="$OUT" "$OUT/pam_fedlogin.so" "$OUT/libnss_fedlogin.so.2"
fi
# FEDLOGIN_DEB_BIN: take the executable from another build (make check packages
# the debug build it tested, linked with the Swift runtime inside).
BIN="${FEDLOGIN_DEB_BIN:-$SCRATCH/release}"
[ -x "$BIN/fedlogin" ] || die "$BIN/fedlogin is missing: the Swift release build failed or was not run"
for module in pam_fedlogin.so libnss_fedlogin.so.2; do
    [ -f "$OUT/$module" ] || die "$OUT/$module is missing (make -C pam OUT=$OUT)"
done
# The nsswitch.conf edit of postinst and postrm.
sh "$PKG/test-nsswitch.sh" >/dev/null || die "packaging/debian/nsswitch.sh fails its test (sh packaging/test-nsswitch.sh)"
if [ "$build" = 0 ]; then
    newer="$(find "$ROOT/Sources" "$ROOT/Package.swift" -name '*.swift' -newer "$BIN/fedlogin" -print -quit)"
    [ -z "$newer" ] || say "warning: $newer is newer than $BIN/fedlogin: the package may hold a stale binary"
fi
if ldd "$BIN/fedlogin" | grep -q 'libswift'; then
    die "$BIN/fedlogin links the Swift runtime dynamically: build with --static-swift-stdlib (make static)"
fi

# --- stage the file tree ----------------------------------------------------------
STAGE="$OUT/deb-root"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"
umask 022

inst() { # MODE SRC DEST
    install -D -m "$1" "$2" "$STAGE$3"
}

inst 0755 "$BIN/fedlogin" "$EXE"
for cmd in "${!COMMANDS[@]}"; do
    # Relative, as Debian policy 10.5 wants within /usr: ../libexec/fedlogin/fedlogin.
    install -d -m 0755 "$STAGE${COMMANDS[$cmd]}"
    ln -s "$(realpath -m --relative-to="${COMMANDS[$cmd]}" "$EXE")" "$STAGE${COMMANDS[$cmd]}/$cmd"
done
inst 0644 "$OUT/pam_fedlogin.so" "/lib/$MULTIARCH/security/pam_fedlogin.so"
inst 0644 "$OUT/libnss_fedlogin.so.2" "/usr/lib/$MULTIARCH/libnss_fedlogin.so.2"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$STAGE$EXE" "$STAGE/lib/$MULTIARCH/security/pam_fedlogin.so" "$STAGE/usr/lib/$MULTIARCH/libnss_fedlogin.so.2"

for unit in fedlogind.service fedlogind.socket fedlogin-directoryd.service; do
    inst 0644 "$ROOT/systemd/$unit" "/lib/systemd/system/$unit"
done
# The drop-in that turns fedlogin-directoryd to the LDAP backend (docs/ldap.md).
inst 0644 "$ROOT/systemd/fedlogin-directoryd-ldap.conf" /usr/share/fedlogin/ldap/fedlogin-directoryd-ldap.conf

inst 0644 "$PKG/fedlogin.conf" /etc/fedlogin/fedlogin.conf
install -d -m 0755 "$STAGE/etc/fedlogin/conf.d"
inst 0644 "$PKG/debian/sshd_config" /etc/ssh/sshd_config.d/fedlogin.conf

# The LDAP schema and example access rules for OpenLDAP's cn=config
# (docs/ldap.md): data for the directory's administrators, not configuration.
for ldif in fedlogin.ldif fedlogin-acl.ldif; do
    inst 0644 "$PKG/ldap/$ldif" "/usr/share/fedlogin/ldap/$ldif"
done

# The pam-auth-update profiles (fedlogin, fedlogin-authfail,
# fedlogin-password), built from the one stack definition, pam/fedlogin.pam.
sh "$PKG/pam-configs.sh" "$STAGE/usr/share/pam-configs" ||
    die "pam/fedlogin.pam: cannot build the pam-auth-update profiles from it"

# Man pages (docs/man/*.scd).
MANTMP="$OUT/man"
bash "$ROOT/docs/man/build.sh" "$MANTMP" >/dev/null
for page in "$MANTMP"/*.[0-9]; do
    section="${page##*.}"
    install -d -m 0755 "$STAGE/usr/share/man/man$section"
    gzip -9n < "$page" > "$STAGE/usr/share/man/man$section/$(basename "$page").gz"
    chmod 0644 "$STAGE/usr/share/man/man$section/$(basename "$page").gz"
done

DOC="$STAGE/usr/share/doc/fedlogin"
install -d -m 0755 "$DOC"
install -m 0644 "$PKG/debian/copyright" "$DOC/copyright"
gzip -9n < "$PKG/debian/changelog" > "$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"

# Directories: 0755, owned by root (dpkg-deb --root-owner-group).
find "$STAGE" -type d -exec chmod 0755 {} +

# --- control files ------------------------------------------------------------
# Shared-library dependencies, exactly as dpkg-shlibdeps computes them.
SHL="$OUT/deb-shlibs"
rm -rf "$SHL" && mkdir -p "$SHL/debian"
printf 'Source: fedlogin\n\nPackage: fedlogin\nArchitecture: any\n' > "$SHL/debian/control"
SHLIBS="$(cd "$SHL" && dpkg-shlibdeps -O \
    "$STAGE$EXE" "$STAGE/lib/$MULTIARCH/security/pam_fedlogin.so" "$STAGE/usr/lib/$MULTIARCH/libnss_fedlogin.so.2" \
    2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
rm -rf "$SHL"
[ -n "$SHLIBS" ] || die "dpkg-shlibdeps found no dependencies"

INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" \
    -e "s|@SHLIBS@|$SHLIBS|" "$PKG/debian/control.in" > "$STAGE/DEBIAN/control"
install -m 0644 "$PKG/debian/conffiles" "$STAGE/DEBIAN/conffiles"
# libnss_fedlogin.so.2 is in a folder of the dynamic linker: ldconfig runs.
install -m 0644 "$PKG/debian/triggers" "$STAGE/DEBIAN/triggers"
# postinst and postrm share the nsswitch.conf edit (debian/nsswitch.sh).
for script in postinst prerm postrm; do
    awk -v lib="$PKG/debian/nsswitch.sh" '
        $0 == "#NSSWITCH#" { while ((getline l < lib) > 0) print l; next }
        { print }' "$PKG/debian/$script" > "$STAGE/DEBIAN/$script"
    chmod 0755 "$STAGE/DEBIAN/$script"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$STAGE/DEBIAN/md5sums"

# The default configuration must be one fedlogind accepts (the staged
# executable, started through its fedlogind symlink).
"$STAGE/usr/sbin/fedlogind" --check-config --config "$STAGE/etc/fedlogin/fedlogin.conf" >/dev/null ||
    die "packaging/fedlogin.conf is not accepted by fedlogind --check-config"

mkdir -p "$OUT"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}" \
    dpkg-deb --root-owner-group -Z"${FEDLOGIN_DEB_COMPRESSION:-xz}" ${FEDLOGIN_DEB_LEVEL:+-z"$FEDLOGIN_DEB_LEVEL"} --build "$STAGE" "$DEB" >/dev/null
rm -rf "$STAGE" "$MANTMP"
say "$DEB ($(du -h "$DEB" | cut -f1), installed $((INSTALLED_SIZE / 1024)) MiB)"
say "Depends: $(dpkg-deb -f "$DEB" Depends)"
