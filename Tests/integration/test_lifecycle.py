"""Managed accounts after their creation, through the real parts: directory
sync (lock, never delete; groups through the allowlist; admins and sudo),
pre-provisioning of the users associated with this device, an admin's
bind / unbind / --adopt, and `fedloginctl users --json`."""
import grp
import json
import subprocess
import threading
import time

import pytest

import pamclient as pc
import sandbox
from world import World, passwd_entry, shadow_hash, unique, useradd

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
DEVICE = "demo-device-1"



def shadow_fields(name):
    for line in open("/etc/shadow").read().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f
    return None


def members(group):
    return grp.getgrnam(group).gr_mem


def ensure_group(name):
    subprocess.run(["groupadd", "-f", name], check=True)


def user_row(w, name):
    return next((u for u in w.ctl_json("users")["users"] if u["username"] == name), None)


def first_login(w, strict, name):
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    codes, a = w.login(name, ["", PASSCODE, PASSCODE])
    assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    return a


# On both backends (docs/ldap.md): disabled = pwdAccountLockedTime on LDAP.
@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_disabled_in_the_directory_locks_on_sync_and_enabling_unlocks(tmp_path, strict, in_namespace, backend):
    name = unique("life")
    w = World(tmp_path, strict, [{"username": name}], backend=backend)
    try:
        first_login(w, strict, name)
        w.wait_reports(name)
        w.rewrite_directory([{"username": name, "disabled": True}])
        r = w.ctl_json("sync")
        assert r["locked"] == [name]
        f = shadow_fields(name)
        assert f[1].startswith("!") and f[7] == "1"  # password locked and account expired: keys do not get in either
        assert passwd_entry(name) is not None  # never deleted
        assert user_row(w, name)["locked"] == "disabled in the directory"
        # The login is refused before the password is even asked.
        codes, a = w.login(name, [PASSCODE], steps=("authenticate",))
        assert codes == [pc.PAM_PERM_DENIED]
        assert any("is locked: it is disabled in the directory" in m for m in a.messages(pc.PAM_ERROR_MSG))
        # A second sync changes nothing more.
        assert w.ctl_json("sync")["locked"] == []

        w.rewrite_directory([{"username": name}])
        assert w.ctl_json("sync")["unlocked"] == [name]
        f = shadow_fields(name)
        assert not f[1].startswith("!") and f[7] == ""
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


def test_removed_from_the_directory_or_unassociated_locks(tmp_path, strict, in_namespace):
    a, b = unique("gone"), unique("unassoc")
    w = World(tmp_path, strict, [{"username": a}, {"username": b}])
    try:
        first_login(w, strict, a)
        first_login(w, strict, b)
        w.wait_reports(a)
        w.wait_reports(b)
        assert w.ctl_json("sync")["locked"] == []  # reported bindings associate them
        w.rewrite_directory([{"username": b}], unbound={DEVICE: [b]})
        r = w.ctl_json("sync")
        assert sorted(r["locked"]) == sorted([a, b])
        assert user_row(w, a)["locked"] == "no longer in the directory"
        assert user_row(w, b)["locked"] == "no longer associated with this machine"
        assert passwd_entry(a) and passwd_entry(b)
    finally:
        w.stop()


def test_the_periodic_sync_locks_without_being_asked(tmp_path, strict, in_namespace):
    name = unique("periodic")
    w = World(tmp_path, strict, [{"username": name}], config={"daemon": {"sync_interval": 1}})
    try:
        first_login(w, strict, name)
        w.rewrite_directory([{"username": name, "disabled": True}])
        end = time.time() + 30
        # The shadow entry changes first, then the sync logs the lock.
        while not ("account locked" in w.logs() and shadow_fields(name)[1].startswith("!")) and time.time() < end:
            time.sleep(0.3)
        assert shadow_fields(name)[1].startswith("!") and shadow_fields(name)[7] == "1"
        assert "account locked" in w.logs()
    finally:
        w.stop()


def test_a_directory_outage_changes_nothing(tmp_path, strict, in_namespace):
    name = unique("outage")
    w = World(tmp_path, strict, [{"username": name}])
    try:
        first_login(w, strict, name)
        w.directoryd.stop()
        out = w.ctl("sync", check=False)
        assert out.returncode != 0 and "cannot be reached, nothing was changed" in out.stderr
        assert not shadow_fields(name)[1].startswith("!")
    finally:
        w.stop()


