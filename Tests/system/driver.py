#!/usr/bin/env python3
"""The user's side of the system test, run on the host with the test venv.

    driver.py pam --sub alice --answer '' --answer PASS -- COMMAND...
        Runs COMMAND (pam_client inside the container) and plays the user:
        when a message holds a sign-in address on a line of its own, it acts as
        the browser (POSTs the IdP's sign-in form as `sub` and follows the
        redirects to fedlogind's loopback listener); it answers the prompts
        with the --answer values in order. Prints the conversation and exits
        with COMMAND's status.

    driver.py ssh --port 2200 --user alice --password PASS -- id -un
        A keyboard-interactive SSH login to 127.0.0.1 (paramiko) that answers
        every prompt with PASS and runs the command; prints its output.

    driver.py ssh --port 2200 --user carol --sub carol --answer '' --answer P --answer P -- id -un
        The same for a first login: a sign-in address in the text sshd shows
        with a prompt is opened as the browser (as `sub`), and the prompts
        are answered with the --answer values in order.

    driver.py tty [--sub alice] [--exit N] [--absent REGEX] STEP... -- COMMAND...
        Runs COMMAND on a pseudo-terminal, as a person at a terminal meets it
        (the real ssh client, login(1) through script(1) in the container),
        and plays the steps in order: `--expect REGEX` waits (up to
        --timeout seconds) for REGEX in the output after the last match;
        `--send TEXT` types TEXT and Enter once the program shows its prompt
        (`--secret TEXT` the same, not printed); `--browser` waits for a
        sign-in address on a line of its own and signs in there as `sub`.
        Prints the terminal's output; exits 0 when every step matched, no
        --absent REGEX appeared and COMMAND exited with --exit (default 0).

    driver.py idp-user --issuer URL --sub alice --email alice@example.test
        Sets the claims of a user at oidc-provider-mock (PUT /users/SUB).

The container shares the host's network namespace, so 127.0.0.1 is the same
loopback on both sides.
"""
import argparse
import re
import subprocess
import sys
import urllib.parse

URL_LINE = re.compile(r"^\s*(https?://\S+)\s*$", re.MULTILINE)
STYLES = {"1": "prompt (hidden)", "2": "prompt", "3": "error", "4": "info"}


