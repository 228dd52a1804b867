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
    idp = sub.add_parser("idp-user")
    idp.add_argument("--issuer", required=True)
    idp.add_argument("--sub", required=True)
    idp.add_argument("--email", required=True)
    a = p.parse_args()
    return {"pam": cmd_pam, "ssh": cmd_ssh, "idp-user": cmd_idp_user}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