# On both backends (docs/ldap.md): groupOfNames entries on LDAP.
@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_groups_follow_the_allowlist_and_admins_join_sudo(tmp_path, strict, in_namespace, backend):
    name = unique("grp")
    for g in ("sudo", "docker", "developers"):
        ensure_group(g)
    w = World(tmp_path, strict, [{"username": name, "groups": ["eng", "docker", "it-admins"]}],
              policy={"admin_groups": ["it-admins"]},
              config={"accounts": {"group_map": {"eng": "developers"}}}, backend=backend)
    try:
        first_login(w, strict, name)
        # In the groups from the first session on, recorded as a sync would:
        # the next sync has nothing to change.
        assert name in members("developers") and name in members("sudo")
        assert user_row(w, name)["groups"] == ["developers", "sudo"]
        r = w.ctl_json("sync")
        assert r["group_changes"] == []
        # A directory group named like a local group grants nothing by its name.
        assert name not in members("docker")
        assert user_row(w, name)["groups"] == ["developers", "sudo"]

        # Out of the admin group: out of sudo; a group the user joined locally stays.
        subprocess.run(["usermod", "-aG", "docker", name], check=True)
        w.rewrite_directory([{"username": name, "groups": ["eng"]}], policy={"admin_groups": ["it-admins"]})
        r = w.ctl_json("sync")
        assert r["group_changes"] == [f"{name} -sudo"]
        assert name not in members("sudo") and name in members("developers") and name in members("docker")
    finally:
        w.stop()


def test_a_pre_provisioned_account_gets_its_current_groups_when_the_sign_in_completes_it(tmp_path, strict, in_namespace):
    name = unique("prg")
    for g in ("sudo", "developers"):
        ensure_group(g)
    w = World(tmp_path, strict, [{"username": name, "groups": ["eng"]}], devices={DEVICE: [name]},
              policy={"admin_groups": ["it-admins"]}, config={"accounts": {"group_map": {"eng": "developers"}}})
    try:
        assert w.ctl_json("sync")["provisioned"] == [name]
        assert name in members("developers") and name not in members("sudo")
        # Made an admin and out of eng before the first sign-in (no sync since).
        w.rewrite_directory([{"username": name, "groups": ["it-admins"]}], devices={DEVICE: [name]},
                            policy={"admin_groups": ["it-admins"]})
        first_login(w, strict, name)
        assert name in members("sudo") and name not in members("developers")
        assert user_row(w, name)["groups"] == ["sudo"]
        assert w.ctl_json("sync")["group_changes"] == []
    finally:
        w.stop()


def test_users_associated_with_the_device_are_created_ahead_and_complete_at_sign_in(tmp_path, strict, in_namespace):
    name = unique("pre")
    w = World(tmp_path, strict, [{"username": name}], devices={DEVICE: [name]})
    try:
        r = w.ctl_json("sync")
        assert r["provisioned"] == [name]
        entry = passwd_entry(name)
        uid = int(entry[2])
        assert 70000 <= uid <= 79999 and entry[3] == entry[2]
        assert shadow_hash(name) in ("!", "!*", "*")  # no usable password until the sign-in
        assert user_row(w, name)["state"] == "pending"
        assert w.wait_reports(name)[0]["password_mode"] == "pending"
        # Not twice.
        assert w.ctl_json("sync")["provisioned"] == []

        a = first_login(w, strict, name)
        assert int(passwd_entry(name)[2]) == uid
        assert user_row(w, name)["state"] == "active"
        reports = w.wait_reports(name, count=2)
        assert [r["password_mode"] for r in reports] == ["pending", "passcode"]
        assert reports[1]["subject"] == name
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()


