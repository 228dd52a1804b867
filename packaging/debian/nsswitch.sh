# fedlogin's entries in /etc/nsswitch.conf. build-deb.sh puts this file into
# postinst and postrm in place of their "#NSSWITCH#" line, and tests it.
#
# nss_add FILE NOTE: unless NOTE exists (fedlogin has set up FILE before),
# adds " fedlogin" after the last source of the passwd: and group: lines
# that do not name fedlogin already, and writes NOTE with the databases it
# changed, one a line (possibly none). A line with no source, a comment, and
# the admin's order and spacing are left as they are.
#
# nss_remove FILE NOTE: takes " fedlogin" off the lines of the databases
# NOTE lists, then removes NOTE. After nss_add and nss_remove FILE is
# byte-for-byte as before; a fedlogin entry the admin wrote stays.

# nss_edit add|remove FILE DATABASES: writes the edited FILE to standard
# output. DATABASES is a space-separated list of passwd and group.
nss_edit() {
    awk -v mode="$1" -v dbs="$3" '
        BEGIN { n = split(dbs, l, " "); for (i = 1; i <= n; i++) want[l[i]] = 1 }
        {
            line = $0
            if (match(line, /^[ \t]*(passwd|group)[ \t]*:/)) {
                db = substr(line, RSTART, RLENGTH); gsub(/[ \t:]/, "", db)
                if (want[db]) {
                    # glibc reads a line up to a "#".
                    hash = index(line, "#")
                    content = hash ? substr(line, 1, hash - 1) : line
                    comment = hash ? substr(line, hash) : ""
                    head = substr(content, 1, RLENGTH)
                    sources = substr(content, RLENGTH + 1)
                    if (mode == "add") {
                        present = 0
                        k = split(sources, f, /[ \t]+/)
                        for (i = 1; i <= k; i++) if (f[i] == "fedlogin") present = 1
                        if (!present && sources ~ /[^ \t]/) {
                            match(sources, /[ \t]*$/)
                            sources = substr(sources, 1, RSTART - 1) " fedlogin" substr(sources, RSTART)
                        }
                    } else if (match(sources " ", /[ \t]fedlogin[ \t]/)) {
                        sources = substr(sources, 1, RSTART - 1) substr(sources, RSTART + 9)
                    }
                    line = head sources comment
                }
            }
            print line
        }' "$2"
}

# nss_has_fedlogin FILE DB: true if a DB line of FILE names fedlogin as a source.
nss_has_fedlogin() {
    awk -v db="$2" '
        match($0, /^[ \t]*(passwd|group)[ \t]*:/) {
            d = substr($0, RSTART, RLENGTH); gsub(/[ \t:]/, "", d)
            if (d != db) next
            s = substr($0, RLENGTH + 1); sub(/#.*/, "", s)
            k = split(s, f, /[ \t]+/)
            for (i = 1; i <= k; i++) if (f[i] == "fedlogin") found = 1
        }
        END { exit !found }' "$1"
}

# nss_write FILE MODE DATABASES: edits FILE in place (atomically, keeping its
# owner and mode) when the edit changes it.
nss_write() {
    nss_file="$(readlink -f "$1")"
    nss_tmp="$nss_file.fedlogin-new"
    nss_edit "$2" "$nss_file" "$3" > "$nss_tmp"
    # awk ends every line with a newline: keep a missing last one missing.
    if [ -s "$nss_file" ] && [ -n "$(tail -c 1 "$nss_file")" ]; then
        head -c -1 "$nss_tmp" > "$nss_tmp.2" && mv -f "$nss_tmp.2" "$nss_tmp"
    fi
    if cmp -s "$nss_tmp" "$nss_file"; then
        rm -f "$nss_tmp"
        return 0
    fi
    chown --reference="$nss_file" "$nss_tmp"
    chmod --reference="$nss_file" "$nss_tmp"
    mv -f "$nss_tmp" "$nss_file"
}

nss_add() { # FILE NOTE
    [ -f "$1" ] || return 0
    [ -e "$2" ] && return 0
    nss_added=""
    for nss_db in passwd group; do
        if grep -Eq "^[[:space:]]*$nss_db[[:space:]]*:" "$1" && ! nss_has_fedlogin "$1" "$nss_db"; then
            nss_added="$nss_added $nss_db"
        fi
    done
    mkdir -p "$(dirname "$2")"
    nss_write "$1" add "$nss_added"
    # Only the databases whose line now names fedlogin (a line with no source is left alone).
    : > "$2.new"
    for nss_db in $nss_added; do
        if nss_has_fedlogin "$1" "$nss_db"; then echo "$nss_db" >> "$2.new"; fi
    done
    mv -f "$2.new" "$2"
}

nss_remove() { # FILE NOTE
    [ -f "$2" ] || return 0
    nss_noted="$(grep -Ex 'passwd|group' "$2" | tr '\n' ' ')"
    if [ -f "$1" ] && [ -n "$nss_noted" ]; then
        nss_write "$1" remove "$nss_noted"
    fi
    rm -f "$2"
}
