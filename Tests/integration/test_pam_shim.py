"""pam_fedlogin.so through the real libpam, against fake fedlogind daemons.

Each test writes PAM service files into a folder of its own (no /etc/pam.d
change), starts a fake daemon on a Unix socket, and runs a PAM transaction
through harness/pamclient.py (pam_start_confdir). The fake daemon speaks the
protocol with the encoder of Tests/fixtures/protocol/make_fixtures.py.

Needs root (the module only talks to a root-owned socket whose peer is root;
conftest.py skips these tests otherwise) and a built module:
`make -C pam OUT=$PWD/out` (or FEDLOGIN_OUT=/abs/out). Writes nothing
outside its temporary folders, so it runs inside or outside
run-in-namespace.sh.
"""
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = Path(os.environ.get("FEDLOGIN_OUT", REPO / "out")).resolve()
MODULE = OUT / "pam_fedlogin.so"
SYSLOG_CAPTURE = OUT / "syslog_capture.so"

sys.path.insert(0, str(HERE / "harness"))
import pamclient as pc  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "make_fixtures", REPO / "Tests" / "fixtures" / "protocol" / "make_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
encode, raw_frame = fx.encode, fx.raw_frame

PAM_SILENT = 0x8000
SLACK = 5.0  # seconds a fail-closed case may take beyond its configured bound
SERVICE = "fltest"
USER = "alice"
TTY = "pts/7"
RHOST = "198.51.100.7"

@pytest.fixture(scope="session", autouse=True)
def built_module():
    assert MODULE.is_file(), f"{MODULE} missing: run make -C pam OUT={OUT}"


# --- fake fedlogind -------------------------------------------------------

def decode(body):
    """(type name, fields) of a frame body; str fields as bytes."""
    assert body[0] == fx.VERSION, f"version {body[0]}"
    name, sig = fx.SCHEMA[body[1]]
    pos, fields = 2, []
    for kind in sig:
        if kind == "s":
            (n,) = struct.unpack_from(">H", body, pos)
            fields.append(bytes(body[pos + 2:pos + 2 + n]))
            pos += 2 + n
        elif kind == "b":
            fields.append(body[pos])
            pos += 1
        else:
            (v,) = struct.unpack_from(">I", body, pos)
            fields.append(v)
            pos += 4
    assert pos == len(body), "trailing bytes"
    return name, fields


class Peer:
    """One accepted connection, as the daemon sees it."""

    def __init__(self, conn):
        self.conn = conn
        conn.settimeout(10)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise EOFError("client closed the connection")
            buf += chunk
        return buf

    def recv(self):
        (n,) = struct.unpack(">I", self._exact(4))
        return decode(self._exact(n))

    def expect(self, name):
        got, fields = self.recv()
        assert got == name, f"expected {name}, got {got}"
        return fields

    def send(self, type_name, *fields):
        self.conn.sendall(encode(type_name, *fields))

    def raw(self, data):
        self.conn.sendall(data)

    def wait_closed(self, limit=10):
        """Waits until the client closes; returns the bytes it sent meanwhile."""
        self.conn.settimeout(limit)
        got = b""
        try:
            while chunk := self.conn.recv(65536):
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return got


