"""Sign-in flows other than the loopback redirect: the device authorization
grant (RFC 8628) with its QR code, paste-back, and the flow choice per PAM
service."""
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

import pamclient as pc
import sandbox
from strict_idp import OAuthError, StrictIdP, browser_sign_in
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace
PASSCODE = "Correct-Horse9"
QR_CHARS = set(" \u2588\u2580\u2584")



def device_browser(sub, deny=False):
    """Plays the user on their phone: opens the address with the code filled in."""
    def browse(url):
        if "user_code=" in url:
            return browser_sign_in(url, sub, deny=deny)
    return browse


def user_code(answerer):
    m = re.search(r"enter the code ([A-Z]{4}-[A-Z]{4})", answerer.messages(pc.PAM_TEXT_INFO)[0])
    return m.group(1)


def world(tmp_path, idp, name, **kw):
    if isinstance(idp, StrictIdP):
        idp.add_user(name, email=f"{name}@example.test")
    return World(tmp_path, idp, [name], **kw)


def test_ssh_signs_in_with_the_device_grant(tmp_path, strict, in_namespace):
    name = unique("dev")
    w = world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=device_browser(name), service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        info = a.messages(pc.PAM_TEXT_INFO)[0]
        assert f"open this address and enter the code {user_code(a)}:\n{strict.issuer}/device\n" in info
        assert "You have " in info
        # RFC 8628 §5.4: the message names the account and this machine.
        assert f"This code signs you in to {name} on the machine {socket.gethostname()}; " in info
        assert a.transcript[1] == (pc.PAM_PROMPT_ECHO_ON, "Press Enter once you have signed in: ")
        assert strict.counts["device_authorization"] == 1 and strict.counts["authorize"] == 0
        assert passwd_entry(name) is not None
        assert "sign-in flow: device grant" in w.fedlogind.log_text()
    finally:
        w.stop()


def qr_block(info):
    lines = info.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Or scan this code"))
    block = []
    for line in lines[start + 1:]:
        if line and set(line) <= QR_CHARS:
            block.append(line)
        else:
            break
    return block


def modules(block):
    """The module rows a text QR code draws (True: light), two per line."""
    rows = []
    for line in block:
        rows += [[ch in "\u2588\u2580" for ch in line], [ch in "\u2588\u2584" for ch in line]]
    return rows


def decode_qr(block, tmp_path):
    """Draws the text exactly as sent as an image (glyphs = light modules, no
    border added: the quiet zone is the text's own) and reads it with zbarimg."""
    rows = []
    for line in block:
        top = [ch in "\u2588\u2580" for ch in line]
        bottom = [ch in "\u2588\u2584" for ch in line]
        rows += [top, bottom]
    scale, border = 8, 0
    width = len(rows[0]) + 2 * border
    height = len(rows) + 2 * border
    pixels = bytearray()
    for y in range(height * scale):
        r = y // scale - border
        for x in range(width * scale):
            c = x // scale - border
            light = True if not (0 <= r < len(rows) and 0 <= c < len(rows[0])) else rows[r][c]
            pixels.append(255 if light else 0)
    img = tmp_path / "qr.pgm"
    img.write_bytes(f"P5 {width * scale} {height * scale} 255\n".encode() + bytes(pixels))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(img)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) missing: run scripts/deps.sh")
def test_the_qr_code_sent_in_the_conversation_decodes_to_the_address(tmp_path, strict, in_namespace):
    name = unique("qr")
    w = world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=device_browser(name), service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        info = a.messages(pc.PAM_TEXT_INFO)[0]
        complete = f"{strict.issuer}/device?user_code={user_code(a)}"
        assert complete in info.split("\n")
        block = qr_block(info)
        assert decode_qr(block, tmp_path) == complete
        # ISO/IEC 18004: a quiet zone of 4 light modules on every side (the
        # last line's lower half, below an odd number of rows, is the terminal's).
        rows = modules(block)
        size = len(block[0])
        assert (size - 8) % 4 == 1  # a QR version's width: 17 + 4 * version
        rows = rows[:size]
        assert all(rows[r] == [True] * size for r in (0, 1, 2, 3, size - 4, size - 3, size - 2, size - 1))
        assert all(row[:4] == [True] * 4 and row[-4:] == [True] * 4 for row in rows)
        assert not all(rows[4][4:-4])  # the code itself begins right after the zone (a finder pattern)
    finally:
        w.stop()


