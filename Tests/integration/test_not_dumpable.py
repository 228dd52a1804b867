"""fedlogind and fedlogin-directoryd make themselves not dumpable
(PR_SET_DUMPABLE 0) at start: no core file, and the kernel makes their
/proc/PID files owned by root, so other users cannot read them or ptrace
the process. Seen from outside: each daemon runs here as nobody (uid 65534),
where a dumpable process's /proc/PID/environ would be nobody's."""
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

import sandbox

pytestmark = pytest.mark.namespace

NOBODY = 65534
DROP = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def nobody_dir():
    d = Path(tempfile.mkdtemp(prefix="fl-dump-", dir="/tmp"))
    os.chown(d, NOBODY, NOBODY)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def owner_and_uid(pid: int):
    """(owner of /proc/PID/environ, real uid of the process)."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    return os.stat(f"/proc/{pid}/environ").st_uid, uid


def wait_running(proc, what):
    proc.wait_for(lambda: Path(f"/proc/{proc.pid}/exe").exists() and
                  os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) != "setpriv", 15, what)


def test_a_process_as_nobody_is_otherwise_nobodys(nobody_dir, in_namespace):
    # The control: without PR_SET_DUMPABLE 0 the files are the process owner's.
    p = sandbox.Process("sleeper", [*DROP, "sleep", "30"], nobody_dir)
    try:
        wait_running(p, "sleep as nobody")
        assert owner_and_uid(p.pid) == (NOBODY, NOBODY)
        _read_as_nobody(f"/proc/{p.pid}/environ")  # readable by its owner
    finally:
        p.stop()


def test_fedlogin_directoryd_is_not_dumpable(nobody_dir, in_namespace):
    directory = sandbox.write_directory(nobody_dir / "directory.json", ["alice"], {"default_idp": "demo"})
    state = nobody_dir / "state"
    state.mkdir()
    for f in (directory, state):
        os.chown(f, NOBODY, NOBODY)
    sock = nobody_dir / "dir.sock"
    p = sandbox.Process("directoryd-nobody", [*DROP, sandbox.bin_dir() / "fedlogin-directoryd", "serve",
                                              "--socket", sock, "--directory", directory, "--state-dir", state],
                        nobody_dir)
    try:
        p.wait_for_socket(sock, 15)
        assert owner_and_uid(p.pid) == (0, NOBODY)
        with pytest.raises(PermissionError):
            _read_as_nobody(f"/proc/{p.pid}/environ")
    finally:
        p.stop()


def test_fedlogind_is_not_dumpable(tmp_path, nobody_dir, in_namespace):
    config = sandbox.write_config(nobody_dir, {"demo": {"issuer": "http://127.0.0.1:9", "client_auth": "none"}},
                                  daemon={"socket": str(nobody_dir / "fedlogind.sock"),
                                          "state_dir": str(nobody_dir / "state"),
                                          "directory_socket": str(nobody_dir / "dir.sock")})
    for root, dirs, files in os.walk(nobody_dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), NOBODY, NOBODY)
    cfg = tomllib.loads(config.read_text())
    Path(cfg["daemon"]["state_dir"]).mkdir(mode=0o700, exist_ok=True)
    os.chown(cfg["daemon"]["state_dir"], NOBODY, NOBODY)
    p = sandbox.Process("fedlogind-nobody", [*DROP, sandbox.bin_dir() / "fedlogind", "--config", config], nobody_dir)
    try:
        deadline = time.time() + 15
        while time.time() < deadline and p.alive and not Path(cfg["daemon"]["socket"]).exists():
            time.sleep(0.1)
        if not p.alive:
            pytest.skip("fedlogind does not run as nobody here: " + p.log_text()[-300:])
        assert owner_and_uid(p.pid) == (0, NOBODY)
        with pytest.raises(PermissionError):
            _read_as_nobody(f"/proc/{p.pid}/environ")
    finally:
        p.stop()


def _read_as_nobody(path: str):
    """Reads a file in a child running as nobody; raises PermissionError if it may not."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            with open(path, "rb") as f:
                f.read()
        except PermissionError:
            code = 13
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 13:
        raise PermissionError(path)
    assert code == 0, f"reading {path} as nobody failed ({code})"
