"""Runs the real parts of fedlogin for integration tests.

    tmp = tmp_path
    idp = start_mock_idp(tmp)                       # or strict_idp.StrictIdP()
    idp.set_user("alice", email="alice@example.test")
    dfile = write_directory(tmp / "directory.json", [{"username": "alice"}],
                            policy={"default_idp": "demo"}, devices={"demo-device-1": ["alice"]})
    directoryd = start_directoryd(tmp, dfile)
    config = write_config(tmp, {"demo": idp}, signin={"timeout": 30})
    daemon = start_fedlogind(tmp, config)
    confdir = make_confdir(tmp, daemon.socket)
    answer = sign_in_answerer(lambda url: browser_sign_in(url, "alice"), ["", "Passc0de!x", "Passc0de!x"])
    codes, transcript = pamclient.authenticate(confdir, "login", "alice", answer)
    daemon.stop(); directoryd.stop(); idp.stop()

Every process is started with its output in files under the test's folder
and is stopped by its own pid (SIGTERM, then SIGKILL after 5 s).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterable

import pamclient
from strict_idp import browser_sign_in, free_port  # noqa: F401 - re-exported for tests

# ---------------------------------------------------------------------------
# Where things are
# ---------------------------------------------------------------------------


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def bin_dir() -> Path:
    """The Swift executables: $FEDLOGIN_BIN, else <repo>/.build/debug."""
    return Path(os.environ.get("FEDLOGIN_BIN") or repo_root() / ".build" / "debug")


def out_dir() -> Path:
    """The C modules (pam_fedlogin.so, ...): $FEDLOGIN_OUT, else <repo>/out."""
    return Path(os.environ.get("FEDLOGIN_OUT") or repo_root() / "out")


def venv_bin() -> Path:
    """The bin folder of the Python venv the tests run in (or <repo>/.venv)."""
    here = Path(sys.executable).parent
    return here if (here / "oidc-provider-mock").exists() else repo_root() / ".venv" / "bin"


def _is_mount_point(path: str) -> bool:
    # os.path.ismount misses bind mounts from the same filesystem.
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def in_namespace() -> bool:
    """True inside run-in-namespace.sh (private /etc copy, tmpfs /home)."""
    return os.environ.get("FEDLOGIN_NAMESPACE") == "1" and _is_mount_point("/etc")


# sun_path holds 108 bytes; deep pytest folders can exceed it.
_SOCKET_PATH_MAX = 100
_short_links: list[str] = []
_short_cache: dict[Path, Path] = {}


def short_dir(tmp: Path) -> Path:
    """`tmp`, or a short symlink to it when socket paths under it would be too long."""
    tmp = Path(tmp)
    if len(str(tmp)) + 24 <= _SOCKET_PATH_MAX:
        return tmp
    if tmp not in _short_cache:
        link = os.path.join(tempfile.mkdtemp(prefix="fl-", dir="/tmp"), "d")
        os.symlink(tmp.resolve(), link)
        _short_links.append(link)
        _short_cache[tmp] = Path(link)
    return _short_cache[tmp]


@atexit.register
def _remove_short_links():
    for link in _short_links:
        try:
            os.unlink(link)
            os.rmdir(os.path.dirname(link))
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

_live: dict[int, "Process"] = {}


class Process:
    """A child process with stdout/stderr in <tmp>/<name>.out / .err."""

    def __init__(self, name: str, argv: list[str], tmp: Path, env: dict | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        tmp = Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        self.stdout_path = tmp / f"{name}.out"
        self.stderr_path = tmp / f"{name}.err"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                          env=full_env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        self.socket: Path | None = None
        _live[self.pid] = self

    def __repr__(self):
        return f"<Process {self.name} pid={self.pid} rc={self.popen.returncode}>"

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            try:
                parts.append(p.read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(parts)

    def _died(self, what: str) -> RuntimeError:
        return RuntimeError(f"{self.name} exited with {self.returncode} {what}\n--- log ---\n{self.log_text()}")

    def wait_for(self, ready: Callable[[], bool], timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            if not self.alive:
                raise self._died(f"before {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {what} after {timeout} s\n--- log ---\n{self.log_text()}")
            time.sleep(0.02)

    def wait_for_socket(self, path, timeout: float = 15.0, connect: bool = True):
        """Waits until `path` is a Unix socket (that accepts a connection)."""
        path = str(path)

        def ready():
            try:
                if not stat.S_ISSOCK(os.stat(path).st_mode):
                    return False
            except FileNotFoundError:
                return False
            if not connect:
                return True
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(path)
                    return True
                except (ConnectionRefusedError, FileNotFoundError):
                    return False

        self.wait_for(ready, timeout, f"socket {path}")

    def wait_for_http(self, url: str, timeout: float = 15.0):
        import httpx

        with httpx.Client(timeout=1, trust_env=False) as client:
            def ready():
                try:
                    return client.get(url).status_code == 200
                except httpx.TransportError:
                    return False

            self.wait_for(ready, timeout, f"answer from {url}")

    def wait_for_log(self, pattern: str, timeout: float = 15.0) -> re.Match:
        """Waits until the output matches the regular expression `pattern`."""
        found = []

        def ready():
            m = re.search(pattern, self.log_text())
            if m:
                found.append(m)
            return bool(m)

        self.wait_for(ready, timeout, f"log line matching {pattern!r}")
        return found[0]

    def send_signal(self, sig: int):
        if self.alive:
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` s; returns the exit status."""
        if self.alive:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
        _live.pop(self.pid, None)
        return self.popen.returncode

    def kill9(self) -> int:
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait()
        _live.pop(self.pid, None)
        return self.popen.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def live_processes() -> list[Process]:
    """Processes started here and not stopped yet."""
    return list(_live.values())