# On both backends (docs/ldap.md): the reports are fedloginBinding entries on LDAP.
@pytest.mark.parametrize("backend", ["file", "ldap"])
def test_bind_unbind_and_adopt_by_root(tmp_path, strict, in_namespace, backend):
    bound, adopted, other = unique("bind"), unique("adopt"), unique("notdir")
    useradd(adopted)
    subprocess.run(["chpasswd"], input=f"{adopted}:Old-Local-Pass1\n", text=True, check=True)
    w = World(tmp_path, strict, [{"username": bound}, {"username": adopted}, {"username": "daemon"},
                                 {"username": "root"}], backend=backend)
    try:
        out = w.ctl_json("bind", bound, "--password-sync", "no")
        assert "locked until" in out["message"]
        assert user_row(w, bound)["state"] == "pending"
        assert w.ctl("bind", bound, check=False).returncode != 0  # already managed

        # An existing local account: only with --adopt, never root or a system account.
        out = w.ctl("bind", adopted, check=False)
        assert out.returncode != 0 and f"fedloginctl bind {adopted} --adopt" in out.stderr
        assert user_row(w, adopted) is None
        for sys_user in ("root", "daemon"):
            out = w.ctl("bind", sys_user, "--adopt", check=False)
            assert out.returncode != 0, sys_user
        assert "never manages system accounts" in w.ctl("bind", "daemon", "--adopt", check=False).stderr
        assert w.ctl("bind", other, check=False).returncode != 0  # unknown to the directory
        assert w.ctl_json("bind", adopted, "--adopt", "--password-sync", "no")["message"].endswith("the current local password stays")
        row = user_row(w, adopted)
        assert row["state"] == "active" and row["password_mode"] == "passcode"
        codes, a = w.login(adopted, ["Old-Local-Pass1"])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert w.wait_reports(adopted)

        # Unbind: no longer managed, the account and its home stay, the directory is told.
        assert "no longer managed" in w.ctl_json("unbind", adopted)["message"]
        assert user_row(w, adopted) is None and passwd_entry(adopted) is not None
        reports = w.wait_reports(adopted, count=2)
        actions = [r.get("action", "bind") for r in reports]
        # The file backend lists the reports as they came, the LDAP backend by
        # bound_at (whole seconds) and then seq: a bind and its unbind in
        # one second keep their order on both.
        assert actions == ["bind", "unbind"]
        assert w.ctl("unbind", adopted, check=False).returncode != 0
    finally:
        w.stop()


def test_the_admin_operations_need_root(tmp_path, strict, in_namespace):
    name = unique("rootonly")
    w = World(tmp_path, strict, [{"username": name}],
              config={"daemon": {"socket": f"/run/fedlogin-test/{name}.sock"}})
    try:
        for args in (["sync"], ["bind", name], ["unbind", name], ["unlock", name], ["users"]):
            out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                  str(sandbox.bin_dir() / "fedloginctl"), *args,
                                  "--socket", str(w.socket)], capture_output=True, text=True, timeout=30)
            assert out.returncode != 0 and "only root" in out.stderr, args
        assert passwd_entry(name) is None
    finally:
        w.stop()


def test_users_and_status_readable_and_json(tmp_path, strict, in_namespace):
    name = unique("list")
    w = World(tmp_path, strict, [{"username": name}])
    try:
        first_login(w, strict, name)
        w.wait_reports(name)
        text = w.ctl("users").stdout
        assert text.splitlines()[0].split() == ["USER", "UID", "EMAIL", "STATE", "PASSWORD", "LOCKED", "BINDING", "SIGNED-IN", "ANSWERED",
                                              "OFFLINE-UNTIL", "REAUTH-DUE"]
        row = next(l for l in text.splitlines() if l.startswith(name + " "))
        assert "active" in row and "passcode" in row
        j = user_row(w, name)
        assert j["password_mode"] == "passcode" and j["locked"] == "" and j["reported"] is True
        s = w.ctl_json("status")
        assert s["managed_users"] >= 1 and s["device_id"] == DEVICE
    finally:
        w.stop()


def test_replies_longer_than_one_frame_string_arrive_whole(tmp_path, strict, in_namespace):
    names = [unique("many") for _ in range(60)]
    w = World(tmp_path, strict, [{"username": n} for n in names], devices={DEVICE: names})
    try:
        assert sorted(w.ctl_json("sync")["provisioned"]) == sorted(names)
        out = w.ctl("users", "--json").stdout
        assert len(out) > 4096  # more than one string of the wire protocol holds
        listed = {u["username"] for u in json.loads(out)["users"]}
        assert set(names) <= listed
        assert sum(1 for line in w.ctl("users").stdout.splitlines() if line.startswith("many")) == 60
    finally:
        w.stop()


def test_first_logins_at_once_get_distinct_uids(tmp_path, strict, in_namespace):
    names = [unique("burst") for _ in range(8)]
    for n in names:
        strict.add_user(n, email=f"{n}@example.test")
    w = World(tmp_path, strict, [{"username": n} for n in names])
    try:
        results = {}

        def login(n):
            results[n] = w.login(n, ["", PASSCODE, PASSCODE])[0]

        threads = [threading.Thread(target=login, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert all(results.get(n) == [pc.PAM_SUCCESS, pc.PAM_SUCCESS] for n in names), results
        uids = [int(passwd_entry(n)[2]) for n in names]
        assert len(set(uids)) == len(names)
        assert "UNIQUE constraint" not in w.logs()
    finally:
        w.stop()
