"""fedlogin-directoryd's LDAP backend against a real slapd (harness/slapd.py).

The same users, groups, device associations and policy are served by the
file backend and by slapd: both answer lookup, access, policy and
device_users alike. An injected filter finds no user; a directory that
cannot be seen (an ACL hiding the users from the bind DN, slapd stopped)
is unavailable, never "no such user". slapd runs the shipped schema and
access rules, and fedlogin-directoryd binds as a device (test_ldap_acl.py
proves what those rules allow).
"""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

import sandbox
import slapd as slapd_harness

USERS = [
    {"username": "alice", "password": "alice-pw-1", "display_name": "Alice Example", "uid_number": 70101},
    {"username": "bob", "display_name": "Bob Example", "uid_number": 70102, "mail": "robert@example.test"},
    {"username": "carol", "display_name": "Carol Example", "uid_number": 70103, "disabled": True},
]
GROUPS = {"admins": ["alice"], "staff": ["alice", "bob"]}
DEVICES = {"dev1": ["alice"], "dev2": ["bob", "carol"]}
POLICY = {"self_service": False, "admin_groups": ["admins"], "password_sync": True}
# fedlogin-directoryd binds as dev1's entry (slapd.directoryd_config's default: the first device).
DEV1 = slapd_harness.device_dn("dev1")


ask = sandbox.ask_directory


def ldap_config(tmp: Path, server: slapd_harness.Slapd, uris=None, timeout=2, **overrides) -> Path:
    """Bound as dev1's entry (or `device=`)."""
    return server.directoryd_config(tmp, uris=uris, timeout=timeout, **overrides)


def start_ldap_directoryd(tmp: Path, config: Path) -> sandbox.Process:
    return sandbox.start_directoryd(tmp, Path("/nonexistent"), extra_args=["--config", config])


@pytest.fixture
def slapd(tmp_path):
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS, groups=GROUPS, devices=DEVICES, policy=POLICY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def both(tmp_path, slapd):
    """(file-backed directoryd, LDAP-backed directoryd) over the same data."""
    file_users = []
    for u in USERS:
        rec = {"username": u["username"], "email": u.get("mail", u["username"] + "@example.test"),
               "display_name": u["display_name"], "uid": u["uid_number"], "disabled": u.get("disabled", False),
               "groups": [g for g, ms in GROUPS.items() if u["username"] in ms]}
        file_users.append(rec)
    directory = sandbox.write_directory(tmp_path / "file" / "directory.json", file_users, policy=POLICY,
                                        devices=DEVICES)
    file_d = sandbox.start_directoryd(tmp_path / "file", directory)
    ldap_d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd))
    yield file_d, ldap_d
    ldap_d.stop()
    file_d.stop()


def without_password(answer: dict) -> dict:
    a = json.loads(json.dumps(answer))
    if a.get("user"):
        a["user"].pop("password_hash", None)
        a["user"].pop("password_authority", None)
    return a


def test_lookup_access_policy_and_device_users_answer_as_the_file_backend(tmp_path, both, slapd):
    file_d, ldap_d = both
    # A device sees its own entry only: dev2's questions go to a directoryd bound as dev2.
    ldap_d2 = start_ldap_directoryd(tmp_path / "ldap2", ldap_config(tmp_path / "c2", slapd, device="dev2"))
    try:
        for device, d in [("dev1", ldap_d), ("dev2", ldap_d2)]:
            requests = [{"op": "policy"}, {"op": "policy", "device_id": device}]
            for name in ["alice", "bob", "robert@example.test", "ALICE", "carol", "nobody-such"]:
                requests.append({"op": "lookup", "user": name})
                for dev in [device, "dev-unknown"]:
                    requests.append({"op": "access", "user": name, "device_id": dev})
            for dev in [device, "dev-unknown"]:
                requests.append({"op": "device_users", "device_id": dev})
            for r in requests:
                f, l = ask(file_d.socket, r), ask(d.socket, r)
                assert l["ok"], (r, l)
                assert without_password(l) == without_password(f), r
    finally:
        ldap_d2.stop()
    # The {CRYPT} hash of alice's userPassword (associated with dev1), given to root: the password is the directory's.
    alice = ask(ldap_d.socket, {"op": "lookup", "user": "alice"})["user"]
    assert alice["password_authority"] == "directory"
    assert alice["password_hash"].startswith("$6$")
    assert ask(ldap_d.socket, {"op": "lookup", "user": "bob"})["user"].get("password_hash") is None


