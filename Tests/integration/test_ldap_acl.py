"""Least privilege for devices, proven by slapd's own access rules: the
shipped schema and ACLs (packaging/ldap/fedlogin.ldif, fedlogin-acl.ldif)
in a real slapd (harness/slapd.py), each device bound as its own entry,
with ldap-utils and through fedlogin-directoryd. Also what fedlogin-directoryd
does with entries it cannot use (malformed ones): a log line and an
answer that is neither a crash nor a guess.
"""
import base64
import json
import subprocess
from pathlib import Path

import pytest

import sandbox
import slapd as slapd_harness
from slapd import ADMIN_DN, ADMIN_PW, DEVICE_PW, DEVICES, POLICY_DN, USERS, device_dn
from test_ldap_directory import ask, report, start_ldap_directoryd

USERS_ = [
    {"username": "alice", "password": "alice-pw-1", "uid_number": 80101},
    {"username": "bob", "password": "bob-pw-1", "uid_number": 80102},
    {"username": "carol", "password": "carol-pw-1", "uid_number": 80103},
]
DEVICES_ = {"dev1": ["alice", "carol"], "dev2": ["bob"]}
UNBOUND = {"dev1": ["carol"]}
POLICY = {"self_service": True, "password_sync": True}
INSUFFICIENT = 50  # LDAP insufficientAccessRights


@pytest.fixture
def slapd(tmp_path):
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS_, groups={"staff": ["alice", "bob"]},
                                 devices=DEVICES_, unbound=UNBOUND, policy=POLICY)
    server.start()
    # A binding dev2 reported, which dev1 must not touch.
    r = server.tool("ldapadd", device_dn("dev2"), DEVICE_PW % "dev2",
                    input=binding_ldif("dev2", "k-dev2", report("k-dev2", "bob", device="dev2")))
    assert r.returncode == 0, r.stderr
    yield server
    server.stop()


def binding_ldif(device: str, key: str, body: dict, extra: str = "") -> str:
    return (f"dn: cn={key},{device_dn(device)}\nobjectClass: fedloginBinding\ncn: {key}\n"
            f"fedloginBindingReport: {json.dumps(body, sort_keys=True)}\n{extra}")


def as_dev1(server, tool, *args, input=None):
    return server.tool(tool, device_dn("dev1"), DEVICE_PW % "dev1", *args, input=input)


def modify(attribute: str, value: str, op: str = "add", dn: str | None = None) -> str:
    return f"dn: {dn or device_dn('dev1')}\nchangetype: modify\n{op}: {attribute}\n{attribute}: {value}\n"


def refused(r: subprocess.CompletedProcess) -> bool:
    """ldappasswd exits 1 and prints the result; the others exit with it."""
    return r.returncode != 0 and (r.returncode == INSUFFICIENT or "Insufficient access (50)" in r.stdout + r.stderr)


def user_password(server, dn_bound, pw, user) -> str:
    r = server.tool("ldapsearch", dn_bound, pw, "-LLL", "-b", f"uid={user},{USERS}", "(objectClass=*)", "userPassword")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_device_reads_the_hash_of_the_users_associated_with_it_and_no_other(tmp_path, slapd):
    assert "userPassword::" in user_password(slapd, device_dn("dev1"), DEVICE_PW % "dev1", "alice")
    assert "userPassword" not in user_password(slapd, device_dn("dev1"), DEVICE_PW % "dev1", "bob")
    assert "userPassword::" in user_password(slapd, device_dn("dev2"), DEVICE_PW % "dev2", "bob")
    assert "userPassword" not in user_password(slapd, device_dn("dev2"), DEVICE_PW % "dev2", "alice")
    # A user reads no other user's hash; the other device's entry and password are hidden.
    assert "userPassword" not in user_password(slapd, f"uid=bob,{USERS}", "bob-pw-1", "alice")
    r = as_dev1(slapd, "ldapsearch", "-LLL", "-b", DEVICES, "(objectClass=*)", "*")
    assert "cn=dev1," in r.stdout and "cn=dev2," not in r.stdout and "k-dev2" not in r.stdout, r.stdout
    assert "userPassword" not in r.stdout
    # The same through fedlogin-directoryd bound as dev1.
    d = start_ldap_directoryd(tmp_path / "ldap", slapd.directoryd_config(tmp_path, device="dev1"))
    try:
        alice = ask(d.socket, {"op": "lookup", "user": "alice"})["user"]
        assert alice["password_authority"] == "directory" and alice["password_hash"].startswith("$6$")
        bob = ask(d.socket, {"op": "lookup", "user": "bob"})["user"]
        assert "password_hash" not in bob and bob["password_authority"] == "local", bob
        # Users, groups and the policy are readable.
        assert bob["groups"] == ["staff"] and bob["uid"] == 80102
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["self_service"] is True
    finally:
        d.stop()


