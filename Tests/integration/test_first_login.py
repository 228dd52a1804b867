"""First login end to end, through the real parts: libpam (pam_start_confdir)
with pam_fedlogin.so and pam_unix.so, fedlogind, fedlogin-directoryd,
shadow-utils, and an OIDC provider (oidc-provider-mock for interoperability,
the strict test provider where tokens must go wrong)."""
import crypt
import os
import subprocess
import threading
import time

import pytest

import pamclient as pc
import wire
import sandbox
from strict_idp import StrictIdP, browser_sign_in, mutations
from world import World, passwd_entry, shadow_hash, unique, useradd

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
DIRECTORY_HASH = crypt.crypt("Directory-Pass1", crypt.mksalt(crypt.METHOD_SHA512))



def mock_world(tmp_path, idp_mock, name, policy=None, backend="file", devices=None, **user):
    idp_mock.set_user(name, email=f"{name}@example.test", email_verified=True, name=name.capitalize())
    return World(tmp_path, idp_mock, [{"username": name, **user}], policy=policy, backend=backend, devices=devices)


def strict_world(tmp_path, strict, name, policy=None, sub=None, email=None, **user):
    strict.add_user(sub or name, email=email or f"{name}@example.test", name=name.capitalize())
    return World(tmp_path, strict, [{"username": name, **user}], policy=policy)


# The same first login with the directory in a file and in a real slapd (docs/ldap.md).
@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_first_login_with_a_local_passcode(tmp_path, idp_mock, in_namespace, backend):
    name = unique("alice")
    w = mock_world(tmp_path, idp_mock, name, backend=backend)
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], steps=("authenticate", "acct_mgmt", "open_session"))
        assert codes == [pc.PAM_SUCCESS] * 3, a.transcript
        info = a.messages(pc.PAM_TEXT_INFO)
        assert info[0].startswith("Sign in with Demo IdP")
        assert a.urls and a.urls[0].startswith(idp_mock.issuer + "/oauth2/authorize?")
        # The address is always followed by a prompt (SSH clients show info only with one).
        assert a.transcript[1] == (pc.PAM_PROMPT_ECHO_ON, "Press Enter once you have signed in: ")
        assert a.prompts[1:] == [f"Choose a passcode for {name} on this machine: ", "Repeat the passcode: "]
        # The welcome comes as the session opens: the last message, once.
        assert a.transcript[-1][0] == pc.PAM_TEXT_INFO
        assert a.transcript[-1][1].startswith("Welcome, ") and a.transcript[-1][1].endswith(f"Your account {name} is ready on this machine.")
        assert sum("is ready on this machine" in m for m in info) == 1

        entry = passwd_entry(name)
        assert entry is not None and 70000 <= int(entry[2]) <= 79999
        assert entry[3] == entry[2]  # private group with gid = uid
        assert entry[5] == f"/home/{name}" and os.path.isdir(entry[5])
        h = shadow_hash(name)
        assert h.startswith("$y$") and crypt.crypt(PASSCODE, h) == h

        reports = w.wait_reports(name)
        assert len(reports) == 1
        r = reports[0]
        assert (r["device_id"], r["local_username"], r["email"]) == ("demo-device-1", name, f"{name}@example.test")
        assert (r["issuer"], r["subject"], r["password_mode"]) == (idp_mock.issuer, name, "passcode")
        assert r["uid"] == int(entry[2])
    finally:
        w.stop()


def test_second_login_uses_the_local_passcode_even_offline(tmp_path, idp_mock, in_namespace):
    name = unique("alice")
    w = mock_world(tmp_path, idp_mock, name)
    try:
        codes, _ = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        # Online: pam_fedlogin says "not mine to decide", pam_unix checks the passcode.
        codes, a = w.login(name, [PASSCODE], browser=None)
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        assert a.prompts == ["Password: "] and not a.urls
        # Offline: fedlogind stopped, the same stack still works.
        w.fedlogind.stop()
        codes, a = w.login(name, [PASSCODE], browser=None)
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        codes, _ = w.login(name, ["wrong-passcode"], browser=None)
        assert codes == [pc.PAM_AUTH_ERR]
    finally:
        w.stop()


