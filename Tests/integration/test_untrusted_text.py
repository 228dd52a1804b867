"""Untrusted text never reaches a terminal or a log line raw: a user name, an
ID-token claim, a directory field and a pasted-back address carrying ESC and
newlines are shown escaped (`\\x1b`, `\\n`) in PAM messages and in fedlogind's
log, and a PAM user name holding a control character is refused before any
lookup. Through libpam, pam_fedlogin.so, fedlogind, fedlogin-directoryd and
the strict test provider."""
import urllib.parse

import pytest

import pamclient as pc
from strict_idp import mutations
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"
EVIL = "\x1b[2J\x1b]0;owned\x07\nfedlogind: login complete for root"


def raw_control(text: str) -> bool:
    """Whether text holds ESC, BEL or a C1 control (a newline is a log line's end)."""
    return any(c in text for c in ("\x1b", "\x07", "\x9b"))


def world(tmp_path, strict, user, users=None, **claims):
    strict.add_user(user, email=f"{user}@example.test", **claims)
    return World(tmp_path, strict, users or [user])


def test_a_user_name_with_control_characters_is_refused_and_logged_escaped(tmp_path, strict, in_namespace):
    name = unique("esc")
    w = world(tmp_path, strict, name)
    try:
        user = name + EVIL
        codes, a = w.login(user, [""])
        assert codes[0] != pc.PAM_SUCCESS, a.transcript
        assert not a.urls  # no sign-in started for it
        log = w.fedlogind.log_text()
        assert "the user name holds control characters" in log
        assert name + "\\x1b[2J\\x1b]0;owned\\x07\\nfedlogind" in log
        assert not raw_control(log)
        assert "fedlogind: login complete for root" not in log.splitlines()
        assert passwd_entry(user) is None
    finally:
        w.stop()


def test_the_welcome_greets_by_the_directory_display_name_escaped_not_the_name_claim(tmp_path, strict, in_namespace):
    name = unique("claim")
    w = world(tmp_path, strict, name, users=[{"username": name, "display_name": "Eve" + EVIL}], name="Mallory" + EVIL)
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], steps=("authenticate", "acct_mgmt", "open_session"))
        assert codes == [pc.PAM_SUCCESS] * 3, a.transcript
        welcome = next(m for m in a.messages(pc.PAM_TEXT_INFO) if m.startswith("Welcome"))
        assert not raw_control(welcome) and "\n" not in welcome
        # The account's GECOS: the display name, its newline and colon made spaces.
        assert welcome.startswith("Welcome, Eve\\x1b[2J\\x1b]0;owned\\x07 fedlogind  login complete for root. ")
        assert "Mallory" not in welcome
    finally:
        w.stop()


def test_an_email_claim_in_a_refusal_is_escaped_in_the_message_and_the_log(tmp_path, strict, in_namespace):
    name = unique("mail")
    w = world(tmp_path, strict, name)
    strict.next_token_mutation = mutations.set_claims(email=f"x{EVIL}@example.test")
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        error = a.messages(pc.PAM_ERROR_MSG)[0]
        assert "You signed in as x\\x1b[2J" in error
        assert not raw_control(error) and "\n" not in error
        log = w.fedlogind.log_text()
        assert "email mismatch" in log and not raw_control(log)
        assert passwd_entry(name) is None
    finally:
        w.stop()


def test_a_directory_display_name_is_escaped_in_the_account(tmp_path, strict, in_namespace):
    name = unique("gecos")
    w = world(tmp_path, strict, name, users=[{"username": name, "display_name": "Gus" + EVIL}])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        entry = passwd_entry(name)
        assert entry is not None and len(entry) == 7
        assert not raw_control(entry[4])
        assert entry[4].startswith("Gus\\x1b[2J")
        assert not raw_control(w.fedlogind.log_text())
    finally:
        w.stop()


def test_a_pasted_address_is_escaped_in_the_message_and_the_log(tmp_path, strict, in_namespace):
    name = unique("pasted")
    w = world(tmp_path, strict, name)
    seen = {}

    class Paster:
        def __init__(self):
            self.transcript = []

        def __call__(self, style, text):
            self.transcript.append((style, text))
            if style == pc.PAM_TEXT_INFO and "http" in text:
                url = next(line for line in text.split("\n") if line.startswith("http"))
                seen["state"] = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
            if style in (pc.PAM_PROMPT_ECHO_ON, pc.PAM_PROMPT_ECHO_OFF):
                query = urllib.parse.urlencode({"error": "bad" + EVIL, "state": seen["state"]})
                return "http://127.0.0.1:1/callback?" + query

    try:
        p = Paster()
        codes, transcript = pc.authenticate(w.confdir, "login", name, p, steps=("authenticate",))
        assert codes == [pc.PAM_AUTH_ERR], transcript
        error = [t for s, t in transcript if s == pc.PAM_ERROR_MSG][0]
        assert "did not sign you in (bad\\x1b[2J" in error, error
        assert not raw_control(error) and "\n" not in error
        log = w.fedlogind.log_text()
        assert "authorization error from the IdP: bad\\x1b[2J" in log
        assert not raw_control(log)
        assert "fedlogind: login complete for root" not in log.splitlines()
    finally:
        w.stop()


def test_a_name_any_user_sends_to_the_directory_is_logged_escaped(tmp_path, strict, in_namespace):
    """The directory socket is open to every local user (0666): a lookup
    with ESC and a newline in the name cannot forge a line of
    fedlogin-directoryd's log. (Sent as root here: the test's socket lives
    in a folder only root can enter.)"""
    import json
    import struct

    import wire

    name = unique("dirlog")
    w = world(tmp_path, strict, name)
    try:
        body = json.dumps({"op": "lookup", "user": "nobody-such" + EVIL}).encode()
        reply = json.loads(wire.exchange(w.directoryd.socket, struct.pack(">I", len(body)) + body))
        assert reply == {"ok": True}
        log = w.directoryd.log_text()
        assert "lookup: no such user" in log
        assert not raw_control(log)
        assert not any(l.startswith("fedlogind: login complete") for l in log.splitlines())
        assert "\\x1b[2J" in log and "\\n" in log
    finally:
        w.stop()