@pytest.mark.parametrize("name", ["*", "*)(uid=*))(|(uid=*", "alice)(|(uid=*", "a*", "*)(objectClass=*", "\\2a",
                                  "alice\x00", "(uid=alice)"])
def test_an_injected_filter_finds_no_user(both, name):
    _, ldap_d = both
    answer = ask(ldap_d.socket, {"op": "lookup", "user": name})
    assert answer == {"ok": True}, answer
    assert ask(ldap_d.socket, {"op": "access", "user": name, "device_id": "dev1"}) == {"ok": True}
    assert ask(ldap_d.socket, {"op": "device_users", "device_id": name}) == {"ok": True, "users": []}


def test_users_hidden_by_an_acl_make_the_directory_unavailable_not_the_user_unknown(tmp_path, slapd):
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd))
    try:
        assert ask(d.socket, {"op": "lookup", "user": "alice"})["user"]["username"] == "alice"
        hide = f'to dn.subtree="{slapd_harness.USERS}" by dn.exact="{DEV1}" none by * read'
        slapd.set_acl([hide, *slapd_harness.DEFAULT_ACL])
        for r in [{"op": "lookup", "user": "alice"}, {"op": "lookup", "user": "nobody-such"},
                  {"op": "access", "user": "alice", "device_id": "dev1"}]:
            answer = ask(d.socket, r)
            assert answer["ok"] is False, (r, answer)
            assert "unavailable" in answer["error"], answer
        # Only the users' entries hidden, their base visible: still unavailable.
        slapd.set_acl([f'to dn.children="{slapd_harness.USERS}" by dn.exact="{DEV1}" none by * read',
                       *slapd_harness.DEFAULT_ACL])
        answer = ask(d.socket, {"op": "lookup", "user": "nobody-such"})
        assert answer["ok"] is False and "sees no user" in answer["error"], answer
        # The policy entry hidden: no "no such user" either.
        slapd.set_acl([f'to dn.base="{slapd_harness.POLICY_DN}" by dn.exact="{DEV1}" none by * read',
                       *slapd_harness.DEFAULT_ACL])
        answer = ask(d.socket, {"op": "lookup", "user": "nobody-such"})
        assert answer["ok"] is False and "policy_dn" in answer["error"], answer
        assert ask(d.socket, {"op": "lookup", "user": "alice"})["ok"]
        # The devices hidden: no device's users, rather than none.
        slapd.set_acl([f'to dn.children="{slapd_harness.DEVICES}" by dn.exact="{DEV1}" none by * read',
                       *slapd_harness.DEFAULT_ACL])
        for r in [{"op": "device_users", "device_id": "dev1"}, {"op": "access", "user": "alice", "device_id": "dev1"}]:
            answer = ask(d.socket, r)
            assert answer["ok"] is False and "sees no device" in answer["error"], (r, answer)
    finally:
        d.stop()


def test_a_stopped_slapd_makes_the_directory_unavailable_within_the_timeout(tmp_path, slapd):
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd, uris=[slapd.ldapi_uri, slapd.ldap_uri]))
    try:
        assert ask(d.socket, {"op": "lookup", "user": "alice"})["ok"]
        slapd.stop()
        started = time.monotonic()
        answer = ask(d.socket, {"op": "lookup", "user": "nobody-such"})
        assert answer["ok"] is False and "unavailable" in answer["error"], answer
        assert time.monotonic() - started < 2 * 2 + 1
    finally:
        d.stop()


def test_an_unanswering_server_is_unavailable_after_the_timeout(tmp_path, slapd):
    # A listening socket that never answers: the bind waits out `timeout` (1 s).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd, uris=[uri], timeout=1))
        try:
            started = time.monotonic()
            answer = ask(d.socket, {"op": "lookup", "user": "alice"})
            elapsed = time.monotonic() - started
            assert answer["ok"] is False and "unavailable" in answer["error"], answer
            assert elapsed < 3, elapsed
        finally:
            d.stop()


def test_the_second_uri_is_tried_when_the_first_fails(tmp_path, slapd):
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd, uris=["ldap://127.0.0.1:1", slapd.ldap_uri]))
    try:
        assert ask(d.socket, {"op": "lookup", "user": "alice"})["user"]["uid"] == 70101
    finally:
        d.stop()