def test_a_device_adds_bindings_under_its_own_entry_and_nowhere_else(tmp_path, slapd):
    own = binding_ldif("dev1", "k1", report("k1", "alice"))
    assert as_dev1(slapd, "ldapadd", input=own).returncode == 0
    # Not under another device, not under the devices' base, not under its bindings.
    for ldif in [binding_ldif("dev2", "k2", report("k2", "bob", device="dev2")),
                 f"dn: cn=k3,{DEVICES}\nobjectClass: fedloginBinding\ncn: k3\nfedloginBindingReport: {{}}\n",
                 f"dn: cn=k4,cn=k1,{device_dn('dev1')}\nobjectClass: fedloginBinding\ncn: k4\nfedloginBindingReport: {{}}\n",
                 f"dn: uid=mallory,{USERS}\nobjectClass: inetOrgPerson\nuid: mallory\ncn: m\nsn: m\n"]:
        r = as_dev1(slapd, "ldapadd", input=ldif)
        assert r.returncode == INSUFFICIENT, (ldif, r.stdout, r.stderr)
    # No entry under its own that could bind or carry an association of its own.
    evil = binding_ldif("dev1", "evil", {}, "objectClass: simpleSecurityObject\nobjectClass: fedloginDevice\n"
                        f"userPassword: x\nfedloginAssociatedUser: uid=bob,{USERS}\n")
    assert as_dev1(slapd, "ldapadd", input=evil).returncode == INSUFFICIENT
    evil = binding_ldif("dev1", "evil2", {}, "objectClass: fedloginDevice\n"
                        f"fedloginAssociatedUser: uid=bob,{USERS}\n")
    assert as_dev1(slapd, "ldapadd", input=evil).returncode == INSUFFICIENT
    # Another device's binding: not changed, not deleted (not even seen); its own neither, once added.
    k2 = f"cn=k-dev2,{device_dn('dev2')}"
    assert as_dev1(slapd, "ldapmodify", input=modify("fedloginBindingReport", "{}", "replace", k2)).returncode in (INSUFFICIENT, 32)
    assert as_dev1(slapd, "ldapdelete", k2).returncode in (INSUFFICIENT, 32)
    assert "k-dev2" in slapd.search(k2)
    k1 = f"cn=k1,{device_dn('dev1')}"
    assert as_dev1(slapd, "ldapmodify", input=modify("fedloginBindingReport", "{}", "replace", k1)).returncode == INSUFFICIENT
    assert as_dev1(slapd, "ldapdelete", k1).returncode == INSUFFICIENT
    # fedlogin-directoryd bound as dev1: a report of dev2 is refused (dev2 is not visible to it).
    d = start_ldap_directoryd(tmp_path / "ldap", slapd.directoryd_config(tmp_path, device="dev1"))
    try:
        answer = ask(d.socket, {"op": "report_binding", "binding": report("k5", "bob", device="dev2")})
        assert answer["ok"] is False and "no device entry" in answer["error"], answer
        assert ask(d.socket, {"op": "report_binding", "binding": report("k6", "alice")}) == {"ok": True, "duplicate": False}
        assert "objectClass: fedloginBinding" in slapd.search(f"cn=k6,{device_dn('dev1')}")
        assert [r["key"] for r in ask(d.socket, {"op": "list_reports"})["reports"]] == ["k1", "k6"]
    finally:
        d.stop()


@pytest.mark.parametrize("attribute,value", [
    ("fedloginAssociatedUser", f"uid=bob,{USERS}"),
    ("fedloginUnboundUser", f"uid=alice,{USERS}"),
    ("fedloginPolicy", '{"self_service": true}'),
    ("userPassword", "new-device-secret"),
    ("description", "anything"),
])
def test_a_device_writes_none_of_its_own_attributes(slapd, attribute, value):
    for op in ("add", "replace"):
        r = as_dev1(slapd, "ldapmodify", input=modify(attribute, value, op))
        assert r.returncode == INSUFFICIENT, (op, r.stdout, r.stderr)
    r = as_dev1(slapd, "ldapmodify", input=f"dn: {device_dn('dev1')}\nchangetype: modify\ndelete: fedloginAssociatedUser\n")
    assert r.returncode == INSUFFICIENT
    # An administrator can.
    r = slapd.tool("ldapmodify", ADMIN_DN, ADMIN_PW, input=modify(attribute, value, "replace"))
    assert r.returncode == 0, r.stderr


