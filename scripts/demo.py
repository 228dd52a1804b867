#!/usr/bin/env python3
"""make demo: one sandboxed first login through the real parts.

An OIDC provider (oidc-provider-mock), fedlogin-directoryd with a sample
directory, fedlogind, and the real libpam with pam_fedlogin.so and pam_unix.so
(pam/fedlogin.pam). It runs in a private mount namespace with a copy of /etc,
so the host's accounts and PAM files are never touched, and it leaves nothing
running.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "integration" / "harness"))

if os.environ.get("FEDLOGIN_NAMESPACE") != "1":
    os.execvp("bash", ["bash", str(ROOT / "Tests/integration/run-in-namespace.sh"), sys.executable, *sys.argv])

import pamclient as pc  # noqa: E402
import sandbox  # noqa: E402
from strict_idp import browser_sign_in  # noqa: E402

USER = "alice"
PASSCODE = "Correct-Horse9"
STYLE = {pc.PAM_TEXT_INFO: "info", pc.PAM_ERROR_MSG: "error", pc.PAM_PROMPT_ECHO_ON: "prompt",
         pc.PAM_PROMPT_ECHO_OFF: "prompt (hidden)"}


def say(text=""):
    print(text, flush=True)


def show_conversation(transcript, answers_shown):
    for style, text in transcript:
        label = STYLE.get(style, str(style))
        for i, line in enumerate(text.rstrip("\n").split("\n")):
            say(f"  | {label if i == 0 else '':16} {line}")
        if style in (pc.PAM_PROMPT_ECHO_ON, pc.PAM_PROMPT_ECHO_OFF):
            say(f"  | {'':16} > {answers_shown.pop(0)}")


def main():
    tmp = Path(tempfile.mkdtemp(prefix="fedlogin-demo."))
    procs = []
    try:
        say("== fedlogin demo: a first login in a sandbox\n")
        idp = sandbox.start_mock_idp(tmp)
        procs.append(idp)
        idp.set_user(USER, email="alice@example.test", email_verified=True, name="Alice Example")
        say(f"IdP:        oidc-provider-mock at {idp.issuer} (user sub=alice, email alice@example.test)")

        directory = sandbox.write_directory(
            tmp / "directory.json", [{"username": USER, "display_name": "Alice Example", "groups": ["staff"]}],
            policy={"password_sync": False, "default_idp": "demo", "passcode": {"min_length": 8, "min_classes": 3}},
            devices={"demo-device-1": [USER]})
        directoryd = sandbox.start_directoryd(tmp, directory)
        procs.append(directoryd)
        say(f"Directory:  fedlogin-directoryd serving {directory.name} (policy: password sync = no)")

        config = sandbox.write_config(tmp, {"demo": idp}, daemon={"report_retry_max": 1})
        fedlogind = sandbox.start_fedlogind(tmp, config)
        procs.append(fedlogind)
        confdir = sandbox.make_confdir(tmp, fedlogind.socket)
        say(f"Daemon:     fedlogind, socket {fedlogind.socket}")
        say(f"PAM:        the real libpam with {ROOT / 'pam/fedlogin.pam'} (pam_fedlogin.so, then pam_unix.so)\n")

        say(f"-- 1. {USER} logs in for the first time (the demo plays her browser):")
        answerer = sandbox.sign_in_answerer(lambda url: browser_sign_in(url, USER), ["", PASSCODE, PASSCODE])
        codes, transcript = pc.authenticate(confdir, "login", USER, answerer, steps=("authenticate", "acct_mgmt"))
        answerer.check()
        show_conversation(transcript, ["(Enter)", "*" * len(PASSCODE), "*" * len(PASSCODE)])
        say(f"  PAM result: {', '.join(pc.PAM_SUCCESS == c and 'success' or f'error {c}' for c in codes)}\n")
        if codes != [pc.PAM_SUCCESS, pc.PAM_SUCCESS]:
            raise SystemExit("demo: the first login failed; logs in " + str(tmp))

        entry = subprocess.run(["getent", "passwd", USER], capture_output=True, text=True).stdout.strip()
        say("-- 2. The local account (in this sandbox's /etc):")
        say(f"  passwd: {entry}")
        shadow = next(line for line in Path("/etc/shadow").read_text().splitlines() if line.startswith(USER + ":"))
        say(f"  shadow: {USER}:{shadow.split(':')[1][:12]}... (a yescrypt hash of her passcode)\n")

        say("-- 3. The binding the directory received:")
        for _ in range(50):
            out = subprocess.run([str(sandbox.bin_dir() / "fedlogin-directoryd"), "reports", "--socket",
                                  str(directoryd.socket)], capture_output=True, text=True).stdout.strip()
            if USER in out:
                break
            time.sleep(0.2)
        say("  " + out + "\n")

        say(f"-- 4. fedlogind stops; {USER} logs in again, offline, with her passcode:")
        fedlogind.stop()
        answerer = sandbox.sign_in_answerer(None, [PASSCODE])
        codes, transcript = pc.authenticate(confdir, "login", USER, answerer, steps=("authenticate", "acct_mgmt"))
        show_conversation(transcript, ["*" * len(PASSCODE)])
        say(f"  PAM result: {', '.join(pc.PAM_SUCCESS == c and 'success' or f'error {c}' for c in codes)}\n")
        if codes != [pc.PAM_SUCCESS, pc.PAM_SUCCESS]:
            raise SystemExit("demo: the offline login failed")
        say("Demo complete. Nothing is left running, and the host's /etc was not touched.")
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001
                pass
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
