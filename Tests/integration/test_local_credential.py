"""A managed account's local credential through the real PAM stack
(pam/fedlogin.pam): lockout after failed attempts, unlock and bypass; the
passcode reset offered at the login prompt and by `fedloginctl passcode
reset`; `passwd` (pam_chauthtok) by password authority."""
import base64
import crypt
import json
import queue
import subprocess
import threading
import time

import pytest

import pamclient as pc
import sandbox
from strict_idp import browser_sign_in
from world import World, passwd_entry, shadow_hash, unique, useradd

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
NEW = "Battery-Staple7"
DIRECTORY_PASS = "Directory-Pass1"
DEVICE = "demo-device-1"
OFFER = 'Wrong passcode. Forgot it? Type "reset" to sign in with your identity provider and choose a new one, or press Enter: '



def make_world(tmp_path, strict, name, policy=None, socket=False, backend="file", devices=None, **user):
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    config = {"daemon": {"socket": f"/run/fedlogin-test/{name}.sock"}} if socket else None
    return World(tmp_path, strict, [{"username": name, **user}], policy=policy, config=config, backend=backend,
                 devices=devices)


def first_login(w, name):
    codes, a = w.login(name, ["", PASSCODE, PASSCODE])
    assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript


def row(w, name):
    return next(u for u in w.ctl_json("users")["users"] if u["username"] == name)


def test_lockout_after_failed_attempts_and_unlock_by_root(tmp_path, strict, in_namespace):
    name = unique("lock")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 3, "duration": 600}}, socket=True)
    try:
        first_login(w, name)
        for i in range(3):
            codes, a = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
            assert codes == [pc.PAM_AUTH_ERR], a.transcript
            assert a.prompts[1] == OFFER
        # The third failure says so; the next login is refused before the password.
        assert any("locked after too many failed attempts until" in m for m in a.messages(pc.PAM_ERROR_MSG))
        codes, a = w.login(name, [PASSCODE], steps=("authenticate",))
        assert codes == [pc.PAM_PERM_DENIED] and a.prompts == []
        assert "locked after failed attempts until" in row(w, name)["locked"]
        # The account stack refuses too (a login that skips auth, e.g. an SSH key).
        codes, _ = w.login(name, [], steps=("acct_mgmt",))
        assert codes == [pc.PAM_PERM_DENIED]

        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              str(sandbox.bin_dir() / "fedloginctl"), "unlock", name, "--socket", str(w.socket)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "only root" in out.stderr
        assert w.ctl_json("unlock", name)["message"] == f"{name} unlocked"
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert row(w, name)["failed_attempts"] == 0  # a good login clears the count
        assert "locked after 3 failed attempts" in w.logs()
    finally:
        w.stop()


def test_a_user_with_the_bypass_is_never_locked_out(tmp_path, strict, in_namespace):
    name = unique("bypass")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 2, "duration": 600}},
                   lockout_bypass=True)
    try:
        first_login(w, name)
        for _ in range(4):
            codes, _ = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
            assert codes == [pc.PAM_AUTH_ERR]
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert row(w, name)["locked"] == ""
    finally:
        w.stop()


def test_forgotten_passcode_is_reset_at_the_login_prompt(tmp_path, strict, in_namespace):
    name = unique("reset")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 5, "duration": 600}})
    try:
        first_login(w, name)
        codes, a = w.login(name, ["forgotten", "reset", "", NEW, NEW], steps=("authenticate", "acct_mgmt", "open_session"))
        assert codes == [pc.PAM_SUCCESS] * 3, a.transcript
        assert a.prompts[1] == OFFER
        assert any(m.startswith("Sign in with Demo IdP") for m in a.messages(pc.PAM_TEXT_INFO))
        # Shown as the session opens (the last message), not after the last prompt.
        assert a.transcript[-1] == (pc.PAM_TEXT_INFO, f"Your new passcode for {name} is set.")
        assert crypt.crypt(NEW, shadow_hash(name)) == shadow_hash(name)
        codes, _ = w.login(name, [PASSCODE, ""], steps=("authenticate",))
        assert codes == [pc.PAM_AUTH_ERR]
        codes, a = w.login(name, [NEW])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert NEW not in w.logs() and PASSCODE not in w.logs()
    finally:
        w.stop()


