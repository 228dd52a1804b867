"""A real OpenLDAP slapd for the LDAP backend's tests, in a temporary folder.

The host's slapd package stays unconfigured (scripts/deps.sh preseeds
slapd/no_configuration): every Slapd here has its own cn=config, made with
`slapadd -n0` from a generated LDIF, and its own mdb database, loaded with
`slapadd -n1` before the server starts. It listens on an ldapi:// socket in
its folder and on a loopback port, runs in the foreground under the test's
Process (logs in <tmp>/slapd.out/.err) and is stopped by its pid.

cn=config holds the base schemas (core, cosine, inetorgperson, nis), the
shipped fedlogin schema (packaging/ldap/fedlogin.ldif), the ppolicy module
and overlay (pwdAccountLockedTime), and by default the shipped access rules
(packaging/ldap/fedlogin-acl.ldif, its dc=example,dc=com made the test
suffix). The DIT (suffix dc=example,dc=test):

  ou=users     inetOrgPerson + posixAccount + shadowAccount: uid, mail, cn,
               displayName, uidNumber, userPassword {CRYPT}<crypt(3) hash>;
               disabled = pwdAccountLockedTime 000001010000Z (ppolicy)
  ou=groups    groupOfNames (member = user DNs); cn=fedlogin-admins, the
               administrators (the ACL's group), holds cn=directoryd
  ou=devices   `device` + simpleSecurityObject + fedloginDevice entries,
               cn = the device id, userPassword = the device's password
               (DEVICE_PW % id); fedloginAssociatedUser / fedloginUnboundUser
               = the DNs of the users associated with / removed from it;
               fedloginBinding entries under them (binding reports)
  cn=policy    a fedloginPolicyEntry: fedloginPolicy = the policy as JSON
  cn=directoryd  an administrator (simpleSecurityObject, SERVICE_PW)

fedlogin-directoryd binds as a device's own entry (directoryd_config).
A Password Modify stores {CRYPT}$6$ hashes (olcPasswordHash {CRYPT},
olcPasswordCryptSaltFormat "$6$%.16s"), which password sync reads.

With `tls` (a testca.TestCA) it also serves TLS: STARTTLS on its ldap://
port and an ldaps:// port (ldaps_uri), with the CA's server certificate;
a client certificate is asked for (olcTLSVerifyClient try), and its
subject CN=<id>,O=fedlogin devices is mapped to cn=<id>,ou=devices (the
device's entry) for SASL EXTERNAL (olcAuthzRegexp).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.parse
import warnings
from pathlib import Path

import sandbox

with warnings.catch_warnings():
    # Deprecated in 3.11 and still there: the stdlib's one crypt(3) binding.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "admin-secret"
# An administrator (a member of ADMINS_DN), for tests that change the data.
SERVICE_DN = f"cn=directoryd,{SUFFIX}"
SERVICE_PW = "directoryd-secret"
ADMIN_DN = SERVICE_DN
ADMIN_PW = SERVICE_PW
# Each device's password: DEVICE_PW % device_id.
DEVICE_PW = "%s-device-secret"
USERS = f"ou=users,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
DEVICES = f"ou=devices,{SUFFIX}"
POLICY_DN = f"cn=policy,{SUFFIX}"
ADMINS_DN = f"cn=fedlogin-admins,{GROUPS}"
PACKAGING = Path(__file__).resolve().parents[3] / "packaging" / "ldap"
# The suffix the shipped ACL LDIF is written for.
SHIPPED_SUFFIX = "dc=example,dc=com"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_PATH = "/usr/lib/ldap"
# Root, through ldapi:// and SASL EXTERNAL, manages cn=config.
ROOT_PEER = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"


def ldif_values(text: str, attribute: str) -> list[str]:
    """The values of `attribute` in LDIF text (continuation lines unfolded)."""
    unfolded: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and unfolded:
            unfolded[-1] += line[1:]
        elif not line.startswith("#"):
            unfolded.append(line)
    prefix = attribute.lower() + ":"
    return [line[len(prefix):].strip() for line in unfolded if line.lower().startswith(prefix)]


def shipped_acl(suffix: str = SUFFIX) -> list[str]:
    """packaging/ldap/fedlogin-acl.ldif's olcAccess rules (without their {n}),
    for `suffix`."""
    text = (PACKAGING / "fedlogin-acl.ldif").read_text().replace(SHIPPED_SUFFIX, suffix)
    return [rule.split("}", 1)[1] if rule.startswith("{") else rule for rule in ldif_values(text, "olcAccess")]


def device_dn(device: str) -> str:
    return f"cn={device},{DEVICES}"


# The shipped rules: devices read users, groups, the policy and their own
# entry, the hashes of their associated users only, and add bindings under
# their own entry; users change their own password; ADMINS_DN manages.
DEFAULT_ACL = shipped_acl()


def crypt_hash(password: str) -> str:
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_ldif(db_dir: Path, acl: list[str] | None = None, modules: tuple[str, ...] = (), global_lines: str = "",
                database_lines: str = "", entries: str = "") -> str:
    """cn=config for slapadd -n0: back_mdb, the four schemas, one database.
    `modules` are loaded after back_mdb; `global_lines` and `database_lines`
    are added to cn=config and to the mdb database's entry, `entries` (e.g.
    an overlay under the database) at the end (harness/slapd_pair.py)."""
    parts = [f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcLogLevel: stats
olcPasswordCryptSaltFormat: $6$%.16s
{global_lines}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_PATH}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
""" + "".join(f"olcModuleLoad: {m}\n" for m in modules) + f"""
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema
"""]
    for name in SCHEMAS:
        parts.append(Path(f"/etc/ldap/schema/{name}.ldif").read_text())
    parts.append((PACKAGING / "fedlogin.ldif").read_text())
    acl = acl or DEFAULT_ACL
    parts.append(f"""dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcPasswordHash: {{CRYPT}}

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact={ROOT_PEER} manage by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {db_dir}
olcDbMaxSize: 16777216
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PW}
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,cn eq
olcDbIndex: member eq
olcAddContentAcl: TRUE
olcLimits: dn.children="{DEVICES}" size.prtotal=unlimited
""" + database_lines + "".join(f"olcAccess: {{{i}}}{rule}\n" for i, rule in enumerate(acl)) + f"""
dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
""")
    if entries:
        parts.append(entries)
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def user_entry(username: str, uid_number: int | None, password: str | None = None, mail: str | None = None,
               display_name: str | None = None, disabled: bool = False, password_hash: str | None = None) -> str:
    """A user; without a uid_number no posixAccount (the device picks the uid)."""
    lines = [f"dn: uid={username},{USERS}", "objectClass: inetOrgPerson", "objectClass: shadowAccount",
             f"uid: {username}", f"cn: {display_name or username}", f"sn: {username}",
             f"mail: {mail or username + '@example.test'}"]
    if uid_number is not None:
        lines += ["objectClass: posixAccount", f"uidNumber: {uid_number}", f"gidNumber: {uid_number}",
                  f"homeDirectory: /home/{username}"]
    if display_name:
        lines.append(f"displayName: {display_name}")
    if password is not None:
        password_hash = crypt_hash(password)
    if password_hash is not None:
        lines.append(f"userPassword: {{CRYPT}}{password_hash}")
    if disabled:
        # ppolicy's administrative lock (docs/ldap.md: disabled).
        lines.append("pwdAccountLockedTime: 000001010000Z")
    return "\n".join(lines) + "\n"


