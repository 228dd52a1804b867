#!/usr/bin/env python3
"""The system test's LDAP directory: a real slapd on the host's loopback
(the container shares the host's network), set up with the integration
tests' harness (Tests/integration/harness/slapd.py: its own cn=config and
database in FOLDER, the fedlogin schema and ACLs).

    ldap_directory.py FOLDER DEVICE_ID USER...

Makes the configuration and the database (slapadd; slapd is not started),
writes FOLDER/directoryd.conf and FOLDER/ldap.secret for fedlogin-directoryd
in the container (the secret's path there: /etc/fedlogin-directoryd/ldap.secret)
and prints shell assignments: SLAPD_ARGV (the slapd command line, to run in
the foreground with -d 0), SLAPD_URI, SLAPD_LDAPI, SLAPD_ROOT_DN and
SLAPD_ROOT_PW (for ldapsearch). Every USER is associated with DEVICE_ID and
has no uidNumber (the device picks the uid from [accounts]).
"""
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration" / "harness"))
import slapd  # noqa: E402


def main():
    folder, device, users = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    s = slapd.Slapd(folder, users=[{"username": u, "display_name": f"{u.capitalize()} Example", "uid_number": None}
                           for u in users],
                    groups={"staff": users}, devices={device: users})
    conf = s.directoryd_config(folder / "directoryd", uris=[s.ldap_uri], timeout=2)
    text = conf.read_text().replace(str(conf.parent / "ldap.secret"), "/etc/fedlogin-directoryd/ldap.secret")
    (folder / "directoryd.conf").write_text(text)
    (folder / "ldap.secret").write_bytes((conf.parent / "ldap.secret").read_bytes())
    argv = ["slapd", "-d", "0", "-F", str(s.conf_dir), "-h", f"{s.ldapi_uri} {s.ldap_uri}"]
    print(f"SLAPD_ARGV=({' '.join(shlex.quote(a) for a in argv)})")
    for k, v in {"SLAPD_URI": s.ldap_uri, "SLAPD_LDAPI": s.ldapi_uri, "SLAPD_ROOT_DN": slapd.ROOT_DN,
                 "SLAPD_ROOT_PW": slapd.ROOT_PW}.items():
        print(f"{k}={shlex.quote(v)}")


if __name__ == "__main__":
    main()