def test_a_reset_needs_the_accounts_own_identity(tmp_path, strict, in_namespace):
    name, other = unique("owner"), unique("intruder")
    strict.add_user(other, email=f"{other}@example.test")
    w = make_world(tmp_path, strict, name)
    try:
        first_login(w, name)
        before = shadow_hash(name)
        codes, a = w.login(name, ["guess", "reset", "", NEW, NEW], browser=w.browser(other))
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert any("who is not the owner of" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert shadow_hash(name) == before
    finally:
        w.stop()


def passwd(w, name, answers, service="passwd"):
    a = sandbox.sign_in_answerer(None, answers)
    codes, _ = pc.authenticate(w.confdir, "other", name, a, steps=("chauthtok",))
    return codes, a


def test_passwd_for_a_local_passcode_follows_the_policy(tmp_path, strict, in_namespace):
    name = unique("pwlocal")
    w = make_world(tmp_path, strict, name)
    try:
        first_login(w, name)
        codes, a = passwd(w, name, ["short", "short", NEW, NEW])
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert any("too weak" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert "Passcode changed." in a.messages(pc.PAM_TEXT_INFO)
        assert crypt.crypt(NEW, shadow_hash(name)) == shadow_hash(name)
    finally:
        w.stop()


_AS_USER = (
    "import json,sys; sys.path.insert(0, sys.argv[1]); import pamclient as pc, sandbox\n"
    "a = sandbox.sign_in_answerer(None, json.loads(sys.argv[4]))\n"
    "codes, _ = pc.authenticate(sys.argv[2], 'other', sys.argv[3], a, steps=('chauthtok',))\n"
    "print(json.dumps([codes, a.prompts, a.messages(pc.PAM_ERROR_MSG)]))\n")


def passwd_as_user(w, name, answers):
    """pam_chauthtok as passwd(1) runs it for a user: effective uid 0, real uid the user's."""
    uid = passwd_entry(name)[2]
    harness = str(sandbox.repo_root() / "Tests" / "integration" / "harness")
    out = subprocess.run(["setpriv", f"--ruid={uid}", "--", sandbox.sys.executable, "-c", _AS_USER, harness,
                          str(w.confdir), name, json.dumps(answers)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_passwd_by_the_user_asks_the_current_passcode(tmp_path, strict, in_namespace):
    name = unique("pwself")
    w = make_world(tmp_path, strict, name)
    try:
        first_login(w, name)
        codes, prompts, errors = passwd_as_user(w, name, ["not-the-passcode"])
        assert codes == [pc.PAM_AUTHTOK_ERR] and prompts == ["Current passcode: "]
        assert "That is not the current passcode." in errors
        codes, prompts, _ = passwd_as_user(w, name, [PASSCODE, NEW, NEW])
        assert codes == [pc.PAM_SUCCESS], prompts
        assert prompts == ["Current passcode: ", "New passcode: ", "Repeat the new passcode: "]  # asked once
        assert crypt.crypt(NEW, shadow_hash(name)) == shadow_hash(name)
    finally:
        w.stop()


def test_passwd_of_an_account_fedlogin_does_not_manage_is_pam_unixs(tmp_path, strict, in_namespace):
    """fedlogin stays out of the way, and pam_unix still asks a user for the current password."""
    local = unique("pwplain")
    useradd(local)
    subprocess.run(["chpasswd"], input=f"{local}:Old-Local-Pass1\n", text=True, check=True)
    w = make_world(tmp_path, strict, unique("pwdummy"))
    try:
        before = shadow_hash(local)
        # pam_unix's preliminary pass runs and checks the current password.
        codes, prompts, _ = passwd_as_user(w, local, ["Wrong-Old-Pass1"])
        assert codes != [pc.PAM_SUCCESS] and prompts == ["Current password: "]
        assert shadow_hash(local) == before
        # root changes it without the current one, through pam_unix.
        codes, a = passwd(w, local, ["Brand-New-Pass7", "Brand-New-Pass7"])
        assert codes == [pc.PAM_SUCCESS] and a.prompts == ["New password: ", "Retype new password: "]
        assert crypt.crypt("Brand-New-Pass7", shadow_hash(local)) == shadow_hash(local)
    finally:
        w.stop()


def synced_world(tmp_path, strict, name, authority, **user):
    h = crypt.crypt(DIRECTORY_PASS, crypt.mksalt(crypt.METHOD_SHA512))
    return make_world(tmp_path, strict, name, policy={"password_sync": True}, password_hash=h,
                      password_authority=authority, **user)


def ldap_password_policy(slapd, min_length):
    """The LDAP directory's own password policy (ppolicy's default policy):
    a Password Modify with a new password shorter than `min_length` is
    refused. The file backend's counterpart is the policy's passcode rules."""
    import slapd as slapd_harness

    slapd.modify(f"dn: cn=password-policy,{slapd_harness.SUFFIX}\nchangetype: add\nobjectClass: organizationalRole\n"
                 f"objectClass: pwdPolicy\ncn: password-policy\npwdAttribute: userPassword\n"
                 f"pwdMinLength: {min_length}\npwdCheckQuality: 1\n")
    slapd.ldapmodify_config("dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
                            f"replace: olcPPolicyDefault\nolcPPolicyDefault: cn=password-policy,{slapd_harness.SUFFIX}\n")


def test_passwd_goes_to_the_directory_when_it_holds_the_password(tmp_path, strict, in_namespace):
    name = unique("pwdir")
    w = synced_world(tmp_path, strict, name, "directory")
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        # Root too gives the current password: the directory checks it.
        codes, a = passwd(w, name, [DIRECTORY_PASS, NEW, NEW])
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert a.prompts == ["Current password: ", "New password: ", "Repeat the new password: "]
        assert "Password changed in the directory and on this machine." in a.messages(pc.PAM_TEXT_INFO)
        local = shadow_hash(name)
        assert crypt.crypt(NEW, local) == local
        # The directory hashed the new password itself (what another device would sync).
        state = json.loads((tmp_path / "directoryd-state" / "passwords.json").read_text())
        assert crypt.crypt(NEW, state[name]) == state[name]
        assert NEW not in w.logs() and DIRECTORY_PASS not in w.logs()
    finally:
        w.stop()


def directory_hash(w, name):
    """The crypt(3) hash the directory holds for `name` after a change."""
    if w.slapd is None:
        return json.loads((w.tmp / "directoryd-state" / "passwords.json").read_text())[name]
    import slapd as slapd_harness

    ldif = w.slapd.search(f"uid={name},{slapd_harness.USERS}", "(objectClass=*)", "userPassword")
    value = base64.b64decode(slapd_harness.ldif_values(ldif, "userPassword:")[0]).decode()
    assert value.startswith("{CRYPT}$6$"), value  # Password Modify under olcPasswordHash {CRYPT}
    return value.removeprefix("{CRYPT}")


# The same change with the directory in a file and in a real slapd (docs/ldap.md).
@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_passwd_for_a_directory_password_is_checked_by_the_directory(tmp_path, strict, in_namespace, backend):
    """The current password is verified by the directory, not against the
    local copy (which may be stale), and root on the device cannot skip it.
    On LDAP: a Password Modify bound as the user, under slapd's own policy."""
    name = unique("pwstale")
    # Associated by an administrator: on LDAP the device may read the hash (docs/ldap.md).
    devices = {DEVICE: [name]}
    w = synced_world(tmp_path, strict, name, "directory", backend=backend, devices=devices)
    try:
        if backend == "ldap":
            ldap_password_policy(w.slapd, min_length=10)
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        before = shadow_hash(name)
        # Root without the current password: refused by the directory.
        codes, a = passwd(w, name, ["", NEW, NEW])
        assert codes == [pc.PAM_AUTHTOK_ERR], a.transcript
        assert any("the current password is wrong" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert shadow_hash(name) == before
        # The password changed in the directory since it was synced here: the
        # old local copy no longer proves anything, for the user either.
        changed = "Changed-Elsewhere3"
        w.rewrite_directory([{"username": name, "password_authority": "directory",
                              "password_hash": crypt.crypt(changed, crypt.mksalt(crypt.METHOD_SHA512))}],
                            policy={"password_sync": True}, devices=devices)
        codes, prompts, errors = passwd_as_user(w, name, [DIRECTORY_PASS, NEW, NEW])
        assert codes == [pc.PAM_AUTHTOK_ERR], (prompts, errors)
        assert any("the current password is wrong" in m for m in errors)
        assert shadow_hash(name) == before
        # Too weak for the directory's policy: refused by the directory, nothing changes.
        codes, prompts, errors = passwd_as_user(w, name, [changed, "weakpass", "weakpass"])
        weak = "too weak" if backend == "file" else "Password fails quality checking policy"
        assert codes == [pc.PAM_AUTHTOK_ERR] and any(weak in m for m in errors), (prompts, errors)
        assert shadow_hash(name) == before
        codes, prompts, errors = passwd_as_user(w, name, [changed, NEW, NEW])
        assert codes == [pc.PAM_SUCCESS], (prompts, errors)
        assert crypt.crypt(NEW, shadow_hash(name)) == shadow_hash(name)
        # The directory hashed and holds the new password (what another device would sync).
        stored = directory_hash(w, name)
        assert crypt.crypt(NEW, stored) == stored
        assert changed not in w.logs() and NEW not in w.logs()
    finally:
        w.stop()


def test_a_directory_that_refuses_the_change_leaves_the_local_password(tmp_path, strict, in_namespace):
    name = unique("pwref")
    w = synced_world(tmp_path, strict, name, "directory", password_locked=True)
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        before = shadow_hash(name)
        codes, a = passwd(w, name, [DIRECTORY_PASS, NEW, NEW])
        assert codes == [pc.PAM_AUTHTOK_ERR], a.transcript
        assert any(m.startswith("The directory did not accept the new password") and m.endswith("Your password is unchanged.")
                   for m in a.messages(pc.PAM_ERROR_MSG))
        assert shadow_hash(name) == before
        # Directory down: unchanged too.
        w.directoryd.stop()
        codes, a = passwd(w, name, [DIRECTORY_PASS, NEW, NEW])
        assert codes == [pc.PAM_AUTHTOK_ERR] and shadow_hash(name) == before
    finally:
        w.stop()


def test_passwd_is_refused_when_the_idp_manages_the_password(tmp_path, strict, in_namespace):
    name = unique("pwext")
    w = synced_world(tmp_path, strict, name, "external")
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        before = shadow_hash(name)
        codes, a = passwd(w, name, [NEW, NEW])
        assert codes == [pc.PAM_AUTHTOK_ERR]
        assert a.prompts == []
        assert any(f"The password of {name} is managed by Demo IdP" in m for m in a.messages(pc.PAM_ERROR_MSG))
        assert shadow_hash(name) == before
    finally:
        w.stop()


def test_fedloginctl_passcode_reset_for_the_calling_user_only(tmp_path, strict, in_namespace):
    name, other = unique("ctlreset"), unique("ctlother")
    strict.add_user(other, email=f"{other}@example.test")
    w = make_world(tmp_path, strict, name, socket=True)
    try:
        first_login(w, name)
        uid, gid = passwd_entry(name)[2:4]

        def reset(sub, answers):
            p = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                                  str(sandbox.bin_dir() / "fedloginctl"), "passcode", "reset", "--socket", str(w.socket)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lines = []
            got = queue.Queue()
            threading.Thread(target=lambda: [got.put(l) for l in iter(p.stdout.readline, "")], daemon=True).start()
            end = time.time() + 30
            while time.time() < end:
                try:
                    line = got.get(timeout=1)
                except queue.Empty:
                    continue
                lines.append(line)
                if line.strip().startswith("http"):
                    browser_sign_in(line.strip(), sub)
                    break
            else:
                p.kill()
                raise AssertionError(f"no sign-in address from fedloginctl: {lines}")
            p.stdin.write("\n" + "".join(a + "\n" for a in answers))
            p.stdin.close()
            p.wait(timeout=60)
            while not got.empty():
                lines.append(got.get())
            out, err = "", p.stderr.read()
            time.sleep(0.2)
            while not got.empty():
                lines.append(got.get())
            return p.returncode, "".join(lines) + out, err

        before = shadow_hash(name)
        rc, out, err = reset(other, [NEW, NEW])
        assert rc != 0 and "who is not the owner of" in err
        assert shadow_hash(name) == before
        rc, out, err = reset(name, [NEW, NEW])
        assert rc == 0, (out, err)
        assert f"Your new passcode for {name} is set." in out
        assert crypt.crypt(NEW, shadow_hash(name)) == shadow_hash(name)
        # Someone fedlogin does not manage has no passcode to reset.
        local = unique("plainlocal")
        useradd(local)
        out = subprocess.run(["setpriv", f"--reuid={passwd_entry(local)[2]}", "--regid=100", "--clear-groups",
                              str(sandbox.bin_dir() / "fedloginctl"), "passcode", "reset", "--socket", str(w.socket)],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert out.returncode != 0 and "not one fedlogin manages" in out.stderr
    finally:
        w.stop()


def shadow_expiry(name):
    for line in open("/etc/shadow").read().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f[7]
    return None


def test_a_lockout_holds_in_shadow_with_fedlogind_stopped(tmp_path, strict, in_namespace):
    """The failed-login lockout is mirrored into /etc/shadow's expiry, so
    pam_unix refuses the account (any login path) while fedlogind is down;
    unlocking restores the administrator's own expiry."""
    name = unique("lockshadow")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 2, "duration": 600}}, socket=True)
    try:
        first_login(w, name)
        subprocess.run(["usermod", "--expiredate", "2100-01-01", name], check=True)
        admin_expiry = shadow_expiry(name)
        for _ in range(2):
            codes, _ = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
            assert codes == [pc.PAM_AUTH_ERR]
        assert shadow_expiry(name) == "1"
        w.fedlogind.stop()
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_ACCT_EXPIRED], a.transcript  # pam_unix's account check
        w.restart_fedlogind()
        assert w.ctl_json("unlock", name)["message"] == f"{name} unlocked"
        assert shadow_expiry(name) == admin_expiry
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


def test_a_lapsed_lockout_is_lifted_from_shadow_at_the_next_login(tmp_path, strict, in_namespace):
    name = unique("lapse")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 1, "duration": 1}})
    try:
        first_login(w, name)
        codes, _ = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
        assert codes == [pc.PAM_AUTH_ERR] and shadow_expiry(name) == "1"
        time.sleep(1.2)
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert shadow_expiry(name) == ""
    finally:
        w.stop()