def browser(url: str, sub: str):
    import httpx

    with httpx.Client(follow_redirects=True, trust_env=False, timeout=30) as client:
        r = client.post(url, data={"sub": sub})
        print(f"  [browser] signed in as {sub}: {r.status_code} from {r.url.copy_with(query=None)}", flush=True)
        return r


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def cmd_pam(a) -> int:
    answers = list(a.answer)
    proc = subprocess.Popen(a.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    failed = False
    for line in proc.stdout:
        line = line.rstrip("\n")
        if not line.startswith("MSG "):
            print(f"  {line}", flush=True)
            continue
        _, style, text = (line.split(" ", 2) + [""])[:3]
        text = unescape(text)
        for i, part in enumerate(text.split("\n")):
            print(f"  | {STYLES.get(style, style) if i == 0 else '':16} {part}", flush=True)
        if style in ("3", "4"):
            for url in URL_LINE.findall(text):
                try:
                    browser(url, a.sub)
                except Exception as e:  # noqa: BLE001 - the login fails and says so
                    print(f"  [browser] failed: {e}", flush=True)
                    failed = True
        elif style in ("1", "2"):
            if not answers:
                print("  [driver] no answer left: ending the conversation", flush=True)
                proc.stdin.close()
                continue
            answer = answers.pop(0)
            print(f"  | {'':16} > {'*' * len(answer) if style == '1' else answer or '(Enter)'}", flush=True)
            proc.stdin.write(answer + "\n")
            proc.stdin.flush()
    rc = proc.wait()
    return 1 if failed and rc == 0 else rc


def cmd_ssh(a) -> int:
    import paramiko

    transport = paramiko.Transport(("127.0.0.1", a.port))
    try:
        transport.start_client(timeout=30)
        prompts_seen = []

        answers = list(a.answer)
        opened = set()

        def handler(title, instructions, prompts):
            prompts_seen.extend(p for p, _ in prompts)
            if a.password is not None:
                return [a.password for _ in prompts]
            for text in [title, instructions] + [p for p, _ in prompts]:
                for url in URL_LINE.findall(text or ""):
                    if url not in opened and a.sub:
                        opened.add(url)
                        browser(url, a.sub)
            if len(answers) < len(prompts):
                raise paramiko.AuthenticationException(f"no answer left for {prompts}")
            return [answers.pop(0) for _ in prompts]

        transport.auth_interactive(a.user, handler)
        if not transport.is_authenticated():
            print("ssh: not authenticated")
            return 1
        chan = transport.open_session(timeout=30)
        chan.exec_command(" ".join(a.command))
        out = b""
        while True:
            data = chan.recv(4096)
            if not data:
                break
            out += data
        status = chan.recv_exit_status()
        print(f"  prompts: {prompts_seen}")
        sys.stdout.write(out.decode(errors="replace"))
        return status
    except paramiko.AuthenticationException as e:
        print(f"ssh: authentication failed: {e}")
        return 1
    finally:
        transport.close()


class Step(argparse.Action):
    """--expect, --send, --secret and --browser, kept in the order given."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None) or []
        steps.append((self.dest, values))
        namespace.steps = steps


def cmd_tty(a) -> int:
    import fcntl
    import os
    import pty
    import select
    import signal
    import struct
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(a.command[0], a.command)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    seen = ""  # the output so far, without carriage returns
    log = []  # the driver's own lines, printed after the output
    eof = False

    def pump(deadline: float) -> bool:
        """Reads what the program wrote until deadline; False at end of output."""
        nonlocal seen, eof
        while not eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return True
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the other side is closed
                data = b""
            if not data:
                eof = True
                break
            seen += data.decode(errors="replace").replace("\r", "")
        return False

    def wait_for(pattern: re.Pattern, what: str, pos: int):
        deadline = time.monotonic() + a.timeout
        while True:
            m = pattern.search(seen, pos)
            if m:
                return m
            if eof or time.monotonic() >= deadline:
                log.append(f"[driver] {'end of output' if eof else f'{a.timeout:g} s passed'} before {what}")
                return None
            pump(min(deadline, time.monotonic() + 0.2))

    ok, pos = True, 0
    for kind, value in getattr(a, "steps", None) or []:
        if kind == "expect":
            m = wait_for(re.compile(value), f"/{value}/", pos)
            if not m:
                ok = False
                break
            log.append(f"[driver] saw /{value}/")
            pos = m.end()
        elif kind == "browser":
            m = wait_for(URL_LINE, "a sign-in address", pos)
            if not m:
                ok = False
                break
            pos = m.end()
            try:
                r = browser(m.group(1), a.sub)
                log.append(f"[browser] signed in as {a.sub}: {r.status_code} from {r.url.copy_with(query=None)}")
            except Exception as e:  # noqa: BLE001 - the login fails and says so
                log.append(f"[browser] failed: {e}")
                ok = False
                break
        else:  # send, secret: once the prompt is out and the terminal settled (login flushes early input)
            pump(time.monotonic() + 0.15)
            os.write(fd, value.encode() + b"\r")
            log.append(f"[driver] typed {'*' * len(value) if kind == 'secret' else repr(value)} and Enter")
    if ok:
        deadline = time.monotonic() + a.timeout
        while not eof and time.monotonic() < deadline:
            pump(deadline)
    status = None
    for _ in range(50):
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
            break
        if not eof or not ok:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    os.close(fd)
    for line in seen.rstrip("\n").split("\n"):
        print(f"  | {line}")
    for line in log:
        print(f"  {line}")
    for pattern in a.absent:
        if re.search(pattern, seen):
            print(f"  [driver] /{pattern}/ appeared")
            ok = False
    print(f"  [driver] exit status {status}, expected {a.exit}")
    return 0 if ok and status == a.exit else 1


def cmd_idp_user(a) -> int:
    import httpx

    claims = {"email": a.email, "email_verified": True}
    r = httpx.put(f"{a.issuer}/users/{urllib.parse.quote(a.sub, safe='')}", json=claims, trust_env=False, timeout=10)
    if r.status_code != 204:
        print(f"PUT /users/{a.sub}: {r.status_code} {r.text}")
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pam = sub.add_parser("pam")
    pam.add_argument("--sub", required=True)
    pam.add_argument("--answer", action="append", default=[])
    pam.add_argument("command", nargs="+")
    ssh = sub.add_parser("ssh")
    ssh.add_argument("--port", type=int, required=True)
    ssh.add_argument("--user", required=True)
    ssh.add_argument("--password")
    ssh.add_argument("--sub")
    ssh.add_argument("--answer", action="append", default=[])
    ssh.add_argument("command", nargs="+")
    tty = sub.add_parser("tty")
    tty.add_argument("--sub")
    tty.add_argument("--timeout", type=float, default=30)
    tty.add_argument("--exit", type=int, default=0)
    tty.add_argument("--absent", action="append", default=[])
    tty.add_argument("--expect", action=Step)
    tty.add_argument("--send", action=Step)
    tty.add_argument("--secret", action=Step)
    tty.add_argument("--browser", action=Step, nargs=0)
    tty.add_argument("command", nargs="+")
    idp = sub.add_parser("idp-user")
    idp.add_argument("--issuer", required=True)
    idp.add_argument("--sub", required=True)
    idp.add_argument("--email", required=True)
    a = p.parse_args()
    return {"pam": cmd_pam, "ssh": cmd_ssh, "tty": cmd_tty, "idp-user": cmd_idp_user}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