@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_password_sync_uses_the_directory_hash_as_is(tmp_path, idp_mock, in_namespace, backend):
    name = unique("carol")
    # Associated by an administrator: on LDAP the device may read the hash (docs/ldap.md).
    w = mock_world(tmp_path, idp_mock, name, policy={"password_sync": True}, backend=backend,
                   devices={"demo-device-1": [name]}, password_authority="directory", password_hash=DIRECTORY_HASH)
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert "Your directory password is your password on this machine." in a.messages(pc.PAM_TEXT_INFO)
        assert len(a.prompts) == 1  # no passcode asked
        assert shadow_hash(name) == DIRECTORY_HASH
        assert w.wait_reports(name)[0]["password_mode"] == "synced"
        codes, _ = w.login(name, ["Directory-Pass1"], browser=None)
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
    finally:
        w.stop()


def test_password_sync_for_a_self_service_user_on_ldap_is_a_passcode_and_says_why(tmp_path, idp_mock, in_namespace):
    # Not associated by an administrator: the shipped ACL hides the hash from the device.
    name = unique("sally")
    w = mock_world(tmp_path, idp_mock, name, policy={"password_sync": True, "self_service": True}, backend="ldap",
                   password_authority="directory", password_hash=DIRECTORY_HASH)
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        info = a.messages(pc.PAM_TEXT_INFO)
        assert any("Your directory password is not available on this device (an administrator has not assigned you to it)"
                   in m for m in info), info
        assert a.prompts[1:] == [f"Choose a passcode for {name} on this machine: ", "Repeat the passcode: "]
        h = shadow_hash(name)
        assert h != DIRECTORY_HASH and crypt.crypt(PASSCODE, h) == h
        assert w.wait_reports(name)[0]["password_mode"] == "passcode"
    finally:
        w.stop()


def test_password_sync_without_a_hash_falls_back_to_a_passcode(tmp_path, idp_mock, in_namespace):
    name = unique("dave")
    w = mock_world(tmp_path, idp_mock, name, policy={"password_sync": True}, password_authority="external")
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert any("not synced to devices" in m for m in a.messages(pc.PAM_TEXT_INFO))
        assert crypt.crypt(PASSCODE, shadow_hash(name)) == shadow_hash(name)
        assert w.wait_reports(name)[0]["password_mode"] == "passcode"
    finally:
        w.stop()


def test_password_sync_refuses_a_hash_scheme_libcrypt_cannot_verify(tmp_path, idp_mock, in_namespace):
    name = unique("erin")
    w = mock_world(tmp_path, idp_mock, name, policy={"password_sync": True}, password_authority="directory",
                   password_hash="$9$notascheme$abc")
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR]
        assert any("hash scheme is not supported" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert passwd_entry(name) is None
    finally:
        w.stop()


def test_a_passcode_that_fails_policy_is_explained_and_asked_again(tmp_path, idp_mock, in_namespace):
    name = unique("frank")
    w = mock_world(tmp_path, idp_mock, name)
    try:
        codes, a = w.login(name, ["", "alllowercase1", PASSCODE, "Mismatch-99", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        errors = a.messages(pc.PAM_ERROR_MSG)
        assert errors[0] == ("That passcode is too weak: mix at least 3 kinds of characters (it has 2); "
                             "add an uppercase letter or a symbol. 2 tries left.")
        assert errors[1] == "The passcodes do not match. 1 try left."
    finally:
        w.stop()


def test_three_failed_passcodes_end_the_login_and_create_nothing(tmp_path, idp_mock, in_namespace):
    name = unique("fred")
    w = mock_world(tmp_path, idp_mock, name)
    try:
        codes, a = w.login(name, ["", "short", "b", "c"])
        assert codes == [pc.PAM_AUTH_ERR]
        assert "use at least 8 characters (this one has 5)" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert "No passcode was set" in a.messages(pc.PAM_ERROR_MSG)[-1]
        assert passwd_entry(name) is None and w.reports(name) == []
    finally:
        w.stop()


def test_user_unknown_to_the_directory(tmp_path, idp_mock, in_namespace):
    w = World(tmp_path, idp_mock, ["somebody"])
    try:
        codes, a = w.login("nobody-here", ["whatever"])
        assert codes == [pc.PAM_USER_UNKNOWN]  # pam_unix has the last word, and knows nobody-here neither
        assert a.messages(pc.PAM_ERROR_MSG)[0].startswith("nobody-here is not known to the directory")
        assert not a.urls
    finally:
        w.stop()


def test_disabled_user(tmp_path, idp_mock, in_namespace):
    name = unique("gina")
    w = mock_world(tmp_path, idp_mock, name, disabled=True)
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR]
        assert "is disabled in the directory" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert not a.urls and passwd_entry(name) is None
    finally:
        w.stop()


def test_email_mismatch(tmp_path, strict, in_namespace):
    name = unique("hank")
    w = strict_world(tmp_path, strict, name, email="someone.else@example.test")
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR]
        assert "You signed in as someone.else@example.test" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert passwd_entry(name) is None and w.reports(name) == []
    finally:
        w.stop()


def test_a_callback_with_a_wrong_state_ends_nobody_s_login(tmp_path, strict, in_namespace):
    name = unique("ivy")
    w = strict_world(tmp_path, strict, name)
    seen = {}

    def browser(url):
        import httpx
        import urllib.parse
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        bogus = q["redirect_uri"] + "?code=stolen&state=not-the-state"
        seen["bogus"] = httpx.get(bogus, trust_env=False)
        return browser_sign_in(url, name)

    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=browser)
        assert seen["bogus"].status_code == 400
        assert "not (or no longer) valid" in seen["bogus"].text
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