def test_nobody_changes_a_password_but_its_owner_with_the_current_one(slapd):
    alice = f"uid=alice,{USERS}"
    # The device: not directly, not by Password Modify with or without the current one.
    assert as_dev1(slapd, "ldapmodify", input=modify("userPassword", "x", "replace", alice)).returncode == INSUFFICIENT
    assert refused(as_dev1(slapd, "ldappasswd", "-s", "new-pw-1", alice))
    assert refused(as_dev1(slapd, "ldappasswd", "-a", "alice-pw-1", "-s", "new-pw-1", alice))
    # Another user neither.
    bob = ("uid=bob," + USERS, "bob-pw-1")
    assert refused(slapd.tool("ldappasswd", *bob, "-s", "new-pw-1", alice))
    assert slapd.tool("ldapmodify", *bob, input=modify("userPassword", "x", "replace", alice)).returncode == INSUFFICIENT
    assert slapd.tool("ldapwhoami", alice, "alice-pw-1").returncode == 0
    # The user, with the current one: the directory stores a {CRYPT} hash.
    r = slapd.tool("ldappasswd", alice, "alice-pw-1", "-a", "alice-pw-1", "-s", "alice-pw-2")
    assert r.returncode == 0, r.stderr
    assert slapd.tool("ldapwhoami", alice, "alice-pw-2").returncode == 0
    assert slapd.tool("ldapwhoami", alice, "alice-pw-1").returncode != 0
    stored = user_password(slapd, device_dn("dev1"), DEVICE_PW % "dev1", "alice").split("userPassword:: ", 1)[1]
    assert base64.b64decode("".join(line.strip() for line in stored.splitlines())).startswith(b"{CRYPT}$6$")


def test_access_answers_unbound_for_an_administrators_removal(tmp_path, slapd):
    d = start_ldap_directoryd(tmp_path / "ldap", slapd.directoryd_config(tmp_path, device="dev1"))
    try:
        # carol is listed and removed: unbound, not associated, also after she reports a binding.
        assert ask(d.socket, {"op": "access", "user": "carol", "device_id": "dev1"})["access"] == \
            {"associated": False, "unbound": True, "disabled": False, "self_service": True}
        assert ask(d.socket, {"op": "report_binding", "binding": report("kc", "carol")})["ok"]
        assert ask(d.socket, {"op": "access", "user": "carol", "device_id": "dev1"})["access"]["unbound"] is True
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == ["alice"]
        assert ask(d.socket, {"op": "access", "user": "alice", "device_id": "dev1"})["access"] == \
            {"associated": True, "unbound": False, "disabled": False, "self_service": True}
        # An administrator removes alice too: unbound at the next request.
        slapd.modify(modify("fedloginUnboundUser", f"uid=alice,{USERS}"))
        assert ask(d.socket, {"op": "access", "user": "alice", "device_id": "dev1"})["access"]["unbound"] is True
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == []
        # A policy on the device's entry replaces the policy entry's keys it has.
        slapd.modify(modify("fedloginPolicy", '{"self_service": false}'))
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["self_service"] is False
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["password_sync"] is True
        assert ask(d.socket, {"op": "access", "user": "bob", "device_id": "dev1"})["access"]["self_service"] is False
        # A change of the policy entry counts at the next request as well
        # (a decoded policy is kept only for the very same texts).
        slapd.modify(modify("fedloginPolicy", '{"self_service": true, "password_sync": false}', "replace", POLICY_DN))
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["password_sync"] is False
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["self_service"] is False
        assert ask(d.socket, {"op": "policy"})["policy"]["self_service"] is True
        slapd.modify(modify("fedloginPolicy", json.dumps(POLICY), "replace", POLICY_DN))
        assert ask(d.socket, {"op": "policy", "device_id": "dev1"})["policy"]["password_sync"] is True
        # pwdAccountLockedTime (ppolicy) disables.
        slapd.modify(modify("pwdAccountLockedTime", "000001010000Z", "add", f"uid=bob,{USERS}"))
        assert ask(d.socket, {"op": "lookup", "user": "bob"})["user"]["disabled"] is True
    finally:
        d.stop()


def malformed_user(name: str, **lines: list[str]) -> str:
    """A user entry; `lines` gives attribute -> values (base64 when they hold a newline)."""
    attrs = {"objectClass": ["inetOrgPerson", "posixAccount"], "uid": [name], "cn": [name], "sn": [name],
             "mail": [f"{name}@example.test"], "uidNumber": ["80200"], "gidNumber": ["80200"],
             "homeDirectory": [f"/home/{name}"]}
    attrs.update(lines)
    out = [f"dn: cn={name},{USERS}"]
    for a, values in attrs.items():
        for v in values:
            out.append(f"{a}:: {base64.b64encode(v.encode()).decode()}" if "\n" in v else f"{a}: {v}")
    return "\n".join(out) + "\n"