@atexit.register
def _stop_leftovers():
    for p in list(_live.values()):
        try:
            p.stop(timeout=2)
        except Exception:
            pass


# ---------------------------------------------------------------------------
# oidc-provider-mock
# ---------------------------------------------------------------------------


class MockIdP:
    """oidc-provider-mock in a child process. Accepts any client and secret."""

    client_id = "fedlogin"
    client_secret = "mock-client-secret"
    client_auth = "client_secret_basic"

    def __init__(self, process: Process, port: int):
        self.process = process
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"

    def _http(self):
        import httpx
        if getattr(self, "_client", None) is None:
            self._client = httpx.Client(trust_env=False, timeout=10)
        return self._client

    def discovery(self) -> dict:
        return self._http().get(self.issuer + "/.well-known/openid-configuration").json()

    def set_user(self, sub: str, **claims):
        """Sets the claims of `sub` (PUT /users/<sub>); e.g. email=..., groups=[...]."""
        r = self._http().put(f"{self.issuer}/users/{urllib.parse.quote(sub, safe='')}", json=claims)
        if r.status_code != 204:
            raise RuntimeError(f"PUT /users/{sub}: {r.status_code} {r.text}")

    def stop(self):
        if getattr(self, "_client", None) is not None:
            self._client.close()
            self._client = None
        self.process.stop()


def start_mock_idp(tmp: Path, *args: str, timeout: float = 20.0) -> MockIdP:
    """Starts oidc-provider-mock on a free 127.0.0.1 port; `args` go to its
    command line (e.g. "--require-nonce", "true")."""
    exe = venv_bin() / "oidc-provider-mock"
    if not exe.exists():
        raise FileNotFoundError(f"{exe} not found: run scripts/deps.sh")
    last: Exception | None = None
    for attempt in range(3):
        port = free_port()
        proc = Process(f"oidc-provider-mock-{port}", [exe, "--host", "127.0.0.1", "--port", str(port), *args],
                       tmp, env={"PYTHONWARNINGS": "ignore"})
        try:
            proc.wait_for_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout)
            return MockIdP(proc, port)
        except RuntimeError as e:  # exited early, e.g. the port was taken meanwhile
            last = e
            proc.stop()
        except TimeoutError:
            proc.stop()
            raise
    raise RuntimeError(f"oidc-provider-mock did not start: {last}")