class FakeDaemon:
    """Listens on `path`; runs `script(peer)` for each connection, in a thread."""

    def __init__(self, path, script):
        self.path = str(path)
        self.script = script
        self.connections = 0
        self.errors = []
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    self.script(Peer(conn))
                except Exception as e:  # reported by check()
                    self.errors.append(e)

    def stop(self):
        """Stops listening once the connection being served is done."""
        self._stop.set()
        self._thread.join(15)
        self.sock.close()

    def check(self):
        """Stops, then raises the first error a script raised."""
        self.stop()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def sockdir():
    # Short and private: sun_path holds at most 107 bytes.
    d = tempfile.mkdtemp(prefix="fl-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(sockdir):
    """daemon(script) starts a fake daemon on sockdir/d.sock."""
    started = []

    def start(script):
        d = FakeDaemon(sockdir / "d.sock", script)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def write_services(confdir, sock, *flags, **opts):
    """Service files `fltest` (and its copy `other`) with every stack
    `required` on the module, and `flstatus`, whose stack shows PAM_IGNORE
    apart: success ends the stack, IGNORE falls through to pam_echo (which
    shows "after-ignore"), any failure code is returned as is."""
    confdir.mkdir(exist_ok=True)
    args = " ".join([f"socket={sock}"] + [f"{k}={v}" for k, v in opts.items()] + list(flags))
    line = f"{MODULE} {args}"
    text = "".join(f"{stack:<9}required {line}\n" for stack in ("auth", "account", "password", "session"))
    (confdir / SERVICE).write_text(text)
    (confdir / "other").write_text(text)
    (confdir / "flstatus").write_text(
        f"auth     [success=done ignore=ignore default=die] {line}\n"
        "auth     optional pam_echo.so after-ignore\n"
        f"account  [success=done ignore=ignore default=die] {line}\n"
        "account  optional pam_echo.so after-ignore\n")
    return confdir


@pytest.fixture
def pamconf(tmp_path, sockdir):
    """pamconf(*flags, **opts) writes the service files for sockdir/d.sock."""
    def write(*flags, sock=None, **opts):
        opts.setdefault("timeout", 3000)
        opts.setdefault("connect_timeout", 1000)
        return write_services(tmp_path / "pam.d", sock or sockdir / "d.sock", *flags, **opts)
    return write


def run(confdir, answer=pc.scripted([]), steps=("authenticate",), service=SERVICE):
    """Runs PAM steps; returns (codes, transcript, seconds)."""
    start = time.monotonic()
    codes, transcript = pc.authenticate(confdir, service, USER, answer, steps=steps, tty=TTY, rhost=RHOST)
    return codes, transcript, time.monotonic() - start


# --- relaying -------------------------------------------------------------

def test_relays_messages_and_prompts(daemon, pamconf):
    secret = "s3cret ünïcødé 🔑 with spaces"
    long_answer = "x" * fx.MAX_STR
    seen = {}

    def script(p):
        seen["request"] = p.expect("AUTHENTICATE")
        p.send("INFO", "Open https://idp.example/device and enter ABCD-EFGH")
        p.send("ERROR", "Previous attempt failed")
        p.send("PROMPT_ECHO_OFF", "Passwort für alice: ")
        seen["a1"] = p.expect("ANSWER")
        p.send("PROMPT_ECHO_ON", "Code: ")
        seen["a2"] = p.expect("ANSWER")
        p.send("PROMPT_ECHO_ON", "Long: ")
        seen["a3"] = p.expect("ANSWER")
        p.send("RESULT", 0, "ok")

    d = daemon(script)
    codes, transcript, _ = run(pamconf(), pc.scripted([secret, "", long_answer]))
    d.check()
    assert codes == [pc.PAM_SUCCESS]
    assert seen["request"] == [USER.encode(), SERVICE.encode(), TTY.encode(), RHOST.encode(), b""]
    assert transcript == [
        (pc.PAM_TEXT_INFO, "Open https://idp.example/device and enter ABCD-EFGH"),
        (pc.PAM_ERROR_MSG, "Previous attempt failed"),
        (pc.PAM_PROMPT_ECHO_OFF, "Passwort für alice: "),
        (pc.PAM_PROMPT_ECHO_ON, "Code: "),
        (pc.PAM_PROMPT_ECHO_ON, "Long: "),
    ]
    assert seen["a1"] == [secret.encode()]
    assert seen["a2"] == [b""]
    assert seen["a3"] == [long_answer.encode()]


def test_message_text_is_not_a_format_string(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        p.send("INFO", "100% %s %n %x")
        p.send("RESULT", 0, "")

    daemon(script)
    codes, transcript, _ = run(pamconf())
    assert codes == [pc.PAM_SUCCESS]
    assert transcript == [(pc.PAM_TEXT_INFO, "100% %s %n %x")]


STATUS_CODES = [
    (0, pc.PAM_SUCCESS),
    (1, None),  # PAM_IGNORE: libpam never returns it to the application; see flstatus
    (2, pc.PAM_USER_UNKNOWN),
    (3, pc.PAM_AUTH_ERR),
    (4, pc.PAM_AUTHINFO_UNAVAIL),
    (5, pc.PAM_PERM_DENIED),
    (6, pc.PAM_ACCT_EXPIRED),
    (7, pc.PAM_NEW_AUTHTOK_REQD),
    (8, pc.PAM_AUTHTOK_ERR),
]


@pytest.mark.parametrize("step,request_type", [("authenticate", "AUTHENTICATE"), ("acct_mgmt", "ACCT_MGMT")])
@pytest.mark.parametrize("status,code", STATUS_CODES, ids=[f"status{s}" for s, _ in STATUS_CODES])
def test_result_status_maps_to_pam_code(daemon, pamconf, step, request_type, status, code):
    def script(p):
        p.expect(request_type)
        p.send("RESULT", status, f"reason {status}")

    d = daemon(script)
    codes, transcript, _ = run(pamconf(), steps=(step,), service="flstatus")
    d.check()
    if status == 1:
        # The module said PAM_IGNORE: the stack went on to pam_echo.
        assert codes == [pc.PAM_SUCCESS]
        assert transcript == [(pc.PAM_TEXT_INFO, "after-ignore")]
    else:
        assert codes == [code]
        assert transcript == []


def test_acct_mgmt_sends_user_and_service(daemon, pamconf):
    seen = {}

    def script(p):
        seen["request"] = p.expect("ACCT_MGMT")
        p.send("INFO", "Your account expires in 3 days")
        p.send("RESULT", 0, "")

    d = daemon(script)
    codes, transcript, _ = run(pamconf(), steps=("acct_mgmt",))
    d.check()
    assert codes == [pc.PAM_SUCCESS]
    assert seen["request"] == [USER.encode(), SERVICE.encode()]
    assert transcript == [(pc.PAM_TEXT_INFO, "Your account expires in 3 days")]


def test_chauthtok_asks_the_daemon_in_each_pass(daemon, pamconf):
    """The preliminary pass asks whether the change is fedlogind's
    (CHAUTHTOK_PRELIM); the update pass does it (CHAUTHTOK)."""
    seen = []

    def script(p):
        kind, fields = p.recv()
        seen.append((kind, fields))
        if kind == "CHAUTHTOK":
            p.send("PROMPT_ECHO_OFF", "New password: ")
            seen.append(p.expect("ANSWER"))
        p.send("RESULT", 0, "")

    d = daemon(script)
    codes, transcript, _ = run(pamconf(), pc.scripted(["n3w"]), steps=("chauthtok",))
    d.check()
    assert codes == [pc.PAM_SUCCESS]
    assert d.connections == 2
    assert seen == [("CHAUTHTOK_PRELIM", [USER.encode(), SERVICE.encode()]),
                    ("CHAUTHTOK", [USER.encode(), SERVICE.encode()]), [b"n3w"]]
    assert transcript == [(pc.PAM_PROMPT_ECHO_OFF, "New password: ")]


def test_a_result_sent_before_the_answer_is_read(daemon, pamconf, tmp_path):
    """fedlogind gave up on a prompt (its timeout), sent RESULT and closed
    before the user answered: the answer cannot be sent, and the module
    reports the RESULT it finds (AUTHTOK_ERR), not a lost connection."""
    sent = threading.Event()

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Current passcode: ")
        p.send("RESULT", 8, "no answer within 10 s")
        p.conn.shutdown(socket.SHUT_RDWR)
        sent.set()

    def late(style, text):
        sent.wait(10)
        time.sleep(0.2)  # the close has reached the module's socket
        return "too-late"

    d = daemon(script)
    codes, _, _ = run(pamconf(), late)
    d.check()
    assert codes == [pc.PAM_AUTHTOK_ERR]


def test_success_after_an_answer_that_was_not_sent_is_not_believed(daemon, pamconf):
    sent = threading.Event()

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Password: ")
        p.send("RESULT", 0, "welcome")
        p.conn.shutdown(socket.SHUT_RDWR)
        sent.set()

    def late(style, text):
        sent.wait(10)
        time.sleep(0.2)
        return "too-late"

    d = daemon(script)
    codes, _, _ = run(pamconf(), late)
    d.check()
    assert codes == [pc.PAM_AUTHINFO_UNAVAIL]


def test_setcred_and_session_need_no_daemon(pamconf, sockdir):
    codes, _, _ = run(pamconf(), steps=("setcred", "open_session", "close_session"))
    assert codes == [pc.PAM_SUCCESS] * 3


def held_session_info(t):
    return t.getenv("FEDLOGIN_SESSION_INFO")


def test_session_info_is_shown_when_the_session_opens_and_leaves_no_variable(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        p.send("SESSION_INFO", "Welcome, Alice.")
        p.send("SESSION_INFO", "Your account alice is ready.")
        p.send("RESULT", 0, "")

    daemon(script)
    t = pc.Transaction(pamconf(), SERVICE, USER, pc.scripted([]))
    try:
        assert t.run("authenticate") == pc.PAM_SUCCESS
        assert t.transcript == []  # nothing shown during authentication
        assert held_session_info(t) == "Welcome, Alice.\nYour account alice is ready."
        assert t.run("open_session") == pc.PAM_SUCCESS
        assert t.transcript == [(pc.PAM_TEXT_INFO, "Welcome, Alice.\nYour account alice is ready.")]
        assert held_session_info(t) is None  # the session's environment does not hold it
        assert t.run("open_session") == pc.PAM_SUCCESS
        assert len(t.transcript) == 1  # shown once
    finally:
        t.end()


def test_session_info_over_8_kib_is_not_kept_and_silent_keeps_none(daemon, pamconf):
    texts = [["a" * fx.MAX_STR, "b" * fx.MAX_STR], ["hidden"]]  # per connection

    def script(p):
        p.expect("AUTHENTICATE")
        for text in texts.pop(0):
            p.send("SESSION_INFO", text)
        p.send("RESULT", 0, "")

    daemon(script)
    t = pc.Transaction(pamconf(), SERVICE, USER, pc.scripted([]))
    try:
        assert t.run("authenticate") == pc.PAM_SUCCESS
        assert held_session_info(t) == "a" * fx.MAX_STR  # the second would make 8 KiB: dropped
    finally:
        t.end()
    t = pc.Transaction(pamconf(), SERVICE, USER, pc.scripted([]))
    try:
        assert t.run("authenticate", PAM_SILENT) == pc.PAM_SUCCESS
        assert held_session_info(t) is None
        assert t.run("open_session") == pc.PAM_SUCCESS and t.transcript == []
    finally:
        t.end()


def test_silent_flag_hides_messages_but_not_prompts(daemon, pamconf):
    seen = {}

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("INFO", "hidden")
        p.send("ERROR", "hidden too")
        p.send("PROMPT_ECHO_ON", "Code: ")
        seen["answer"] = p.expect("ANSWER")
        p.send("RESULT", 0, "")

    daemon(script)
    t = pc.Transaction(pamconf(), SERVICE, USER, pc.scripted(["42"]))
    try:
        rc = t.run("authenticate", PAM_SILENT)
    finally:
        t.end()
    assert rc == pc.PAM_SUCCESS
    assert t.transcript == [(pc.PAM_PROMPT_ECHO_ON, "Code: ")]
    assert seen["answer"] == [b"42"]


# --- time bounds ----------------------------------------------------------

def test_keepalives_extend_the_wait(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        for _ in range(10):  # 1 s in all, each gap well under timeout=300
            time.sleep(0.1)
            p.send("KEEPALIVE")
        p.send("RESULT", 0, "")

    d = daemon(script)
    codes, _, elapsed = run(pamconf(timeout=300))
    d.check()
    assert codes == [pc.PAM_SUCCESS]
    assert elapsed >= 1.0


def test_max_time_bounds_a_daemon_that_only_sends_keepalives(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        try:
            for _ in range(100):
                time.sleep(0.1)
                p.send("KEEPALIVE")
        except OSError:
            pass  # the client gave up

    daemon(script)
    codes, _, elapsed = run(pamconf(timeout=300, max_time=1))
    assert codes == [pc.PAM_AUTHINFO_UNAVAIL]
    assert 0.9 <= elapsed < 1 + SLACK


def test_max_time_bounds_a_daemon_that_floods_keepalives(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        frame = encode("KEEPALIVE") * 1024
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                p.raw(frame)
        except OSError:
            pass  # the client gave up

    daemon(script)
    codes, _, elapsed = run(pamconf(timeout=300, max_time=1))
    assert codes == [pc.PAM_AUTHINFO_UNAVAIL]
    assert 0.9 <= elapsed < 1 + SLACK


def test_time_in_the_conversation_does_not_count_against_max_time(daemon, pamconf):
    def slow_person(style, text):
        time.sleep(1.5)
        return "typed slowly"

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Password: ")
        p.expect("ANSWER")
        p.send("RESULT", 0, "")

    d = daemon(script)
    codes, _, elapsed = run(pamconf(timeout=3000, max_time=1), slow_person)
    d.check()
    assert codes == [pc.PAM_SUCCESS]
    assert elapsed >= 1.5


# --- fail closed ----------------------------------------------------------

def assert_unavailable(codes, elapsed, bound_s):
    assert codes == [pc.PAM_AUTHINFO_UNAVAIL]
    assert elapsed < bound_s + SLACK


def test_no_socket(pamconf):
    codes, _, elapsed = run(pamconf())
    assert_unavailable(codes, elapsed, 1)


def test_socket_path_is_a_regular_file(pamconf, sockdir):
    (sockdir / "d.sock").write_bytes(b"")
    codes, _, elapsed = run(pamconf())
    assert_unavailable(codes, elapsed, 1)


def test_socket_path_is_a_symlink_to_a_socket(daemon, pamconf, sockdir):
    d = daemon(lambda p: p.send("RESULT", 0, ""))
    (sockdir / "link.sock").symlink_to(sockdir / "d.sock")
    codes, _, elapsed = run(pamconf(sock=sockdir / "link.sock"))
    assert_unavailable(codes, elapsed, 1)
    assert d.connections == 0


def test_socket_owned_by_non_root(pamconf, sockdir):
    path = sockdir / "d.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(8)
        os.chown(path, 65534, 65534)
        codes, _, elapsed = run(pamconf())
        assert_unavailable(codes, elapsed, 1)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # the module never connected


def listen_as_nobody(sock, ready_w, report_w):
    """In a forked child: listen on `sock` as uid 65534 (SO_PEERCRED of a
    client is the listener's credentials at listen() time), accept one
    connection and report how many bytes the client sent."""
    try:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        sock.listen(4)
        os.write(ready_w, b"r")
        sock.settimeout(10)
        conn, _ = sock.accept()
        conn.settimeout(10)
        got = 0
        while chunk := conn.recv(65536):
            got += len(chunk)
        os.write(report_w, str(got).encode())
    finally:
        os._exit(0)


def test_peer_not_root(pamconf, sockdir):
    # The socket file is root's, but the process listening on it is not.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sockdir / "d.sock"))
    ready_r, ready_w = os.pipe()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        listen_as_nobody(sock, ready_w, report_w)
    try:
        sock.close()
        os.close(ready_w)
        os.close(report_w)
        assert os.read(ready_r, 1) == b"r"
        codes, _, elapsed = run(pamconf())
        assert_unavailable(codes, elapsed, 1)
        assert os.read(report_r, 32) == b"0"  # nothing was sent to it
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(report_r)


def test_connect_timeout_when_the_backlog_is_full(pamconf, sockdir):
    path = sockdir / "d.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(0)  # never accepted: one queued connection fills it
        fillers = []
        try:
            while True:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                fillers.append(s)
                s.connect(str(path))
        except BlockingIOError:
            pass
        try:
            codes, _, elapsed = run(pamconf(connect_timeout=300, timeout=30000))
            assert_unavailable(codes, elapsed, 0.3)
            assert elapsed >= 0.25
        finally:
            for s in fillers:
                s.close()


def test_daemon_accepts_but_never_answers(daemon, pamconf):
    daemon(lambda p: p.wait_closed())
    codes, _, elapsed = run(pamconf(timeout=300))
    assert_unavailable(codes, elapsed, 0.3)
    assert elapsed >= 0.25


def test_daemon_stalls_inside_a_frame(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        p.raw(encode("INFO", "hello")[:7])
        p.wait_closed()

    daemon(script)
    codes, _, elapsed = run(pamconf(timeout=300))
    assert_unavailable(codes, elapsed, 0.3)


def test_daemon_stops_answering_after_a_prompt(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_ON", "Code: ")
        p.expect("ANSWER")
        p.wait_closed()

    daemon(script)
    codes, _, elapsed = run(pamconf(timeout=300), pc.scripted(["1"]))
    assert_unavailable(codes, elapsed, 0.3)


def test_daemon_closes_before_answering(daemon, pamconf):
    daemon(lambda p: None)
    codes, _, elapsed = run(pamconf())
    assert_unavailable(codes, elapsed, 3)


def test_daemon_closes_mid_conversation(daemon, pamconf):
    def script(p):
        p.expect("AUTHENTICATE")
        p.send("INFO", "working on it")

    daemon(script)
    codes, transcript, elapsed = run(pamconf())
    assert_unavailable(codes, elapsed, 3)
    assert transcript == [(pc.PAM_TEXT_INFO, "working on it")]


BAD_FRAMES = {
    "truncated_str": raw_frame(bytes([1, 0x81]) + struct.pack(">H", 10) + b"hello"),
    "trailing_byte": raw_frame(encode("RESULT", 0, "ok")[4:] + b"\x00"),
    "nul_in_prompt": encode("PROMPT_ECHO_OFF", b"Pass\x00word: "),
    "string_over_4096": encode("INFO", "a" * (fx.MAX_STR + 1)),
    "length_0": struct.pack(">I", 0),
    "length_1": raw_frame(b"\x01"),
    "wrong_version": encode("RESULT", 0, "ok", version=2),
    "unknown_type": raw_frame(bytes([1, 0x87])),
    "unknown_status_9": encode("RESULT", 9, "nine"),
    "unknown_status_255": encode("RESULT", 255, ""),
    "client_type_from_daemon": encode("AUTHENTICATE", "a", "b", "c", "d", "e"),
    "nss_reply_to_pam": encode("NSS_NOTFOUND"),
    "control_reply_to_pam": encode("CONTROL_REPLY", 1, "{}"),
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_malformed_or_unexpected_frame(daemon, pamconf, frame):
    def script(p):
        p.expect("AUTHENTICATE")
        p.raw(frame)
        p.wait_closed()

    daemon(script)
    # timeout is twice the bound: only a rejection on sight passes.
    codes, transcript, elapsed = run(pamconf(timeout=int(2 * SLACK * 1000)))
    assert_unavailable(codes, elapsed, 0)
    assert transcript == []


@pytest.mark.parametrize("length", [fx.MAX_FRAME + 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_oversized_length_is_rejected_without_reading_a_body(daemon, pamconf, length):
    def script(p):
        p.expect("AUTHENTICATE")
        p.raw(struct.pack(">I", length))  # and no body: a reader waiting for one hangs
        p.wait_closed()

    daemon(script)
    # timeout is twice the bound: only a rejection on sight passes.
    codes, _, elapsed = run(pamconf(timeout=int(2 * SLACK * 1000)))
    assert_unavailable(codes, elapsed, 0)


def test_conversation_failure(daemon, pamconf):
    seen = {}

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Password: ")
        seen["after"] = p.wait_closed()

    d = daemon(script)
    codes, transcript, elapsed = run(pamconf(), lambda style, text: None)
    d.check()
    assert codes == [pc.PAM_CONV_ERR]
    assert elapsed < SLACK
    assert transcript == [(pc.PAM_PROMPT_ECHO_OFF, "Password: ")]
    assert seen["after"] == b""  # no ANSWER went out


def test_answer_too_long_for_the_protocol_is_not_sent(daemon, pamconf):
    seen = {}

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Password: ")
        seen["after"] = p.wait_closed()

    d = daemon(script)
    codes, _, elapsed = run(pamconf(), pc.scripted(["y" * (fx.MAX_STR + 1)]))
    d.check()
    assert_unavailable(codes, elapsed, 0)
    assert seen["after"] == b""


def test_user_name_too_long_for_the_protocol(daemon, pamconf):
    d = daemon(lambda p: p.send("RESULT", 0, ""))
    confdir = pamconf()
    codes, _ = pc.authenticate(confdir, SERVICE, "u" * (fx.MAX_STR + 1), pc.scripted([]))
    assert codes == [pc.PAM_AUTHINFO_UNAVAIL]
    assert d.connections == 0


# --- logging --------------------------------------------------------------

RUN_IN_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import pamclient as pc
confdir, answer = sys.argv[2], sys.argv[3]
user, tty, rhost = (bytes.fromhex(a).decode() for a in sys.argv[4:7])
codes, _ = pc.authenticate(confdir, "fltest", user, pc.scripted([answer]), tty=tty, rhost=rhost)
print(json.dumps(codes))
"""


def run_logged(confdir, answer, log, user=USER, tty=TTY, rhost=RHOST):
    """Runs authenticate in a child whose syslog() lines go to `log`."""
    env = dict(os.environ, LD_PRELOAD=str(SYSLOG_CAPTURE), FEDLOGIN_SYSLOG_CAPTURE=str(log))
    out = subprocess.run([sys.executable, "-c", RUN_IN_CHILD, str(HERE / "harness"), str(confdir), answer,
                          *(v.encode().hex() for v in (user, tty, rhost))],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_audit_lines_and_no_secret_in_the_log(daemon, pamconf, sockdir, tmp_path):
    assert SYSLOG_CAPTURE.is_file(), f"{SYSLOG_CAPTURE} missing: run make -C pam OUT={OUT}"
    secret = "correct-horse-battery-staple"
    results = iter([(0, "welcome"), (3, "code expired")])

    def script(p):
        p.expect("AUTHENTICATE")
        p.send("PROMPT_ECHO_OFF", "Password: ")
        assert p.expect("ANSWER") == [secret.encode()]
        status, reason = next(results)
        p.send("RESULT", status, reason)

    d = daemon(script)
    confdir = pamconf("debug")
    log = tmp_path / "syslog"
    assert run_logged(confdir, secret, log) == [pc.PAM_SUCCESS]
    assert run_logged(confdir, secret, log) == [pc.PAM_AUTH_ERR]
    d.stop()
    (sockdir / "d.sock").unlink()
    assert run_logged(confdir, secret, log) == [pc.PAM_AUTHINFO_UNAVAIL]  # no daemon now
    d.check()

    text = log.read_text()
    assert secret not in text
    who = "user=alice service=fltest tty=pts/7 rhost=198.51.100.7"
    lines = text.splitlines()
    assert f"6\tpam_fedlogin(fltest:auth): authentication success; {who}" in lines
    assert (f"5\tpam_fedlogin(fltest:auth): authentication failure; {who} "
            "status=AUTH_ERR reason=code expired") in lines
    assert any(line.startswith("3\tpam_fedlogin(fltest:auth): cannot stat ") and
               line.endswith(": No such file or directory") for line in lines)
    assert any("authentication failure; " + who + " error=" in line for line in lines)
    assert any("received PROMPT_ECHO_OFF" in line for line in lines)  # debug is on


def test_log_lines_show_control_characters_escaped(daemon, pamconf, tmp_path):
    """A user name, tty, rhost and the daemon's reason with ESC, BEL and
    newlines: the audit line stays one line, with each shown escaped."""
    assert SYSLOG_CAPTURE.is_file(), f"{SYSLOG_CAPTURE} missing: run make -C pam OUT={OUT}"
    user = "mal\x1b[31mlory\nfedlogind: authentication success; user=root"

    def script(p):
        fields = p.expect("AUTHENTICATE")
        assert fields[0] == user.encode()  # sent to fedlogind as it is: only the log escapes it
        p.send("RESULT", 3, "bad\x1b[2Jreason\r\nnext line\\x41 \u009b tail")

    d = daemon(script)
    log = tmp_path / "syslog"
    codes = run_logged(pamconf(), "", log, user=user, tty="pts/7\x1b]0;x\x07", rhost="198.51.100.7\nforged=1")
    d.check()
    assert codes == [pc.PAM_AUTH_ERR]
    text = log.read_text()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\u009b" not in text
    lines = text.splitlines()
    assert lines == [(
        "5\tpam_fedlogin(fltest:auth): authentication failure; "
        "user=mal\\x1b[31mlory\\nfedlogind: authentication success; user=root "
        "service=fltest tty=pts/7\\x1b]0;x\\x07 rhost=198.51.100.7\\nforged=1 status=AUTH_ERR "
        "reason=bad\\x1b[2Jreason\\r\\nnext line\\\\x41 \\xc2\\x9b tail")]


# --- the shared object ----------------------------------------------------

@pytest.mark.unprivileged
def test_exports_only_pam_entry_points():
    out = subprocess.run(["nm", "-D", "--defined-only", str(MODULE)], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert names == {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt", "pam_sm_chauthtok",
                     "pam_sm_open_session", "pam_sm_close_session"}


@pytest.mark.unprivileged
def test_links_only_libc_and_libpam():
    out = subprocess.run(["readelf", "-d", str(MODULE)], capture_output=True, text=True, check=True).stdout
    needed = {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    assert needed == {"libc.so.6", "libpam.so.0"}
    assert "RPATH" not in out and "RUNPATH" not in out
    ldd = subprocess.run(["ldd", str(MODULE)], capture_output=True, text=True, check=True).stdout
    assert "swift" not in ldd.lower()