def test_check_config_names_the_key_and_refuses_a_readable_password_file(tmp_path, slapd):
    import subprocess
    binary = sandbox.bin_dir() / "fedlogin-directoryd"
    config = ldap_config(tmp_path, slapd)
    ok = subprocess.run([binary, "serve", "--config", config, "--check-config"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    os.chmod(tmp_path / "ldap.secret", 0o640)
    r = subprocess.run([binary, "serve", "--config", config, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "ldap.bind_password_file" in r.stderr, r.stderr
    config.write_text(config.read_text().replace("timeout =", "timout ="))
    r = subprocess.run([binary, "serve", "--config", config, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "ldap.timout" in r.stderr, r.stderr


def test_a_list_attribute_the_server_cannot_match_never_reads_as_its_opposite(tmp_path, slapd):
    """`access` asks the server with the user's DN in the filter. A filter
    on an attribute the server does not know (or the bind DN may not
    search) is Undefined: it must read as "not in that list" - never
    unbound (every login would lock) - as device_users reads it. And when
    the entry DN attribute cannot be used, device_users asks each DN by a
    base search instead of dropping the users (a sync would lock them)."""
    config = ldap_config(tmp_path, slapd, attributes={"unbound_users": "fedloginNoSuchAttribute",
                                                      "entry_dn": "fedloginNoSuchDN"})
    d = start_ldap_directoryd(tmp_path / "ldap", config)
    try:
        access = ask(d.socket, {"op": "access", "user": "alice", "device_id": "dev1"})["access"]
        assert access["associated"] is True and access["unbound"] is False, access
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == ["alice"]
    finally:
        d.stop()


# TOML the parser aborts on instead of reporting it (as fedlogind's test_daemon.py).
ABORTING_TOML = '[idp.demo]\nscopes = ["openid",}\n'


def test_toml_the_parser_aborts_on_is_a_configuration_error_not_a_crash(tmp_path, slapd):
    """directoryd.conf and fedlogind's fedlogin.conf (read by --check-config)
    are parsed in a child first: malformed TOML is exit 78 with the file
    named, from serve, --check-config and check alike."""
    import subprocess
    binary = sandbox.bin_dir() / "fedlogin-directoryd"
    bad = tmp_path / "bad.conf"
    bad.write_text('backend = "ldap"\n[ldap]\nuris = ["ldapi:///",}\n')
    for argv in (["serve", "--config", bad, "--check-config"], ["serve", "--config", bad, "--socket", tmp_path / "s"]):
        r = subprocess.run([binary, *argv], capture_output=True, text=True, timeout=30)
        assert r.returncode == 78 and "malformed TOML" in r.stderr and str(bad) in r.stderr, (argv, r.returncode, r.stderr)
    r = subprocess.run([binary, "check", "--config", bad], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "FAIL" in r.stdout and "malformed TOML" in r.stdout, (r.stdout, r.stderr)
    fedlogin_conf = tmp_path / "fedlogin.conf"
    fedlogin_conf.write_text(ABORTING_TOML)
    r = subprocess.run([binary, "serve", "--config", ldap_config(tmp_path, slapd), "--check-config",
                        "--fedlogin-config", fedlogin_conf], capture_output=True, text=True, timeout=30)
    assert r.returncode == 78 and "malformed TOML" in r.stderr and str(fedlogin_conf) in r.stderr, r.stderr


def report(key: str, user: str, device: str = "dev1", action: str = "bind") -> dict:
    return {"key": key, "device_id": device, "username": user, "local_username": user, "uid": 70101,
            "email": f"{user}@example.test", "issuer": "https://idp.example.test", "subject": "sub-" + user,
            "password_mode": "passcode", "bound_at": "2026-12-03T10:00:00Z", "action": action}


def test_binding_reports_are_entries_under_the_device_and_a_repeated_key_is_a_duplicate(tmp_path, slapd):
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd))
    try:
        r = report("6f0e3a52-0b7c-4d2a-9a51-5c1f2e0d9b11", "bob")
        assert ask(d.socket, {"op": "report_binding", "binding": r}) == {"ok": True, "duplicate": False}
        assert ask(d.socket, {"op": "report_binding", "binding": r}) == {"ok": True, "duplicate": True}
        entry = slapd.search(f"cn={r['key']},cn=dev1,{slapd_harness.DEVICES}")
        assert "objectClass: fedloginBinding" in entry and "fedloginBindingReport: " in entry, entry
        assert ask(d.socket, {"op": "list_reports"})["reports"] == [r]
        # A key that is a DN's syntax is a value, not an RDN of its own.
        odd = report("k,cn=x+uid=y", "bob")
        assert ask(d.socket, {"op": "report_binding", "binding": odd}) == {"ok": True, "duplicate": False}
        # (slapd writes the escapes in hex)
        assert "dn: cn=k\\2Ccn\\3Dx\\2Buid\\3Dy,cn=dev1," in slapd.search(f"cn=dev1,{slapd_harness.DEVICES}", "(objectClass=*)", "dn")
        # A device with no entry: refused, nothing written.
        answer = ask(d.socket, {"op": "report_binding", "binding": report("k2", "bob", device="dev-unknown")})
        assert answer["ok"] is False and "no device entry" in answer["error"], answer
        # Without self-service (POLICY) a report associates nobody.
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == ["alice"]
    finally:
        d.stop()


def test_more_reports_than_slapds_size_limit_are_all_listed_page_by_page(tmp_path):
    """slapd answers a bind DN at most 500 entries per search by default.
    fedlogin-directoryd pages its searches for every entry (RFC 2696) and the
    shipped rules let a device's paged searches go on (size.prtotal): all 600
    reports of the device come back. Without that limit a search that hits
    the size limit is an error, never a shorter list."""
    ldif = "".join(
        f"dn: cn=k{i:04d},cn=dev1,{slapd_harness.DEVICES}\nobjectClass: fedloginBinding\ncn: k{i:04d}\n"
        f"fedloginBindingReport: {json.dumps(report(f'k{i:04d}', 'alice'), sort_keys=True)}\n\n" for i in range(600))
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS, groups=GROUPS, devices=DEVICES, policy=POLICY,
                                 unchecked_ldif=ldif)
    server.start()
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, server))
    try:
        reports = ask(d.socket, {"op": "list_reports"})["reports"]
        assert sorted(r["key"] for r in reports) == [f"k{i:04d}" for i in range(600)]
        # The shipped limit taken away: slapd's default of 500 holds for the
        # paged search too, and the answer is the error, not 500 reports.
        server.ldapmodify_config("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\ndelete: olcLimits\n")
        answer = ask(d.socket, {"op": "list_reports"})
        assert answer["ok"] is False and "unavailable" in answer["error"], answer
    finally:
        d.stop()
        server.stop()


def test_with_self_service_a_reported_binding_associates_until_an_unbind(tmp_path):
    server = slapd_harness.Slapd(tmp_path / "slapd", users=USERS, groups=GROUPS, devices=DEVICES,
                                 policy={**POLICY, "self_service": True})
    server.start()
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, server))
    try:
        assert ask(d.socket, {"op": "report_binding", "binding": report("k1", "bob")})["ok"]
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == ["alice", "bob"]
        assert ask(d.socket, {"op": "access", "user": "bob", "device_id": "dev1"})["access"]["associated"] is True
        unbind = report("k2", "bob", action="unbind")
        unbind["bound_at"] = "2026-12-03T11:00:00Z"
        assert ask(d.socket, {"op": "report_binding", "binding": unbind})["ok"]
        assert ask(d.socket, {"op": "device_users", "device_id": "dev1"})["users"] == ["alice"]
    finally:
        d.stop()
        server.stop()