def test_a_pasted_address_with_a_wrong_state_is_refused(tmp_path, strict, in_namespace):
    name = unique("jack")
    w = strict_world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, ["http://127.0.0.1:1/callback?code=x&state=forged"], browser=lambda url: None)
        assert codes == [pc.PAM_AUTH_ERR]
        assert "belongs to another sign-in" in a.messages(pc.PAM_ERROR_MSG)[0]
    finally:
        w.stop()


@pytest.mark.parametrize("mutation", [
    "bad_signature", "alg_none", "hs256_public_key", "wrong_iss", "wrong_aud", "aud_list_without_azp",
    "wrong_azp", "expired", "iat_future", "nonce_missing", "nonce_different", "unknown_kid", "email_unverified",
])
def test_an_id_token_that_fails_verification_is_refused(tmp_path, strict, mutation, in_namespace):
    name = unique("kate")
    w = strict_world(tmp_path, strict, name)
    strict.next_token_mutation = getattr(mutations, mutation)
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert "could not be verified" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert passwd_entry(name) is None and w.reports(name) == []
        assert "ID token rejected" in w.fedlogind.log_text()
    finally:
        w.stop()


def test_the_strict_provider_signs_in_with_pkce_and_client_secret_post(tmp_path, in_namespace):
    strict = StrictIdP(client_auth="client_secret_post", exact_port=False)
    name = unique("liam")
    w = strict_world(tmp_path, strict, name, sub=f"00u-{name}-opaque")
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], sub=f"00u-{name}-opaque")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert strict.token_requests[-1].get("client_secret") == "fedlogin-test-secret"
        assert w.wait_reports(name)[0]["subject"] == f"00u-{name}-opaque"
    finally:
        w.stop()
        strict.stop()


def test_an_existing_local_account_is_never_taken_over(tmp_path, idp_mock, in_namespace):
    name = unique("mia")
    useradd(name)
    before = (passwd_entry(name), shadow_hash(name))
    w = mock_world(tmp_path, idp_mock, name)
    try:
        for user in (name, "root"):
            codes, a = w.login(user, ["not-the-password"])
            assert codes == [pc.PAM_AUTH_ERR]
            assert not a.urls and a.prompts == ["Password: "]  # pam_unix, not a sign-in
        assert (passwd_entry(name), shadow_hash(name)) == before
        assert w.reports() == []
    finally:
        w.stop()


def test_the_idp_refusing_the_sign_in(tmp_path, strict, in_namespace):
    name = unique("nina")
    w = strict_world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, [""], browser=lambda url: browser_sign_in(url, name, deny=True))
        assert codes == [pc.PAM_AUTH_ERR]
        assert "cancelled or denied" in a.messages(pc.PAM_ERROR_MSG)[0]
    finally:
        w.stop()


def test_wrong_client_secret_is_explained_in_the_log(tmp_path, strict, in_namespace):
    name = unique("otto")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, {"issuer": strict.issuer, "client_id": "fedlogin", "client_secret": "wrong-secret"},
              [{"username": name}])
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR]
        assert "Ask your administrator to check fedlogin's IdP settings" in a.messages(pc.PAM_ERROR_MSG)[0]
        log = w.fedlogind.log_text()
        assert "check idp.demo.client_id and the secret in client_secret_file" in log
        assert "wrong-secret" not in log
    finally:
        w.stop()


