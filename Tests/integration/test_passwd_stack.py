"""passwd (pam_chauthtok) through the real libpam with the one stack,
pam/fedlogin.pam, and the real pam_unix against the namespace's /etc/shadow.

libpam runs the whole password stack twice: a preliminary pass, then the
update, which does not replay the first pass's path. pam_fedlogin keeps the
first pass's decision (pam_set_data): a change fedlogin owns either succeeds
through fedlogind or is PAM_AUTHTOK_ERR with the password unchanged, whatever
goes wrong in the update (fedlogind gone, silent, IGNORE, UNAVAIL, garbage, a
prompt left unanswered). pam_unix's update takes a missing current password
for root's, so a failure that fell through to it used to change the password
with no check. Everyone else's new password is asked by pam_fedlogin and
stored by pam_unix (use_authtok), with fedlogind running or not.
"""
import crypt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import pamclient as pc
import sandbox
import test_pam_shim as shim
from world import World, passwd_entry, shadow_hash, unique, useradd

pytestmark = pytest.mark.namespace

HARNESS = Path(__file__).resolve().parent / "harness"
PASSCODE = "Correct-Horse9"
NEW = "Battery-Staple7"
# The stack and module under test (None: pam/fedlogin.pam and out/pam_fedlogin.so).
STACK = None
MODULE = None


def confdir_for(tmp, sock, timeout=10000):
    """The stack as service "passwd", the service passwd(1) uses. (Not
    "other": libpam would load that file twice, as the service's own and as
    the fallback, and run each line twice.)"""
    return sandbox.make_confdir(tmp, sock, timeout=timeout, extra_args="connect_timeout=1000",
                                stack=STACK, module=MODULE, services=("passwd",))


def chauthtok(confdir, user, answers):
    """pam_chauthtok as root for `user`; returns (codes, answerer)."""
    a = sandbox.sign_in_answerer(None, answers)
    codes, _ = pc.authenticate(confdir, "passwd", user, a, steps=("chauthtok",))
    return codes, a


_AS_USER = r"""
import json, os, sys, time
os.setresuid(int(sys.argv[6]), 0, 0)  # as passwd(1) runs: real uid the user's, effective uid 0
sys.path.insert(0, sys.argv[1])
import pamclient as pc, sandbox
answers, delay = json.loads(sys.argv[4]), float(sys.argv[5])
a = sandbox.sign_in_answerer(None, answers)
def slow(style, text):
    global delay
    if style in (pc.PAM_PROMPT_ECHO_OFF, pc.PAM_PROMPT_ECHO_ON) and delay:
        time.sleep(delay)  # the user leaves the first prompt unanswered for a while
        delay = 0
    return a(style, text)
codes, _ = pc.authenticate(sys.argv[2], 'passwd', sys.argv[3], slow, steps=('chauthtok',))
print(json.dumps([codes, a.prompts, a.messages(pc.PAM_ERROR_MSG)]))
"""


