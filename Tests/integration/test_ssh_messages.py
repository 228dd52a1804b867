"""What a person sees over OpenSSH at a first login, through Debian's sshd
with the fedlogin stack: the keyboard-interactive requests and the text
printed when the session starts. sshd keeps PAM's information text until the
next prompt; text left after the last prompt (the repeated passcode) would be
sent as the userauth banner and printed again as a terminal session starts,
so the welcome is a SESSION_INFO: pam_fedlogin keeps it in the PAM
environment and shows it when the session opens, once. The welcome greets by
the directory's display name (the account's GECOS), not the IdP's name
claim."""
import time

import paramiko
import pytest

import nested
from sshd import SignInAnswerer, socket_dir, world_ssh
from strict_idp import browser_sign_in
from world import World, unique

pytestmark = [
    pytest.mark.namespace,
    pytest.mark.skipif(not nested.nss_module().exists(), reason=f"{nested.nss_module()} is not built"),
]

PASSCODE = "Correct-Horse9"


def device_browser(sub):
    def browse(url):
        if "user_code=" in url:
            return browser_sign_in(url, sub)
    return browse


def pty_login(port, user, answer_fn, timeout=120):
    """A keyboard-interactive login, then a login shell on a pseudo-terminal
    (as `ssh USER@HOST` gives): returns (the requests' texts, the userauth
    banner, the session's output)."""
    texts = []

    def handler(title, instructions, prompts):
        texts.extend(t for t in (title, instructions) if t)
        answers = []
        for text, echo in prompts:
            texts.append(text)
            answers.append(answer_fn(title, instructions, text, echo))
        return answers

    t = paramiko.Transport(("127.0.0.1", port))
    try:
        t.start_client(timeout=timeout)
        t.auth_interactive(user, handler)
        chan = t.open_session(timeout=timeout)
        chan.settimeout(timeout)
        chan.get_pty()
        chan.invoke_shell()
        chan.sendall(b"echo session-$((1+1)) held=${FEDLOGIN_SESSION_INFO:-none}; exit\n")
        out = b""
        deadline = time.monotonic() + timeout
        while not chan.exit_status_ready() or chan.recv_ready():
            if time.monotonic() > deadline:
                raise TimeoutError(out)
            if chan.recv_ready():
                out += chan.recv(65536)
            else:
                time.sleep(0.01)
        return texts, (t.get_banner() or b"").decode(errors="replace"), out.decode(errors="replace")
    finally:
        t.close()


def test_the_welcome_greets_by_the_display_name_once_as_the_session_starts(tmp_path, strict, in_namespace):
    name = unique("welc")
    strict.add_user(name, email=f"{name}@example.test", name="Claim Name")
    w = World(tmp_path, strict, [{"username": name, "display_name": "Wendy Welcome"}],
              config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}})
    try:
        with world_ssh(w) as sshd:
            texts, banner, out = pty_login(sshd.port, name, SignInAnswerer(device_browser(name), ["", PASSCODE, PASSCODE]))
            # Neither in a keyboard-interactive request nor in the userauth
            # banner: printed once as the session starts, and the session's
            # environment does not hold it.
            assert not any("Welcome" in t for t in texts), texts
            assert "Welcome" not in banner, banner
            assert out.count("Welcome, Wendy Welcome. Your account ") == 1, out
            assert "session-2 held=none" in out, out
    finally:
        w.stop()


def test_the_welcome_is_shown_once_by_the_openssh_client(tmp_path, strict, in_namespace):
    import shutil
    import subprocess
    import sys
    import threading
    from pathlib import Path

    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client is not installed")
    name = unique("welk")
    strict.add_user(name, email=f"{name}@example.test", name="Claim Name")
    w = World(tmp_path, strict, [{"username": name, "display_name": "Wendy Welcome"}],
              config={"daemon": {"socket": str(socket_dir() / "fedlogind.sock")}})
    stop = threading.Event()

    def approve():  # the person on their phone, once the code is out
        while not stop.wait(0.05):
            grants = list(strict._devices.values())
            if grants:
                strict.approve_device(grants[0].user_code, name)
                return

    try:
        with world_ssh(w) as sshd:
            threading.Thread(target=approve, daemon=True).start()
            driver = Path(__file__).resolve().parents[1] / "system" / "driver.py"
            opts = ["-F", "/dev/null", "-p", str(sshd.port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=keyboard-interactive",
                    "-o", "PubkeyAuthentication=no"]  # LogLevel INFO, the default: banners shown
            r = subprocess.run([sys.executable, str(driver), "tty", "--timeout", "60",
                                "--expect", "Press Enter once you have signed in:", "--send", "",
                                "--expect", "Choose a passcode for", "--secret", PASSCODE,
                                "--expect", "Repeat the passcode:", "--secret", PASSCODE,
                                "--expect", r"\$ $", "--send", "exit",
                                "--", "ssh", *opts, f"{name}@127.0.0.1"], capture_output=True, text=True, timeout=180)
            print(r.stdout)
            assert r.returncode == 0, r.stdout + r.stderr
            assert r.stdout.count("Welcome, Wendy Welcome.") == 1, r.stdout
    finally:
        stop.set()
        w.stop()