def test_a_non_root_peer_cannot_authenticate_anyone(tmp_path, idp_mock, in_namespace):
    name = unique("pete")
    idp_mock.set_user(name, email=f"{name}@example.test")
    # A socket path an unprivileged process can reach.
    w = World(tmp_path, idp_mock, [name], config={"daemon": {"socket": f"/run/fedlogin-test/{name}.sock"}})
    try:
        body = wire.as_nobody(w.socket, wire.frame(0x01, "root", "login", "", "", ""))
        assert body[:3] == bytes([1, 0x86, 5])  # RESULT PERM_DENIED
        assert "non-root peer refused" in w.fedlogind.log_text()
    finally:
        w.stop()


def test_fedlogind_down_lets_local_users_in_and_nobody_else(tmp_path, idp_mock, in_namespace):
    name = unique("quinn")
    w = mock_world(tmp_path, idp_mock, name)
    w.fedlogind.stop()
    local = unique("local")
    useradd(local)
    subprocess.run(["chpasswd"], input=f"{local}:Local-Pass1\n", text=True, check=True)
    try:
        codes, a = w.login(name, ["anything"])
        assert codes == [pc.PAM_USER_UNKNOWN] and not a.urls
        codes, _ = w.login(local, ["Local-Pass1"], browser=None)
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
    finally:
        w.stop()


def test_directory_down_during_the_login_delays_the_report_not_the_login(tmp_path, idp_mock, in_namespace):
    name = unique("rosa")
    w = mock_world(tmp_path, idp_mock, name)
    try:
        def browser(url):
            w.directoryd.stop()  # the directory goes away after the lookup
            return browser_sign_in(url, name)

        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=browser)
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        time.sleep(1.5)
        w.restart_fedlogind()  # delivery resumes after a restart too
        w.directoryd = sandbox.start_directoryd(w.tmp, w.directory_file, state_dir=w.tmp / "directoryd-state")
        reports = w.wait_reports(name)
        assert len(reports) == 1
        time.sleep(2.5)
        assert len(w.reports(name)) == 1  # exactly once
    finally:
        w.stop()


def test_two_first_logins_of_one_user_at_once_make_one_account(tmp_path, idp_mock, in_namespace):
    name = unique("sam")
    w = mock_world(tmp_path, idp_mock, name)
    go = threading.Event()
    results = {}

    def first(url):
        go.set()
        time.sleep(1.0)
        return browser_sign_in(url, name)

    def second():
        go.wait(20)
        results["second"] = w.login(name, ["", PASSCODE, PASSCODE])

    try:
        t = threading.Thread(target=second)
        t.start()
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=first)
        t.join(30)
        codes2, a2 = results["second"]
        # Both sign in; the first verified one makes the account, the other is told it exists.
        assert sorted([codes, codes2]) == [[pc.PAM_SUCCESS, pc.PAM_SUCCESS], [pc.PAM_AUTH_ERR]], (a.transcript, a2.transcript)
        loser = a if codes == [pc.PAM_AUTH_ERR] else a2
        assert any(f"The account {name} now exists" in m or "Another sign-in is setting up" in m
                   for m in loser.messages(pc.PAM_ERROR_MSG)), loser.transcript
        assert len(w.wait_reports(name)) == 1
    finally:
        w.stop()


def test_no_secret_reaches_a_log_or_the_state_db(tmp_path, strict, in_namespace):
    name = unique("tina")
    w = strict_world(tmp_path, strict, name)
    try:
        codes, _ = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        w.wait_reports(name)
        w.stop()
        secrets = [PASSCODE, "fedlogin-test-secret", *strict.issued_id_tokens]
        secrets += [t.split(".")[2] for t in strict.issued_id_tokens]  # signatures alone
        haystack = w.logs().encode()
        for f in (tmp_path / "state").iterdir():
            haystack += f.read_bytes()
        for f in (tmp_path / "directoryd-state").iterdir():
            haystack += f.read_bytes()
        for s in secrets:
            assert s.encode() not in haystack
    finally:
        w.stop()