MORE_USERS = USERS + [{"username": u, "display_name": u.title(), "uid_number": 70110 + i}
                      for i, u in enumerate(["dave", "erin", "frank", "gina"])]


def file_record(u: dict, groups: dict) -> dict:
    return {"username": u["username"], "email": u.get("mail", u["username"] + "@example.test"),
            "display_name": u["display_name"], "uid": u["uid_number"], "disabled": u.get("disabled", False),
            "groups": [g for g, ms in groups.items() if u["username"] in ms]}


@pytest.mark.parametrize("self_service", [True, False])
def test_access_and_device_users_answer_as_the_file_backend_for_every_kind_of_user(tmp_path, self_service):
    """Listed (one DN spelt in other case), listed and unbound, reported,
    reported and then unbound by the administrators, reported and then
    unbound by the device, a listed user's unbind report, a disabled
    reported user, a report for no such user; and in LDAP only, DNs that
    name no user (a removed user, an entry outside users_base): left out,
    as the file backend never had them."""
    policy = {**POLICY, "self_service": self_service}
    listed = ["alice", "bob", "gina"]
    unbound = ["bob", "erin"]
    server = slapd_harness.Slapd(tmp_path / "slapd", users=MORE_USERS, groups=GROUPS,
                                 devices={"dev1": ["alice", "ghost", "bob", "Gina"], "dev2": ["bob"]},
                                 unbound={"dev1": unbound}, policy=policy)
    server.start()
    server.modify(f"dn: {DEV1}\nchangetype: modify\nadd: fedloginAssociatedUser\n"
                  f"fedloginAssociatedUser: {slapd_harness.SERVICE_DN}\n")
    directory = sandbox.write_directory(tmp_path / "file" / "directory.json",
                                        [file_record(u, GROUPS) for u in MORE_USERS], policy=policy,
                                        devices={"dev1": listed, "dev2": ["bob"]}, unbound={"dev1": unbound})
    file_d = sandbox.start_directoryd(tmp_path / "file", directory)
    ldap_d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, server))
    try:
        reports = [report("k1", "dave"), report("k2", "erin"), report("k3", "frank"), report("k4", "alice"),
                   report("k5", "carol"), report("k6", "nobody-such"), report("k7", "frank", action="unbind"),
                   report("k8", "alice", action="unbind")]
        for i, r in enumerate(reports):
            r["bound_at"] = f"2026-12-03T10:{i:02d}:00Z"
            for d in (file_d, ldap_d):
                assert ask(d.socket, {"op": "report_binding", "binding": r})["ok"]
        requests = [{"op": "device_users", "device_id": dev} for dev in ["dev1", "dev-unknown"]]
        for name in ["alice", "ALICE", "bob", "carol", "dave", "erin", "frank", "gina", "ghost", "nobody-such"]:
            for dev in ["dev1", "dev-unknown"]:
                requests.append({"op": "access", "user": name, "device_id": dev})
        for r in requests:
            f, l = ask(file_d.socket, r), ask(ldap_d.socket, r)
            assert l["ok"], (r, l)
            assert l == f, r
        users = ask(ldap_d.socket, {"op": "device_users", "device_id": "dev1"})["users"]
        if self_service:
            assert users == ["alice", "gina", "carol", "dave", "nobody-such"]
        else:
            assert users == ["alice", "gina"]
        bob = ask(ldap_d.socket, {"op": "access", "user": "bob", "device_id": "dev1"})["access"]
        assert bob["associated"] is False and bob["unbound"] is True, bob
        erin = ask(ldap_d.socket, {"op": "access", "user": "erin", "device_id": "dev1"})["access"]
        assert erin["associated"] is False and erin["unbound"] is True, erin
        dave = ask(ldap_d.socket, {"op": "access", "user": "dave", "device_id": "dev1"})["access"]
        assert dave["associated"] is self_service and dave["unbound"] is False, dave
    finally:
        ldap_d.stop()
        file_d.stop()
        server.stop()