def test_device_grant_denied(tmp_path, strict, in_namespace):
    name = unique("deny")
    w = world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, [""], browser=device_browser(name, deny=True), service="sshd")
        assert codes == [pc.PAM_AUTH_ERR]
        assert a.messages(pc.PAM_ERROR_MSG)[0] == "The sign-in was cancelled or denied at Demo IdP."
        assert passwd_entry(name) is None
    finally:
        w.stop()


def test_device_code_expired(tmp_path, in_namespace):
    strict = StrictIdP(device_lifetime=2)
    name = unique("exp")
    w = world(tmp_path, strict, name)
    try:
        codes, a = w.login(name, [""], browser=lambda url: None, service="sshd")
        assert codes == [pc.PAM_AUTH_ERR]
        assert "The code expired before the sign-in finished" in a.messages(pc.PAM_ERROR_MSG)[0]
    finally:
        w.stop()
        strict.stop()


def test_pending_then_slow_down_then_approved(tmp_path, in_namespace):
    polls = []

    class SlowingIdP(StrictIdP):
        def _device_grant(self, client, form):
            polls.append(time.time())
            if len(polls) == 2:
                raise OAuthError("slow_down", "polling too fast")
            return super()._device_grant(client, form)

    strict = SlowingIdP(device_interval=1)
    name = unique("slow")
    w = world(tmp_path, strict, name)

    def approve_later(url):
        if "user_code=" in url:
            code = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["user_code"][0]
            threading.Timer(2.5, strict.approve_device, (code, name)).start()

    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=approve_later, service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        assert len(polls) >= 3
        assert gaps[0] >= 0.9  # the server's interval (1 s) between polls
        assert gaps[1] >= 5.9  # slow_down: interval + 5 s (RFC 8628 §3.5)
    finally:
        w.stop()
        strict.stop()


def test_paste_back(tmp_path, strict, in_namespace):
    name = unique("paste")
    w = world(tmp_path, strict, name)
    landed = {}

    def browser_that_cannot_reach_the_machine(url):
        r = browser_sign_in(url, name, follow=False)
        landed["url"] = r.headers["location"]

    class Paster:
        def __init__(self):
            self.answers = [PASSCODE, PASSCODE]

        def __call__(self, style, text):
            if style == pc.PAM_TEXT_INFO and "http" in text:
                url = next(line for line in text.split("\n") if line.startswith("http"))
                browser_that_cannot_reach_the_machine(url)
            if style in (pc.PAM_PROMPT_ECHO_ON, pc.PAM_PROMPT_ECHO_OFF):
                return landed["url"] if text.startswith("Press Enter") else self.answers.pop(0)

    try:
        codes, transcript = pc.authenticate(w.confdir, "login", name, Paster(), steps=("authenticate", "acct_mgmt"))
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], transcript
        assert "paste the address it ends on" in transcript[0][1]
        assert passwd_entry(name) is not None
    finally:
        w.stop()


def test_flows_are_chosen_per_service(tmp_path, strict, in_namespace):
    name = unique("svc")
    w = world(tmp_path, strict, name, config={"service": {"login": {"flows": ["device"]}}})
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=device_browser(name), service="login")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert strict.counts["device_authorization"] == 1
    finally:
        w.stop()


def test_ssh_falls_back_to_loopback_when_the_idp_has_no_device_grant(tmp_path, idp_mock, in_namespace):
    name = unique("fall")
    idp_mock.set_user(name, email=f"{name}@example.test")
    w = World(tmp_path, idp_mock, [name])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert "device grant skipped: the IdP has no device authorization endpoint" in w.fedlogind.log_text()
    finally:
        w.stop()