def test_discovery_endpoints_that_are_not_https_are_refused(tmp_path, in_namespace):
    class Downgrading(StrictIdP):
        def discovery(self):
            d = super().discovery()
            d["token_endpoint"] = "http://idp.example.test/token"
            return d

    strict = Downgrading()
    name = unique("xena")
    w = strict_world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, ["x"])
        assert codes == [pc.PAM_USER_UNKNOWN] and not a.urls
        assert "The sign-in service cannot be used right now" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert 'token_endpoint "http://idp.example.test/token", which is not https' in w.fedlogind.log_text()
        assert strict.counts["token"] == 0
    finally:
        w.stop()
        strict.stop()


def test_a_directory_not_run_by_root_is_not_trusted(tmp_path, idp_mock, in_namespace):
    name = unique("yves")
    idp_mock.set_user(name, email=f"{name}@example.test")
    sock = f"/run/fedlogin-test/impostor/{name}-dir.sock"
    w = World(tmp_path, idp_mock, [name], config={"daemon": {"directory_socket": sock}})
    for d in ("/run/fedlogin-test/impostor", "/run/fedlogin-test/impostor-state"):
        os.makedirs(d, exist_ok=True)
        os.chown(d, 65534, 65534)
    shared = "/run/fedlogin-test/impostor-directory.json"
    subprocess.run(["install", "-m", "644", str(w.directory_file), shared], check=True)
    impostor = sandbox.Process("impostor-directoryd", [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        str(sandbox.bin_dir() / "fedlogin-directoryd"), "serve", "--socket", sock,
        "--directory", shared, "--state-dir", "/run/fedlogin-test/impostor-state"], tmp_path)
    try:
        impostor.wait_for_socket(sock)
        codes, a = w.login(name, ["x"])
        assert codes == [pc.PAM_USER_UNKNOWN] and not a.urls
        assert "The directory cannot be reached" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert "is served by uid 65534, not root" in w.fedlogind.log_text()
    finally:
        impostor.stop()
        w.stop()


def test_directory_usernames_match_case_insensitively(tmp_path, idp_mock, in_namespace):
    name = unique("zoe")
    idp_mock.set_user(name, email=f"{name}@example.test")
    w = World(tmp_path, idp_mock, [{"username": name.capitalize(), "email": f"{name}@example.test"}])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert passwd_entry(name) is not None
    finally:
        w.stop()


def test_password_sync_accepts_a_legacy_scheme_libcrypt_still_verifies(tmp_path, idp_mock, in_namespace):
    name = unique("abe")
    legacy = crypt.crypt("Directory-Pass1", crypt.mksalt(crypt.METHOD_SHA256))
    assert legacy.startswith("$5$")
    w = mock_world(tmp_path, idp_mock, name, policy={"password_sync": True}, password_authority="directory",
                   password_hash=legacy)
    try:
        codes, _ = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        assert shadow_hash(name) == legacy
    finally:
        w.stop()


def test_a_weak_directory_policy_is_raised_to_the_floor(tmp_path, idp_mock, in_namespace):
    name = unique("bea")
    w = mock_world(tmp_path, idp_mock, name, policy={"passcode": {"min_length": 0, "min_classes": 0}})
    try:
        codes, a = w.login(name, ["", "", "abc", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        errors = a.messages(pc.PAM_ERROR_MSG)
        assert "use at least 8 characters (this one has 0)" in errors[0]
        assert "use at least 8 characters (this one has 3)" in errors[1]
    finally:
        w.stop()


def test_an_admin_is_in_sudo_right_after_the_first_login(tmp_path, strict, in_namespace):
    import grp
    name = unique("adm")
    for g in ("sudo", "developers"):
        subprocess.run(["groupadd", "-f", g], check=True)
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name, "groups": ["it-admins", "eng"]}], policy={"admin_groups": ["it-admins"]},
              config={"accounts": {"group_map": {"eng": "developers"}}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        # No sync ran (sync_interval = 0): the account was made with its groups.
        assert name in grp.getgrnam("sudo").gr_mem and name in grp.getgrnam("developers").gr_mem
        groups = subprocess.run(["id", "-nG", name], capture_output=True, text=True, check=True).stdout.split()
        assert "sudo" in groups and "developers" in groups
        row = next(u for u in w.ctl_json("users")["users"] if u["username"] == name)
        assert row["groups"] == ["developers", "sudo"]
        # Recorded as managed exactly as a sync would: the sync changes nothing.
        assert w.ctl_json("sync")["group_changes"] == []
    finally:
        w.stop()