def test_sasl_external_over_ldapi_binds_as_the_services_own_user(tmp_path, slapd):
    config = ldap_config(tmp_path, slapd, uris=[slapd.ldapi_uri], bind_dn=None, bind_password_file=None)
    assert "bind_dn" not in config.read_text()
    d = start_ldap_directoryd(tmp_path / "ldap", config)
    try:
        answer = ask(d.socket, {"op": "lookup", "user": "alice"})
        assert answer.get("user"), answer
        alice = answer["user"]
        assert alice["uid"] == 70101
        # root's peercred DN is not the service account: no hash for it.
        assert alice.get("password_hash") is None
        assert ask(d.socket, {"op": "lookup", "user": "nobody-such"}) == {"ok": True}
    finally:
        d.stop()


def simple_bind(server: slapd_harness.Slapd, dn: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ldapwhoami", "-x", "-H", server.ldapi_uri, "-D", dn, "-w", password],
                          capture_output=True, text=True, timeout=10)


def test_change_password_binds_as_the_user_and_the_directory_stores_a_crypt_hash(tmp_path, slapd):
    alice_dn = f"uid=alice,{slapd_harness.USERS}"
    d = start_ldap_directoryd(tmp_path / "ldap", ldap_config(tmp_path, slapd))
    try:
        before = slapd.search(alice_dn, "(objectClass=*)", "userPassword")
        # A wrong current password: refused as by the file backend, nothing changed.
        answer = ask(d.socket, {"op": "change_password", "user": "alice", "current": "not-it", "new": "alice-pw-2"})
        assert answer == {"ok": False, "error": "the current password is wrong"}, answer
        answer = ask(d.socket, {"op": "change_password", "user": "alice", "current": "", "new": "alice-pw-2"})
        assert answer == {"ok": False, "error": "the current password is wrong"}, answer
        assert slapd.search(alice_dn, "(objectClass=*)", "userPassword") == before
        assert simple_bind(slapd, alice_dn, "alice-pw-1").returncode == 0
        assert ask(d.socket, {"op": "change_password", "user": "nobody-such", "current": "x", "new": "y"}) == \
            {"ok": False, "error": "no such user"}
        # The right one: changed, the old one no longer binds.
        answer = ask(d.socket, {"op": "change_password", "user": "alice", "current": "alice-pw-1", "new": "alice-pw-2"})
        assert answer == {"ok": True}, answer
        assert simple_bind(slapd, alice_dn, "alice-pw-2").returncode == 0
        assert simple_bind(slapd, alice_dn, "alice-pw-1").returncode != 0
        # slapd hashed it as {CRYPT}$6$, which lookup hands on for password sync.
        alice = ask(d.socket, {"op": "lookup", "user": "alice"})["user"]
        assert alice["password_hash"].startswith("$6$"), alice
        assert crypt_matches("alice-pw-2", alice["password_hash"])
        # Neither password is in directoryd's log.
        log = d.log_text()
        assert "password changed" in log
        assert "alice-pw-1" not in log and "alice-pw-2" not in log and "not-it" not in log
        # slapd stopped: unavailable, not a refusal.
        slapd.stop()
        answer = ask(d.socket, {"op": "change_password", "user": "alice", "current": "alice-pw-2", "new": "alice-pw-3"})
        assert answer["ok"] is False and "unavailable" in answer["error"], answer
    finally:
        d.stop()