# What fedlogind would ask (a username or an email) -> the entry.
MALFORMED = {
    "twouids": malformed_user("twouids", uidNumber=["80201", "80202"]),
    "nomail": malformed_user("nomail", mail=[]),
    "textuid": malformed_user("textuid", uidNumber=["eighty"]),
    "newlinename": malformed_user("newlinename", displayName=["Eve\nroot::0:0:root:/root:/bin/sh"]),
    "newlineuid@example.test": malformed_user("newlineuid", uid=["newlineuid\nroot"]),
}


def test_malformed_entries_are_logged_and_never_a_user_nor_a_crash(tmp_path):
    # Loaded without schema checks: two values of the SINGLE-VALUE uidNumber
    # and fedloginPolicy (dev3's), which slapd would refuse on an add.
    dev3 = (slapd_harness.device_entry("dev3", ["alice"])
            + 'fedloginPolicy: {"self_service": false}\nfedloginPolicy: {"self_service": true}\n')
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS_, devices=DEVICES_, policy=POLICY,
                                 unchecked_ldif="\n".join([*MALFORMED.values(), dev3]))
    server.start()
    d = start_ldap_directoryd(tmp_path / "ldap", server.directoryd_config(tmp_path, device="dev1"))
    d3 = start_ldap_directoryd(tmp_path / "ldap3", server.directoryd_config(tmp_path / "c3", device="dev3"))
    try:
        for name in MALFORMED:
            for request in [{"op": "lookup", "user": name}, {"op": "access", "user": name, "device_id": "dev1"}]:
                answer = ask(d.socket, request)
                assert answer["ok"] is False and "malformed" in answer["error"], (request, answer)
            # Still serving: the next request is answered.
            assert ask(d.socket, {"op": "lookup", "user": "alice"})["user"]["uid"] == 80101
        log = d.log_text()
        assert "has 2 values of uidNumber, where one is expected" in log
        assert "has no mail the bind DN can read" in log
        assert "uidNumber \\\"eighty\\\" is not a number" in log or 'uidNumber "eighty" is not a number' in log
        assert "its displayName holds a control character" in log
        assert "its uid holds a control character" in log
        assert "root::0:0" not in log  # the value is not written out
        assert d.alive
        # Two policies on the device's own entry: its policy is unknown, so is everything that needs it.
        for request in [{"op": "policy", "device_id": "dev3"}, {"op": "access", "user": "alice", "device_id": "dev3"},
                        {"op": "device_users", "device_id": "dev3"}]:
            answer = ask(d3.socket, request)
            assert answer["ok"] is False and "2 values of fedloginPolicy" in answer["error"], (request, answer)
        assert "2 values of fedloginPolicy, where one is expected" in d3.log_text()
        assert d3.alive and ask(d3.socket, {"op": "lookup", "user": "alice"})["ok"]
    finally:
        d3.stop()
        d.stop()
        server.stop()


@pytest.mark.namespace
def test_a_uid_outside_the_range_or_a_name_useradd_refuses_is_refused_by_fedlogind(tmp_path, strict, in_namespace):
    from world import World, passwd_entry, unique
    import pamclient as pc

    low, bad = unique("lowuid"), "9lives"
    for n in (low, bad):
        strict.add_user(n, email=f"{n}@example.test")
    w = World(tmp_path, strict, [{"username": low, "uid": 75000}, {"username": bad}], backend="ldap")
    try:
        for name in (low, bad):
            codes, a = w.login(name, [""])
            assert codes[0] != pc.PAM_SUCCESS, (name, a.transcript)
            assert not a.urls, (name, a.transcript)  # no sign-in started
            assert passwd_entry(name) is None
        log = w.fedlogind.log_text()
        assert "outside the range for directory uids (80000-99999)" in log, log[-3000:]
        assert '"9lives" is not a valid Linux username' in log
        assert w.directoryd.alive and w.fedlogind.alive
    finally:
        w.stop()


def test_the_shipped_acl_file_loads_with_ldapmodify_as_docs_ldap_md_says(tmp_path):
    # A slapd whose rules let every user read everything, then the file as shipped (suffix put in).
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS_, devices=DEVICES_, policy=POLICY,
                                 acl=["to * by * read"])
    server.start()
    try:
        assert "userPassword::" in user_password(server, device_dn("dev1"), DEVICE_PW % "dev1", "bob")
        text = (slapd_harness.PACKAGING / "fedlogin-acl.ldif").read_text()
        server.ldapmodify_config(text.replace(slapd_harness.SHIPPED_SUFFIX, slapd_harness.SUFFIX))
        assert "userPassword" not in user_password(server, device_dn("dev1"), DEVICE_PW % "dev1", "bob")
        assert "userPassword::" in user_password(server, device_dn("dev1"), DEVICE_PW % "dev1", "alice")
    finally:
        server.stop()