# ---------------------------------------------------------------------------
# fedlogin-directoryd
# ---------------------------------------------------------------------------

DEFAULT_POLICY = {
    "password_sync": False,
    "default_idp": "demo",
    "routing": [],
    "passcode": {"min_length": 8, "min_classes": 3},
}


def directory_user(username: str, **fields) -> dict:
    """A directory user record with defaults for every field."""
    user = {
        "username": username,
        "email": f"{username}@example.test",
        "display_name": username.capitalize() + " Example",
        "groups": [],
        "disabled": False,
        "password_authority": "local",
        "password_hash": None,
        "uid": None,
    }
    user.update(fields)
    return user


def write_directory(path: Path, users: Iterable[dict | str], policy: dict | None = None,
                    devices: dict[str, list[str]] | None = None, unbound: dict[str, list[str]] | None = None) -> Path:
    """Writes the directory file (atomically). `users`: records (missing fields
    get defaults, see directory_user) or plain usernames. `policy` is merged
    over DEFAULT_POLICY. Returns the path."""
    path = Path(path)
    records = [directory_user(u) if isinstance(u, str) else directory_user(**u) for u in users]
    merged = json.loads(json.dumps(DEFAULT_POLICY))
    merged.update(policy or {})
    doc = {"policy": merged, "users": records, "devices": devices or {}, "unbound": unbound or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def start_directoryd(tmp: Path, directory_file: Path, state_dir: Path | None = None,
                     extra_args: Iterable[str] = (), timeout: float = 15.0, wait: bool = True) -> Process:
    """fedlogin-directoryd serve on <tmp>/dir.sock; `.socket` is its path."""
    tmp = Path(tmp)
    sock = short_dir(tmp) / "dir.sock"
    state_dir = Path(state_dir or tmp / "directoryd-state")
    state_dir.mkdir(parents=True, exist_ok=True)
    proc = Process("fedlogin-directoryd", [bin_dir() / "fedlogin-directoryd", "serve", "--socket", sock,
                                           "--directory", directory_file, "--state-dir", state_dir,
                                           *extra_args], tmp)
    proc.socket = sock
    if wait:
        proc.wait_for_socket(sock, timeout)
    return proc


def ask_directory(sock, request: dict, timeout: float = 15) -> dict:
    """One directory protocol request on a connection of its own (a 4-byte
    big-endian length, then JSON; docs/directory-protocol.md); the answer."""
    body = json.dumps(request).encode()
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(timeout)
        c.connect(str(sock))
        c.sendall(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
        return json.loads(c.recv(n, socket.MSG_WAITALL))


# ---------------------------------------------------------------------------
# fedlogind
# ---------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def to_toml(doc: dict) -> str:
    """TOML for a dict of tables (nested dicts become [a.b] tables)."""
    lines: list[str] = []

    def table(prefix: list[str], d: dict):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and v is not None}
        if prefix and (scalars or not any(isinstance(v, dict) for v in d.values())):
            lines.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        if scalars:
            lines.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table(prefix + [k], v)

    table([], doc)
    return "\n".join(lines).rstrip() + "\n"


def _idp_table(name: str, spec: Any, secrets_dir: Path) -> dict:
    if isinstance(spec, dict):
        spec = dict(spec)
    else:  # a StrictIdP or MockIdP object
        client = getattr(spec, "client", None)
        spec = {
            "issuer": spec.issuer,
            "client_id": client.client_id if client else spec.client_id,
            "client_secret": client.client_secret if client else spec.client_secret,
            "client_auth": client.auth_method if client else spec.client_auth,
        }
    secret = spec.pop("client_secret", None)
    table = {
        "display_name": f"{name.capitalize()} IdP",
        "issuer": None,
        "client_id": "fedlogin",
        "client_auth": "client_secret_basic",
        "scopes": ["openid", "email", "profile"],
        "email_claim": "email",
        "allow_http_loopback": True,
    }
    table.update(spec)
    if not table["issuer"]:
        raise ValueError(f"idp {name}: issuer missing")
    if secret is not None and "client_secret_file" not in spec:
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        f = secrets_dir / f"idp-{name}.secret"
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
        os.chmod(f, 0o600)
        table["client_secret_file"] = str(f)
    return {k: v for k, v in table.items() if v is not None}


def write_config(tmp: Path, idps: dict[str, Any], **overrides) -> Path:
    """Writes <tmp>/fedlogin.conf and a 0600 secret file per IdP; returns the path.

    idps: name -> a StrictIdP / MockIdP, or a dict of [idp.NAME] keys where
      `client_secret` (the value) is written to <tmp>/secrets/idp-NAME.secret.
    overrides: a section name with a dict merged into that section (a new
      section is added), or a single key of [daemon], [accounts] or [signin];
      the value None removes a key.
    """
    tmp = Path(tmp)
    short = short_dir(tmp)
    doc: dict[str, dict] = {
        "daemon": {
            "socket": str(short / "fedlogind.sock"),
            "state_dir": str(tmp / "state"),
            "system_root": "/",
            "device_id": "demo-device-1",
            "directory_socket": str(short / "dir.sock"),
            # Syncs only when a test asks (fedloginctl sync), so none races a test.
            "sync_interval": 0,
        },
        "accounts": {"uid_min": 70000, "uid_max": 79999, "shell": "/bin/bash"},
        "signin": {"timeout": 60},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            section = doc.setdefault(key, {})
            for k, v in value.items():
                if v is None:
                    section.pop(k, None)
                else:
                    section[k] = v
            continue
        owner = next((s for s in ("daemon", "accounts", "signin") if key in doc[s]), None)
        if owner is None:
            raise TypeError(f"write_config: unknown key {key!r}; pass a section dict, e.g. daemon={{...}}")
        if value is None:
            doc[owner].pop(key)
        else:
            doc[owner][key] = value
    doc["idp"] = {name: _idp_table(name, spec, tmp / "secrets") for name, spec in idps.items()}
    path = tmp / "fedlogin.conf"
    path.write_text(to_toml(doc))
    tomllib.loads(path.read_text())  # what was written must parse
    return path


def start_fedlogind(tmp: Path, config: Path, env: dict | None = None, extra_args: Iterable[str] = (),
                    timeout: float = 20.0, wait: bool = True) -> Process:
    """fedlogind --config CONFIG; waits for [daemon] socket; `.socket`, `.config`."""
    config = Path(config)
    cfg = tomllib.loads(config.read_text())
    Path(cfg["daemon"]["state_dir"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    proc = Process("fedlogind", [bin_dir() / "fedlogind", "--config", config, *extra_args], tmp, env=env)
    proc.socket = Path(cfg["daemon"]["socket"])
    proc.config = config
    if wait:
        proc.wait_for_socket(proc.socket, timeout)
    return proc


# ---------------------------------------------------------------------------
# PAM
# ---------------------------------------------------------------------------

PAM_SERVICES = ("login", "sshd", "fedlogin-test", "other")
_MODULE_RE = re.compile(r"(?<![\w/.-])pam_fedlogin\.so(?![\w.])")


def make_confdir(tmp: Path, socket_path, extra_args: str = "", timeout: int = 10000,
                 stack: Path | None = None, module: Path | None = None,
                 services: Iterable[str] = PAM_SERVICES) -> Path:
    """A PAM confdir (for pamclient / pam_start_confdir) built from the one
    stack definition pam/fedlogin.pam: pam_fedlogin.so becomes the absolute
    path of out/pam_fedlogin.so with `socket=SOCK timeout=MS extra_args`
    (same-named arguments of the definition are dropped). Returns <tmp>/pam.d."""
    stack = Path(stack or repo_root() / "pam" / "fedlogin.pam")
    module = Path(module or out_dir() / "pam_fedlogin.so")
    if not stack.exists():
        raise FileNotFoundError(f"{stack} (the PAM stack definition) is missing")
    if not module.exists():
        raise FileNotFoundError(f"{module} is missing: build the PAM module first")
    ours = [f"socket={socket_path}", f"timeout={timeout}", *extra_args.split()]
    ours_keys = {a.split("=", 1)[0] for a in ours}
    out_lines = []
    for line in stack.read_text().splitlines():
        if line.lstrip().startswith("#") or not _MODULE_RE.search(line):
            out_lines.append(line)
            continue
        m = _MODULE_RE.search(line)
        head, rest = line[:m.start()], line[m.end():]
        kept = [a for a in rest.split() if a.split("=", 1)[0] not in ours_keys]
        out_lines.append(f"{head}{module.resolve()} " + " ".join(ours + kept))
    text = "\n".join(out_lines) + "\n"
    confdir = Path(tmp) / "pam.d"
    confdir.mkdir(parents=True, exist_ok=True)
    for name in services:
        (confdir / name).write_text(text)
    return confdir


_URL_LINE = re.compile(r"^\s*(https?://\S+)\s*$", re.MULTILINE)


class SignInAnswerer:
    """A pamclient answer function that plays the user: when an INFO (or
    ERROR) message has a sign-in URL on a line of its own it acts as the
    browser (`browser_fn(url)`), and it answers prompts from `answers` in
    order (None when they run out: the conversation fails)."""

    def __init__(self, browser_fn: Callable[[str], Any] | None, answers: Iterable[str]):
        self.browser_fn = browser_fn
        self.answers = list(answers)
        self.transcript: list[tuple[int, str]] = []
        self.urls: list[str] = []
        self.browser_results: list[Any] = []
        self.errors: list[BaseException] = []
        self.prompts: list[str] = []
        self.unanswered: list[str] = []

    def __call__(self, style: int, text: str):
        self.transcript.append((style, text))
        if style in (pamclient.PAM_TEXT_INFO, pamclient.PAM_ERROR_MSG):
            for url in _URL_LINE.findall(text):
                self.urls.append(url)
                if self.browser_fn is None:
                    continue
                try:
                    self.browser_results.append(self.browser_fn(url))
                except BaseException as e:  # noqa: BLE001 - must not escape into libpam
                    self.errors.append(e)
            return None
        self.prompts.append(text)
        if not self.answers:
            self.unanswered.append(text)
            return None
        return self.answers.pop(0)

    def messages(self, style: int | None = None) -> list[str]:
        return [t for s, t in self.transcript if style is None or s == style]

    def check(self):
        """Raises the first error the browser hit, if any."""
        if self.errors:
            raise self.errors[0]


def sign_in_answerer(browser_fn: Callable[[str], Any] | None, answers: Iterable[str]) -> SignInAnswerer:
    return SignInAnswerer(browser_fn, answers)


# ---------------------------------------------------------------------------
# The host's account and PAM files
# ---------------------------------------------------------------------------

ETC_FILES = ("passwd", "shadow", "group", "gshadow", "nsswitch.conf")


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
    except PermissionError:
        st = path.stat()
        return f"unreadable:{st.st_size}:{st.st_mtime_ns}"


def etc_snapshot(etc: Path = Path("/etc")) -> dict[str, Any]:
    """Hashes of passwd, shadow, group, gshadow, nsswitch.conf and of every
    file in pam.d, plus the pam.d listing."""
    etc = Path(etc)
    snap: dict[str, Any] = {name: _sha256(etc / name) for name in ETC_FILES}
    pamd = etc / "pam.d"
    names = sorted(os.listdir(pamd)) if pamd.is_dir() else []
    snap["pam.d/"] = names
    for n in names:
        snap[f"pam.d/{n}"] = _sha256(pamd / n)
    return snap


def etc_changes(before: dict, after: dict | None = None) -> list[str]:
    """The entries that differ between two snapshots (after: now)."""
    after = etc_snapshot() if after is None else after
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def assert_etc_unchanged(before: dict, after: dict | None = None):
    changed = etc_changes(before, after)
    assert not changed, f"/etc changed: {', '.join(changed)}"
