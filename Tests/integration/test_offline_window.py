"""The bounded offline window (docs/accounts.md, "The offline window"): the
directory policy's offline_max days from fedlogind's last answer of the
directory about the user. Past it, the local credential alone no longer
logs in: fedlogind refuses the account phase and tells the user to connect
the machine; with fedlogind stopped, pam_unix refuses through the account
expiry fedlogind mirrored into /etc/shadow. No test waits for days: the PAM
client runs under Debian's faketime for pam_unix's judgement; for
fedlogind's, the recorded answer is moved back."""
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nested
import pamclient as pc
import sandbox
from sshd import socket_dir
from world import World, unique

pytestmark = [
    pytest.mark.namespace,
    pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime is not installed (scripts/deps.sh installs it)"),
]

PASSCODE = "Correct-Horse9"
HARNESS = Path(__file__).resolve().parent / "harness"


def login_at(w, days, name, answers, steps=("authenticate", "acct_mgmt")):
    """A PAM transaction through the real libpam in a process whose clock is `days` ahead."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(HARNESS)!r})
        import pamclient as pc
        t = pc.Transaction({str(w.confdir)!r}, "login", {name!r}, pc.scripted({list(answers)!r}))
        codes = []
        for step in {list(steps)!r}:
            codes.append(t.run(step))
            if codes[-1] != pc.PAM_SUCCESS:
                break
        t.end(codes[-1])
        print(json.dumps({{"codes": codes, "transcript": t.transcript}}))
    """)
    r = subprocess.run(["faketime", "-f", f"+{days}d", sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["codes"], [t for s, t in out["transcript"] if s == pc.PAM_ERROR_MSG]


def expiry_day(name):
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[7]) if f[7] else None
    return None


def offline_message_id():
    text = (Path(__file__).resolve().parents[2] / "Sources/FedloginCore/Policy/MessageID.swift").read_text()
    return text.split('static let offlineWindowEnded = "')[1][:32]


def state_db(w):
    import tomllib
    return Path(tomllib.loads(w.config.read_text())["daemon"]["state_dir"]) / "state.sqlite"


def last_answer(w, name):
    with sqlite3.connect(state_db(w)) as db:
        return db.execute("SELECT last_answer_at FROM account WHERE username = ?", (name,)).fetchone()[0]


def rewind(w, name, days):
    """With fedlogind stopped: the last answer `days` earlier, and the
    window's mirror in /etc/shadow (and fedlogin's record of it) with it."""
    assert not (w.fedlogind and w.fedlogind.alive)
    day = expiry_day(name) - days
    with sqlite3.connect(state_db(w)) as db:
        db.execute("UPDATE account SET last_answer_at = last_answer_at - ? WHERE username = ?", (days * 86400, name))
        db.execute("UPDATE shadow_write SET record = json_set(record, '$.written', ?) WHERE username = ?", (day, name))
    subprocess.run(["usermod", "--expiredate", str(day), name], check=True,
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def today():
    return int(time.time() // 86400)


def test_past_offline_max_the_passcode_alone_no_longer_logs_in_with_or_without_fedlogind(tmp_path, strict, in_namespace):
    name = unique("offl")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}], policy={"offline_max": 2},
              config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        # The window's end (2 days from now) mirrored as the account expiry:
        # the day after the end's day.
        assert expiry_day(name) == today() + 3
        row = next(u for u in w.ctl_json("users")["users"] if u["username"] == name)
        assert row["last_signin"] and row["last_directory_answer"] == row["last_signin"]
        assert row["offline_until"] > row["last_signin"]
        table = w.ctl("users").stdout
        assert table.splitlines()[0].split()[-4:] == ["SIGNED-IN", "ANSWERED", "OFFLINE-UNTIL", "REAUTH-DUE"]

        # fedlogind stopped: pam_unix alone enforces the mirror.
        w.fedlogind.stop()
        assert login_at(w, 1, name, [PASSCODE])[0] == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        assert login_at(w, 3, name, [PASSCODE])[0] == [pc.PAM_SUCCESS, pc.PAM_ACCT_EXPIRED]
        assert login_at(w, 3, name, [], steps=("acct_mgmt",))[0] == [pc.PAM_ACCT_EXPIRED]  # an SSH key's path

        # Three days without an answer, as fedlogind's state and /etc/shadow
        # have it (fedlogind itself cannot run under faketime: it would not
        # see its arguments): the last answer and the mirror moved back.
        rewind(w, name, days=3)
        assert login_at(w, 0, name, [], steps=("acct_mgmt",))[0] == [pc.PAM_ACCT_EXPIRED]
        # fedlogind, the directory down: fedlogind refuses and says why.
        w.directoryd.stop()
        w.restart_fedlogind()
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_ACCT_EXPIRED], a.transcript
        errors = a.messages(pc.PAM_ERROR_MSG)
        assert any(f"The directory has not confirmed {name} for 2 days" in e and "Connect it to the network" in e
                   for e in errors), errors
        log = w.fedlogind.log_text()
        line = next(x for x in log.splitlines() if "login refused: the directory has not answered about the user since" in x)
        assert "offline_max 2 days" in line and f"message_id={offline_message_id()}" in line

        # Connected again: the login's answer moves the window on, and its
        # mirror before pam_unix judges the expiry.
        w.directoryd = sandbox.start_directoryd(w.tmp, w.directory_file)
        w.restart_fedlogind()  # forgets the silence it kept
        codes, a = w.login(name, [PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert expiry_day(name) == today() + 3
        assert abs(last_answer(w, name) - time.time()) < 60
    finally:
        w.stop()


def test_offline_max_zero_is_no_limit_and_a_sync_lifts_the_mirror(tmp_path, strict, in_namespace):
    name = unique("offz")
    strict.add_user(name, email=f"{name}@example.test", name=name.capitalize())
    w = World(tmp_path, strict, [{"username": name}], policy={"offline_max": 5})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert expiry_day(name) == today() + 6
        w.rewrite_directory([{"username": name}], policy={"offline_max": 0})
        w.ctl_json("sync")
        assert expiry_day(name) is None
        w.fedlogind.stop()
        assert login_at(w, 400, name, [PASSCODE])[0] == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
    finally:
        w.stop()