def crypt_matches(password: str, hashed: str) -> bool:
    return slapd_harness.crypt.crypt(password, hashed) == hashed


def run_check(config: Path, *args: str) -> subprocess.CompletedProcess:
    binary = sandbox.bin_dir() / "fedlogin-directoryd"
    return subprocess.run([binary, "check", "--config", config, *args], capture_output=True, text=True, timeout=30)


def test_check_says_what_is_wrong_step_by_step(tmp_path, slapd):
    config = ldap_config(tmp_path, slapd, uris=[slapd.ldapi_uri, slapd.ldap_uri])
    r = run_check(config, "--user", "alice", "--device", "dev1")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), r.stdout
    assert any("user alice" in line and "uid=alice" in line for line in lines), r.stdout
    assert any("device dev1" in line for line in lines), r.stdout
    # Unknown user and device: said so, exit 1.
    r = run_check(config, "--user", "nobody-such", "--device", "dev-unknown")
    assert r.returncode == 1 and "FAIL user nobody-such: no such user" in r.stdout, r.stdout
    assert "FAIL device dev-unknown: no device entry" in r.stdout, r.stdout
    # The users hidden from the bind DN by an ACL.
    slapd.set_acl([f'to dn.children="{slapd_harness.USERS}" by dn.exact="{DEV1}" none by * read',
                   *slapd_harness.DEFAULT_ACL])
    r = run_check(config)
    assert r.returncode == 1 and "users are hidden from the bind DN" in r.stdout, r.stdout
    slapd.set_acl(slapd_harness.DEFAULT_ACL)
    # A wrong bind password.
    (tmp_path / "ldap.secret").write_text("not-the-password\n")
    r = run_check(config)
    assert r.returncode == 1 and "bind refused" in r.stdout, r.stdout
    (tmp_path / "ldap.secret").write_text(slapd_harness.DEVICE_PW % "dev1" + "\n")
    assert run_check(config).returncode == 0
    # slapd stopped.
    slapd.stop()
    r = run_check(config)
    assert r.returncode == 1 and "unreachable" in r.stdout, r.stdout


def test_check_on_the_file_backend_loads_the_file(tmp_path):
    directory = sandbox.write_directory(tmp_path / "directory.json", [], policy=POLICY, devices={})
    config = tmp_path / "directoryd.conf"
    config.write_text(sandbox.to_toml({"backend": "file", "file": {"directory": str(directory),
                                                                   "state_dir": str(tmp_path / "state")}}))
    r = run_check(config)
    assert r.returncode == 0 and "ok   directory file" in r.stdout, r.stdout + r.stderr
    directory.write_text("{not json")
    r = run_check(config)
    assert r.returncode == 1 and "FAIL" in r.stdout, r.stdout