def test_a_reset_lifts_fedlogins_lockout(tmp_path, strict, in_namespace):
    name = unique("resetlock")
    w = make_world(tmp_path, strict, name, policy={"lockout": {"max_attempts": 2, "duration": 600}})
    try:
        first_login(w, name)
        codes, _ = w.login(name, ["wrong-passcode", ""], steps=("authenticate",))
        # The attempt that locks the account still offers the reset.
        codes, a = w.login(name, ["forgotten", "reset", "", NEW, NEW])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert shadow_expiry(name) == "" and row(w, name)["locked"] == ""
    finally:
        w.stop()


@pytest.mark.parametrize("lock", [["usermod", "--lock"], ["passwd", "--lock"], ["usermod", "--expiredate", "2000-01-01"]],
                         ids=["usermod-L", "passwd-l", "expired"])
def test_a_reset_never_lifts_an_administrators_lock(tmp_path, strict, in_namespace, lock):
    name = unique("adminlock")
    w = make_world(tmp_path, strict, name)
    try:
        first_login(w, name)
        subprocess.run([*lock, name], check=True, capture_output=True)
        before = open("/etc/shadow").read()
        codes, a = w.login(name, ["forgotten", "reset", "", NEW, NEW])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert a.urls == []  # no sign-in starts
        assert any("locked or expired by an administrator of this machine" in m for m in a.messages(pc.PAM_ERROR_MSG)), a.transcript
        assert open("/etc/shadow").read() == before
    finally:
        w.stop()
