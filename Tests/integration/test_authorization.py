"""Every privileged request from a non-root peer is refused, and a used
loopback callback cannot be replayed."""
import json
import struct
import subprocess

import httpx
import pytest

import pamclient as pc
import sandbox
from strict_idp import StrictIdP, browser_sign_in
from wire import NOBODY, as_nobody, exchange, frame
from world import World, unique

pytestmark = pytest.mark.namespace
PASSCODE = "Correct-Horse9"
@pytest.fixture
def world(tmp_path, in_namespace):
    idp = StrictIdP()
    name = unique("auth")
    idp.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, idp, [name], config={"daemon": {"socket": f"/run/fedlogin-test/{name}.sock"}})
    w.name = name
    w.strict = idp
    yield w
    w.stop()
    idp.stop()


@pytest.mark.parametrize("msg", ["acct_mgmt", "chauthtok", "chauthtok_prelim", "auth_failed"])
def test_pam_requests_from_a_non_root_peer_are_refused(world, msg):
    code, fields = {"acct_mgmt": (0x03, ("root", "login")), "chauthtok": (0x04, ("root", "login")),
                    "chauthtok_prelim": (0x07, ("root", "passwd")),
                    "auth_failed": (0x05, ("root", "login", "tty1", "", ""))}[msg]
    body = as_nobody(world.socket, frame(code, *fields))
    assert body[:3] == bytes([1, 0x86, 5])  # RESULT PERM_DENIED


@pytest.mark.parametrize("op", [["users"], ["outbox"], ["outbox", "deliver"]])
def test_control_requests_for_non_public_data_need_root(world, op):
    out = subprocess.run([*NOBODY, str(sandbox.bin_dir() / "fedloginctl"), *op, "--socket", str(world.socket)],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "only root may" in out.stderr
    # Public status is fine for anyone.
    ok = subprocess.run([*NOBODY, str(sandbox.bin_dir() / "fedloginctl"), "status", "--socket", str(world.socket)],
                        capture_output=True, text=True, timeout=20)
    assert ok.returncode == 0, ok.stderr


def test_the_directory_gives_hashes_and_reports_to_root_only(tmp_path, in_namespace):
    name = unique("dir")
    sock = f"/run/fedlogin-test/{name}-dir.sock"
    directory = sandbox.write_directory(tmp_path / "directory.json",
                                        [{"username": name, "password_hash": "$y$j9T$secret$hash"}])
    d = sandbox.Process("directoryd", [sandbox.bin_dir() / "fedlogin-directoryd", "serve", "--socket", sock,
                                       "--directory", directory, "--state-dir", tmp_path / "dstate"], tmp_path)
    try:
        d.wait_for_socket(sock)

        def ask(req, nobody):
            body = json.dumps(req).encode()
            data = struct.pack(">I", len(body)) + body
            return json.loads(as_nobody(sock, data) if nobody else exchange(sock, data))

        assert ask({"op": "lookup", "user": name}, nobody=False)["user"]["password_hash"] == "$y$j9T$secret$hash"
        assert ask({"op": "lookup", "user": name}, nobody=True)["user"].get("password_hash") is None
        r = ask({"op": "list_reports"}, nobody=True)
        assert r["ok"] is False and "only root" in r["error"]
        binding = {"key": "k1", "device_id": "d", "username": name, "local_username": name, "uid": 70000,
                   "email": "e", "issuer": "i", "subject": "s", "password_mode": "passcode", "bound_at": "t"}
        r = ask({"op": "report_binding", "binding": binding}, nobody=True)
        assert r["ok"] is False and "only root" in r["error"]
    finally:
        d.stop()


def test_a_used_callback_cannot_be_replayed(world):
    seen = {}

    def browser(url):
        r = browser_sign_in(url, world.name)
        seen["callback"] = str(r.url)
        return r

    codes, a = world.login(world.name, ["", PASSCODE, PASSCODE], browser=browser)
    assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    # The listener of that sign-in is gone; a replay gets nothing.
    with pytest.raises(httpx.HTTPError):
        httpx.get(seen["callback"], trust_env=False, timeout=5)