def chauthtok_as_user(confdir, name, answers, delay=0.0, log=None):
    """pam_chauthtok as passwd(1) runs it for a user: effective uid 0, real uid
    the user's. `delay` seconds pass before the first prompt is answered; with
    `log`, the module's syslog lines go to that file (the child changes its
    real uid itself, after syslog_capture.so is loaded)."""
    uid = passwd_entry(name)[2]
    env = dict(os.environ)
    if log is not None:
        env.update(LD_PRELOAD=str(shim.SYSLOG_CAPTURE), FEDLOGIN_SYSLOG_CAPTURE=str(log))
    out = subprocess.run([sys.executable, "-c", _AS_USER, str(HARNESS), str(confdir), name, json.dumps(answers),
                          str(delay), uid], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def local_user(password):
    name = unique("pwl")
    useradd(name)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    return name


def matches(name, password):
    h = shadow_hash(name)
    return crypt.crypt(password, h) == h


# --- finding 2: an owned change never falls through to pam_unix ---------------

def test_a_prompt_left_unanswered_past_the_timeout_changes_nothing(tmp_path, strict, in_namespace):
    """fedlogind gives up on "Current passcode" after the service's timeout
    (10 s, the least it takes) and still sends RESULT AUTHTOK_ERR before it
    closes; the late answer changes nothing. Before: fedlogind closed with no
    RESULT, pam_fedlogin returned AUTHINFO_UNAVAIL, the stack ignored it and
    pam_unix's update set the new password without the current one."""
    name = unique("pwslow")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}], config={"service": {"passwd": {"timeout": 10}}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        before = shadow_hash(name)
        confdir = confdir_for(tmp_path / "slow", w.socket)
        log = tmp_path / "syslog"
        codes, prompts, _ = chauthtok_as_user(confdir, name, ["not-the-passcode", NEW, NEW, NEW, NEW],
                                              delay=11, log=log)
        assert codes == [pc.PAM_AUTHTOK_ERR], prompts
        assert prompts == ["Current passcode: "]
        assert shadow_hash(name) == before and not matches(name, NEW)
        # The module read fedlogind's RESULT, not a connection closed without one.
        assert f"password change failure; user={name} service=passwd tty= rhost= status=AUTHTOK_ERR " \
               "reason=no answer within 10 s" in log.read_text()
    finally:
        w.stop()


def _prelim_success_then(update):
    """A fake fedlogind: CHAUTHTOK_PRELIM is SUCCESS (fedlogin owns the
    change); `update(peer)` plays the update pass's connection."""
    def script(p):
        kind, _ = p.recv()
        if kind == "CHAUTHTOK_PRELIM":
            p.send("RESULT", 0, "fedlogin handles this password change")
        else:
            update(p)
    return script


def _gone(sock):
    def script(p):
        p.expect("CHAUTHTOK_PRELIM")
        # fedlogind stops between the passes: the path goes before the answer,
        # so the update pass cannot reach this listener however fast it comes.
        os.unlink(sock)
        p.send("RESULT", 0, "fedlogin handles this password change")
    return script


UPDATE_FAILURES = {
    "ignore": lambda p: p.send("RESULT", 1, "not a fedlogin account"),
    "unavail": lambda p: p.send("RESULT", 4, "internal error"),
    "user_unknown": lambda p: p.send("RESULT", 2, "no such user"),
    "closes_without_result": lambda p: None,
    "prompt_then_closes": lambda p: (p.send("PROMPT_ECHO_OFF", "Current passcode: "), p.expect("ANSWER")),
    "silent_past_the_timeout": lambda p: p.wait_closed(10),
    "garbage": lambda p: p.raw(b"\x00\x00\x00\x03\x63\x63\x63"),
}


@pytest.mark.parametrize("case", ["gone", *UPDATE_FAILURES])
def test_an_owned_change_that_fails_in_the_update_is_authtok_err(case, tmp_path, in_namespace):
    """Root runs passwd for an account fedlogind claimed in the preliminary
    pass; then the update pass goes wrong. Before: each of these fell through
    to pam_unix (AUTHINFO_UNAVAIL or IGNORE: ignore), which asked for a new
    password and stored it."""
    name = local_user("Old-Local-Pass1")
    before = shadow_hash(name)
    sockdir = Path(tempfile.mkdtemp(prefix="fl-", dir="/tmp"))
    sock = sockdir / "d.sock"
    script = _gone(sock) if case == "gone" else _prelim_success_then(UPDATE_FAILURES[case])
    d = shim.FakeDaemon(sock, script)
    try:
        codes, a = chauthtok(confdir_for(tmp_path, sock, timeout=1000), name, [NEW, NEW, NEW, NEW])
        d.check()
        assert codes == [pc.PAM_AUTHTOK_ERR], a.transcript
        assert shadow_hash(name) == before and not matches(name, NEW)
        assert "New password: " not in a.prompts  # never handed to pam_unix
    finally:
        d.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


# --- everyone else: pam_fedlogin asks, pam_unix stores (use_authtok) ----------

@pytest.mark.parametrize("fedlogind", ["running", "stopped"])
def test_passwd_for_root_and_local_users(fedlogind, tmp_path, strict, in_namespace):
    dummy = unique("pwdummy")
    strict.add_user(dummy, email=f"{dummy}@example.test")
    w = World(tmp_path, strict, [{"username": dummy}])
    try:
        if fedlogind == "stopped":
            w.fedlogind.stop()
        confdir = confdir_for(tmp_path / "passwd", w.socket)
        root_before = shadow_hash("root")
        local = local_user("Old-Local-Pass1")
        # root sets a local user's password: no current password, asked twice.
        codes, a = chauthtok(confdir, local, ["Root-Set-Pass2", "Root-Set-Pass2"])
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert a.prompts == ["New password: ", "Retype new password: "]
        assert matches(local, "Root-Set-Pass2")
        # The user changes it: pam_unix checks the current one first.
        codes, prompts, _ = chauthtok_as_user(confdir, local, ["Wrong-Pass3", "User-Chosen-Pass4",
                                                               "User-Chosen-Pass4"])
        assert codes != [pc.PAM_SUCCESS] and prompts == ["Current password: "]
        assert matches(local, "Root-Set-Pass2")
        codes, prompts, _ = chauthtok_as_user(confdir, local, ["Root-Set-Pass2", "User-Chosen-Pass4",
                                                               "User-Chosen-Pass4"])
        assert codes == [pc.PAM_SUCCESS], prompts
        assert prompts == ["Current password: ", "New password: ", "Retype new password: "]
        assert matches(local, "User-Chosen-Pass4")
        # Mistyped repetition: asked again, nothing stored until they agree.
        codes, a = chauthtok(confdir, local, ["Typo-Pass5", "Typ0-Pass5", "Again-Pass6", "Again-Pass6"])
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert "Sorry, passwords do not match." in a.messages(pc.PAM_ERROR_MSG)
        assert matches(local, "Again-Pass6")
        # root's own password (the namespace's copy of /etc/shadow).
        codes, a = chauthtok(confdir, "root", ["Root-Own-Pass7", "Root-Own-Pass7"])
        assert codes == [pc.PAM_SUCCESS], a.transcript
        assert matches("root", "Root-Own-Pass7") and shadow_hash("root") != root_before
    finally:
        w.stop()


def test_passwd_of_a_passcode_account_follows_the_passcode_policy(tmp_path, strict, in_namespace):
    name = unique("pwpol")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        codes, prompts, errors = chauthtok_as_user(confdir_for(tmp_path / "passwd", w.socket), name, [PASSCODE, "short", NEW, NEW])
        assert codes == [pc.PAM_SUCCESS], (prompts, errors)
        assert prompts[0] == "Current passcode: " and "New password: " not in prompts
        assert any("too weak" in m for m in errors)
        assert matches(name, NEW)
    finally:
        w.stop()


# --- the stack pam-auth-update writes from the package's profiles --------------

REPO = Path(__file__).resolve().parents[2]

# Runs in a mount namespace of its own (inside the test namespace): private
# copies of /etc/pam.d, /usr/share/pam-configs, /var/lib/pam and debconf's
# database, so nothing of the machine's changes. Prints the common-* files
# before, with the profiles, and after their removal.
_PAM_AUTH_UPDATE = r"""
set -eu
T="$1"; PROFILES="$2"; shift 2
cp -a /etc/pam.d "$T/pamd"; cp -a /usr/share/pam-configs "$T/configs"
cp -a /var/lib/pam "$T/varlibpam"; cp -a /var/cache/debconf "$T/debconf"
mount --bind "$T/pamd" /etc/pam.d
mount --bind "$T/configs" /usr/share/pam-configs
mount --bind "$T/varlibpam" /var/lib/pam
mount --bind "$T/debconf" /var/cache/debconf
export DEBIAN_FRONTEND=noninteractive
show() { mkdir -p "$T/$1"; cp /etc/pam.d/common-auth /etc/pam.d/common-account /etc/pam.d/common-password "$T/$1/"; }
for extra in "$@"; do cp "$extra" /usr/share/pam-configs/; done
pam-auth-update --package --force
show before
cp "$PROFILES"/fedlogin "$PROFILES"/fedlogin-authfail "$PROFILES"/fedlogin-password /usr/share/pam-configs/
pam-auth-update --package
show with
pam-auth-update --package --remove fedlogin fedlogin-authfail fedlogin-password
rm /usr/share/pam-configs/fedlogin /usr/share/pam-configs/fedlogin-authfail /usr/share/pam-configs/fedlogin-password
show after
"""


def pam_auth_update(tmp, *extra_profiles):
    """{"before"|"with"|"after": {"common-auth": [lines], ...}}: the files as
    pam-auth-update writes them without fedlogin, with its profiles
    (packaging/pam-configs.sh, the package's), and after their removal."""
    profiles = tmp / "profiles"
    subprocess.run(["sh", str(REPO / "packaging" / "pam-configs.sh"), str(profiles)], check=True)
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _PAM_AUTH_UPDATE, "sh",
                          str(tmp), str(profiles), *map(str, extra_profiles)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {stage: {f: (tmp / stage / f).read_bytes() for f in ("common-auth", "common-account", "common-password")}
            for stage in ("before", "with", "after")}


def rules(text):
    """The lines of a common-* file without comments, fields split on blanks."""
    return [line.split() for line in text.decode().splitlines() if line.strip() and not line.startswith("#")]


def pwquality_profile(tmp):
    """Debian's libpam-pwquality profile, taken from its package (downloaded,
    unpacked, never installed: installing it would run pam-auth-update here)."""
    d = tmp / "pwquality"
    d.mkdir()
    got = subprocess.run(["apt-get", "download", "libpam-pwquality"], cwd=d, capture_output=True, text=True, timeout=120)
    debs = list(d.glob("libpam-pwquality_*.deb"))
    if got.returncode != 0 or not debs:
        pytest.skip(f"apt-get download libpam-pwquality failed: {got.stderr.strip()[-300:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(d / "x")], check=True)
    return d / "x" / "usr" / "share" / "pam-configs" / "pwquality"


@pytest.mark.parametrize("with_pwquality", [False, True], ids=["unix", "unix+pwquality"])
def test_pam_auth_update_writes_the_stack_and_removal_restores_it(with_pwquality, tmp_path, in_namespace):
    extra = [pwquality_profile(tmp_path)] if with_pwquality else []
    files = pam_auth_update(tmp_path, *extra)
    # Taking the profiles out gives back every file byte for byte.
    assert files["after"] == files["before"]

    auth = [r for r in rules(files["with"]["common-auth"]) if r[0] == "auth"]
    mods = [next(f for f in r if f.endswith(".so")) for r in auth]
    i = mods.index("pam_unix.so")
    # fedlogin first; the authfail line right after pam_unix, before pam_deny;
    # every success jump lands on pam_permit.
    assert mods[:i] == ["pam_fedlogin.so"] and mods[i + 1:i + 4] == ["pam_fedlogin.so", "pam_deny.so", "pam_permit.so"]
    assert auth[0][1:4] == ["[success=3", "ignore=ignore", "authinfo_unavail=ignore"]
    assert auth[0][-1] == "pam_fedlogin.so"
    assert auth[i][1] == "[success=2" and "try_first_pass" in auth[i]
    assert auth[i + 1][1:] == ["[success=1", "default=ignore]", "pam_fedlogin.so", "authfail"]
    assert auth[i + 2][1:] == ["requisite", "pam_deny.so"]

    account = [r for r in rules(files["with"]["common-account"]) if r[0] == "account"]
    amods = [next(f for f in r if f.endswith(".so")) for r in account]
    assert amods[:4] == ["pam_fedlogin.so", "pam_unix.so", "pam_deny.so", "pam_permit.so"]
    assert account[0][1:] == ["[success=ok", "ignore=ignore", "authinfo_unavail=ignore", "default=die]",
                              "pam_fedlogin.so"]
    assert account[1][1:4] == ["[success=1", "new_authtok_reqd=done", "default=ignore]"]

    password = [r for r in rules(files["with"]["common-password"]) if r[0] == "password"]
    pmods = [next(f for f in r if f.endswith(".so")) for r in password]
    want = ["pam_fedlogin.so", *(["pam_pwquality.so"] if with_pwquality else []), "pam_unix.so", "pam_deny.so",
            "pam_permit.so"]
    assert pmods[:len(want)] == want
    jump = 2 + with_pwquality
    assert password[0][1:] == [f"[success={jump}", "ignore=ignore", "default=die]", "pam_fedlogin.so"]
    unix = password[pmods.index("pam_unix.so")]
    assert unix[1] == "[success=1" and "use_authtok" in unix and "yescrypt" in unix
    # Without fedlogin pam_unix asks for the new password itself (no use_authtok).
    before = [r for r in rules(files["before"]["common-password"]) if r[0] == "password" and "pam_unix.so" in r]
    assert ("use_authtok" in before[0]) == with_pwquality