def default_policy() -> dict:
    return json.loads(json.dumps(sandbox.DEFAULT_POLICY))


def device_entry(device: str, members: list[str], unbound: list[str] | None = None) -> str:
    return (f"dn: {device_dn(device)}\nobjectClass: device\nobjectClass: simpleSecurityObject\n"
            f"objectClass: fedloginDevice\ncn: {device}\nuserPassword: {{CRYPT}}{crypt_hash(DEVICE_PW % device)}\n"
            + "".join(f"fedloginAssociatedUser: uid={m},{USERS}\n" for m in members)
            + "".join(f"fedloginUnboundUser: uid={m},{USERS}\n" for m in unbound or []))


def data_ldif(users: list[dict], groups: dict[str, list[str]], devices: dict[str, list[str]],
              policy: dict, unbound: dict[str, list[str]] | None = None) -> str:
    unbound = unbound or {}
    entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
               f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
               f"cn: directoryd\nuserPassword: {SERVICE_PW}\n"]
    for ou in ("users", "groups", "devices"):
        entries.append(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n")
    entries.append(f"dn: {ADMINS_DN}\nobjectClass: groupOfNames\ncn: fedlogin-admins\nmember: {SERVICE_DN}\n")
    for i, u in enumerate(users):
        u = dict(u)
        entries.append(user_entry(u.pop("username"), u.pop("uid_number", 70001 + i), **u))
    for name, members in groups.items():
        # groupOfNames needs a member: an empty group names the suffix.
        ms = [f"uid={m},{USERS}" for m in members] or [SUFFIX]
        entries.append(f"dn: cn={name},{GROUPS}\nobjectClass: groupOfNames\ncn: {name}\n"
                       + "".join(f"member: {m}\n" for m in ms))
    for device in {**devices, **{d: [] for d in unbound if d not in devices}}:
        entries.append(device_entry(device, devices.get(device, []), unbound.get(device)))
    entries.append(f"dn: {POLICY_DN}\nobjectClass: fedloginPolicyEntry\ncn: policy\n"
                   f"fedloginPolicy: {json.dumps(policy, sort_keys=True)}\n")
    return "\n".join(entries)


def from_directory_records(records: list[dict]) -> tuple[list[dict], dict[str, list[str]]]:
    """The users and groups of directory-file records (sandbox.directory_user),
    as Slapd takes them: the same data for the LDAP backend."""
    users, groups = [], {}
    for r in records:
        users.append({"username": r["username"], "uid_number": r.get("uid"), "mail": r["email"],
                      "display_name": r.get("display_name"), "disabled": r.get("disabled", False),
                      "password_hash": r.get("password_hash")})
        for g in r.get("groups") or []:
            groups.setdefault(g, []).append(r["username"])
    return users, groups


def ldif_entries(ldif: str) -> dict[str, dict[str, list[str]]]:
    """data_ldif's entries (plain `attribute: value` lines, one blank line
    between entries): DN -> attribute -> values."""
    entries: dict[str, dict[str, list[str]]] = {}
    for block in ldif.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if lines:
            attrs: dict[str, list[str]] = {}
            for line in lines[1:]:
                name, value = line.split(": ", 1)
                attrs.setdefault(name, []).append(value)
            entries[lines[0].split(": ", 1)[1]] = attrs
    return entries


def changes_ldif(before: str, after: str) -> str:
    """ldapmodify input that turns the entries of data_ldif `before` into
    those of `after`, entry by entry: new entries added, each changed
    attribute replaced (or deleted, when it has no values left), entries
    gone deleted. A device's userPassword is left alone (data_ldif salts it
    afresh each time). Empty when nothing changes."""
    old, new = ldif_entries(before), ldif_entries(after)
    changes = []
    for dn, attrs in new.items():
        if dn not in old:
            changes.append(f"dn: {dn}\nchangetype: add\n" + "".join(f"{a}: {v}\n" for a, vs in attrs.items() for v in vs))
            continue
        changed = [a for a in {**old[dn], **attrs} if sorted(old[dn].get(a, [])) != sorted(attrs.get(a, []))
                   and not (a == "userPassword" and dn.endswith("," + DEVICES))]
        if changed:
            # An attribute gone is deleted: ppolicy refuses a replace with no
            # values of pwdAccountLockedTime.
            changes.append(f"dn: {dn}\nchangetype: modify\n" + "-\n".join(
                f"replace: {a}\n" + "".join(f"{a}: {v}\n" for v in attrs[a]) if a in attrs else f"delete: {a}\n"
                for a in changed))
    changes += [f"dn: {dn}\nchangetype: delete\n" for dn in old if dn not in new]
    return "\n".join(changes)


def tls_config(ldif: str, ca) -> str:
    """cn=config's LDIF with the TLS settings of `ca` (a testca.TestCA) added
    to the cn=config entry; unchanged without one."""
    if ca is None:
        return ldif
    lines = (f"olcTLSCACertificateFile: {ca.ca_cert}\n"
             f"olcTLSCertificateFile: {ca.server_cert}\n"
             f"olcTLSCertificateKeyFile: {ca.server_key}\n"
             "olcTLSVerifyClient: try\n"
             f'olcAuthzRegexp: {{0}}"^cn=([^,]+),o={ca.CLIENT_ORG}$" "cn=$1,{DEVICES}"\n')
    return ldif.replace("\ncn: config\n", "\ncn: config\n" + lines, 1)


class Slapd:
    """slapd with its own cn=config and database under `tmp`; stop() ends it by pid."""

    def __init__(self, tmp: Path, users: list[dict] | None = None, groups: dict[str, list[str]] | None = None,
                 devices: dict[str, list[str]] | None = None, policy: dict | None = None,
                 acl: list[str] | None = None, unbound: dict[str, list[str]] | None = None,
                 unchecked_ldif: str | None = None, tls=None, port: int | None = None, config: dict | None = None):
        """`unchecked_ldif`: more entries, loaded without schema checks
        (`slapadd -s`), for entries no server would accept (two values of a
        SINGLE-VALUE attribute); `tls`: harness/testca.py's files for
        slapd's TLS; `port`: the loopback port (a free one by default);
        `config`: more keyword arguments for config_ldif (modules,
        replication)."""
        self.tmp = sandbox.short_dir(Path(tmp))
        self.tls = tls
        self.conf_dir = self.tmp / "slapd.d"
        self.db_dir = self.tmp / "slapd-db"
        self.ldapi_path = self.tmp / "ldapi"
        self.port = port or _free_port()
        self.ldapi_uri = "ldapi://" + urllib.parse.quote(str(self.ldapi_path), safe="")
        self.ldap_uri = f"ldap://127.0.0.1:{self.port}"
        self.process: sandbox.Process | None = None
        for d in (self.conf_dir, self.db_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.ldaps_port = _free_port() if tls else None
        self.ldaps_uri = f"ldaps://127.0.0.1:{self.ldaps_port}" if tls else None
        (self.tmp / "config.ldif").write_text(tls_config(config_ldif(self.db_dir, acl, **(config or {})), tls))
        self._run(["slapadd", "-n0", "-F", self.conf_dir, "-l", self.tmp / "config.ldif"])
        pol = default_policy()
        pol.update(policy or {})
        self.devices = dict(devices or {})
        self.unbound = dict(unbound or {})
        (self.tmp / "data.ldif").write_text(data_ldif(users or [], groups or {}, self.devices, pol, self.unbound))
        self._run(["slapadd", "-n1", "-F", self.conf_dir, "-l", self.tmp / "data.ldif"])
        if unchecked_ldif:
            (self.tmp / "unchecked.ldif").write_text(unchecked_ldif)
            self._run(["slapadd", "-s", "-n1", "-F", self.conf_dir, "-l", self.tmp / "unchecked.ldif"])

    def _run(self, argv):
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def start(self, timeout: float = 10.0) -> "Slapd":
        # -d: in the foreground (the Process's pid is slapd's), logging to stderr.
        self.process = sandbox.Process("slapd", ["slapd", "-d", "stats", "-F", self.conf_dir,
                                                 "-h", " ".join(u for u in (self.ldapi_uri, self.ldap_uri, self.ldaps_uri) if u)],
                                      self.tmp)
        self.process.wait_for_socket(self.ldapi_path, timeout)
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop()

    def directoryd_config(self, folder: Path, uris=None, timeout=2, device: str | None = None, **overrides) -> Path:
        """A fedlogin-directoryd configuration file for the LDAP backend on this
        slapd, bound as the device's own entry (`device`, by default the first
        of `devices`), its password in a 0600 file. A `bind_dn` override of
        SERVICE_DN binds as the administrator instead."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if device is None:
            if not self.devices and not self.unbound:
                raise ValueError("directoryd_config: no device entry to bind as (give Slapd devices)")
            device = next(iter({**self.devices, **self.unbound}))
        secret = folder / "ldap.secret"
        bind_dn = overrides.get("bind_dn", device_dn(device))
        secret.write_text((SERVICE_PW if bind_dn == SERVICE_DN else DEVICE_PW % device) + "\n")
        os.chmod(secret, 0o600)
        ldap = {"uris": uris or [self.ldap_uri], "users_base": USERS, "groups_base": GROUPS,
                "devices_base": DEVICES, "policy_dn": POLICY_DN, "bind_dn": device_dn(device),
                "bind_password_file": str(secret), "timeout": timeout, "schema": "openldap"}
        ldap.update(overrides)
        path = folder / "directoryd.conf"
        path.write_text(sandbox.to_toml({"backend": "ldap", "ldap": ldap}))
        return path

    def tool(self, name: str, dn: str | None, password: str | None, *args: str,
             input: str | None = None) -> subprocess.CompletedProcess:
        """An ldap-utils command (ldapsearch, ldapmodify, ldapadd, ldappasswd,
        ...) on the loopback port, bound as `dn` with `password` (simple bind)."""
        bind = ["-x"] + (["-D", dn, "-w", password] if dn is not None else [])
        return subprocess.run([name, *bind, "-H", self.ldap_uri, *args], input=input, capture_output=True,
                              text=True, timeout=10)

    def ldapmodify_config(self, ldif: str):
        """Changes cn=config live, as root through ldapi:// and SASL EXTERNAL."""
        r = subprocess.run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", self.ldapi_uri], input=ldif,
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError(f"ldapmodify failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def set_acl(self, rules: list[str]):
        """Replaces the database's olcAccess rules."""
        self.ldapmodify_config("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcAccess\n"
                               + "".join(f"olcAccess: {{{i}}}{r}\n" for i, r in enumerate(rules)))

    def modify(self, ldif: str):
        """Changes the data as the rootdn (an administrator's change)."""
        r = self.tool("ldapmodify", ROOT_DN, ROOT_PW, input=ldif)
        if r.returncode != 0:
            raise RuntimeError(f"ldapmodify failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def search(self, base: str, filt: str = "(objectClass=*)", *attrs: str) -> str:
        r = subprocess.run(["ldapsearch", "-LLL", "-x", "-H", self.ldapi_uri, "-D", ROOT_DN, "-w", ROOT_PW,
                            "-b", base, filt, *attrs], capture_output=True, text=True, timeout=10)
        return r.stdout + r.stderr

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
