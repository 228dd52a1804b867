"""Names and uids a directory user never gets (docs/accounts.md): Debian's
base-passwd and common service names, systemd-* names and accounts.reserved_names
are neither announced by NSS nor signed in; a directory-assigned uid outside
accounts.directory_uid_min/max or inside a range of /etc/subuid or /etc/subgid
is refused the same way. Through libpam, pam_fedlogin.so, fedlogind's NSS
answers and fedlogin-directoryd."""
from pathlib import Path

import pytest

import pamclient as pc
from test_nss_daemon import GETPWNAM, GETPWUID, ask
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace


def world(tmp_path, idp, users, accounts=None):
    # A socket an unprivileged client (the NSS questions, as nobody) can reach.
    sock = f"/run/fedlogin-test/{unique('rules')}.sock"
    return World(tmp_path, idp, users, config={"daemon": {"socket": sock}, "accounts": accounts or {}})


@pytest.fixture
def subordinate_ids():
    """Writes /etc/subuid and /etc/subgid (of the test namespace) and puts back what was there."""
    saved = {}
    for name in ("subuid", "subgid"):
        p = Path("/etc") / name
        saved[p] = p.read_bytes() if p.exists() else None

    def write(subuid: str, subgid: str):
        Path("/etc/subuid").write_text(subuid)
        Path("/etc/subgid").write_text(subgid)

    yield write
    for p, data in saved.items():
        if data is None:
            p.unlink(missing_ok=True)
        else:
            p.write_bytes(data)


def test_reserved_names_are_not_announced_or_signed_in(tmp_path, strict, in_namespace):
    names = ["www-data", "gnats", "nginx", "systemd-fltest", "kiosk"]
    ok = unique("plain")
    for n in names + [ok]:
        strict.add_user(n, email=f"{n}@example.test")
    w = world(tmp_path, strict, [{"username": n} for n in names + [ok]],
              accounts={"reserved_names": ["kiosk"]})
    try:
        for n in names:
            assert ask(w, GETPWNAM, n) == ("notfound",), n
            codes, a = w.login(n, [""])
            assert codes[0] != pc.PAM_SUCCESS, (n, a.transcript)
            assert not a.urls, n  # no sign-in started
        assert ask(w, GETPWNAM, ok)[0] == "passwd"
        log = w.fedlogind.log_text()
        for n in ["gnats", "nginx", "systemd-fltest", "kiosk"]:
            assert passwd_entry(n) is None
            assert "reserved name" in log
        assert "accounts.reserved_names" in log
    finally:
        w.stop()


def test_directory_uids_outside_their_range_or_in_subordinate_ranges_are_refused(tmp_path, strict, subordinate_ids,
                                                                                 in_namespace):
    subordinate_ids("someone:85000:1000\n", "somegroup:87000:10\n")
    in_subuid, in_subgid, in_own_range, ok = unique("subu"), unique("subg"), unique("ownr"), unique("dirok")
    users = [{"username": in_subuid, "uid": 85500}, {"username": in_subgid, "uid": 87005},
             {"username": in_own_range, "uid": 75000}, {"username": ok, "uid": 81500}]
    for u in users:
        strict.add_user(u["username"], email=f"{u['username']}@example.test")
    w = world(tmp_path, strict, users)
    try:
        for name, uid in ((in_subuid, 85500), (in_subgid, 87005), (in_own_range, 75000)):
            assert ask(w, GETPWNAM, name) == ("notfound",), name
            assert ask(w, GETPWUID, uid) == ("notfound",), uid
            codes, a = w.login(name, [""])
            assert codes[0] != pc.PAM_SUCCESS, (name, a.transcript)
            assert "cannot be used on this machine" in a.messages(pc.PAM_ERROR_MSG)[0]
            assert passwd_entry(name) is None
        assert ask(w, GETPWNAM, ok)[2] == 81500
        log = w.fedlogind.log_text()
        assert "subordinate id range (85000-85999" in log and "subordinate id range (87000-87009" in log
        assert "outside the range for directory uids (80000-99999)" in log
    finally:
        w.stop()
