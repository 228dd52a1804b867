"""One sandboxed fedlogin machine for an integration test: an IdP, the
directory service, fedlogind with system root "/" (inside the private mount
namespace that is a copy of /etc) and a PAM confdir with the one stack."""
from __future__ import annotations

import crypt  # noqa: F401 - deprecated but present in 3.11; used to verify shadow hashes
import itertools
import json
import subprocess
import time
import tomllib
from pathlib import Path

import pamclient
import sandbox
from strict_idp import browser_sign_in

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A username no other test in this run uses (accounts persist in the namespace)."""
    return f"{prefix}{next(_names)}"


class World:
    """`backend`: "file" (fedlogin-directoryd serves a directory file),
    "ldap" (it serves the same users, groups, devices and policy from a real
    slapd, harness/slapd.py) or "ldap-pair" (from two slapd in multi-provider
    replication, harness/slapd_pair.py: `slapd` is the first, `slapds` both,
    and fedlogin-directoryd lists both URIs, the first first)."""

    def __init__(self, tmp: Path, idp, users, policy=None, devices=None, idp_name="demo", config=None,
                 start=True, env=None, more_idps=None, backend="file"):
        self.tmp = Path(tmp)
        self.idp = idp
        self.idp_name = idp_name
        self.backend = backend
        self.slapd = None
        self.slapds = []
        self.directory_file = sandbox.write_directory(self.tmp / "directory.json", users,
                                                      {"default_idp": idp_name, **(policy or {})}, devices)
        if backend in ("ldap", "ldap-pair"):
            import slapd as slapd_harness

            self.device_id = (config or {}).get("daemon", {}).get("device_id", "demo-device-1")
            data = self._ldap_data()
            self._ldap_devices = [*data["devices"], *data["unbound"]]
            if backend == "ldap-pair":
                import slapd_pair

                servers = slapd_pair.SlapdPair(self.tmp / "slapd", **data)
                self.slapd, self.slapds = servers.first, servers.providers
            else:
                servers = self.slapd = slapd_harness.Slapd(self.tmp / "slapd", **data)
                self.slapds = [self.slapd]
            # What the directory holds (rewrite_directory changes it).
            self._ldap_ldif = (self.slapd.tmp / "data.ldif").read_text()
            try:
                servers.start()
                self.directoryd = sandbox.start_directoryd(
                    self.tmp, Path("/nonexistent"),
                    extra_args=["--config", servers.directoryd_config(self.tmp / "directoryd")])
            except BaseException:
                servers.stop()
                raise
        else:
            self.directoryd = sandbox.start_directoryd(self.tmp, self.directory_file)
        overrides = {"daemon": {"report_retry_max": 1}}
        for k, v in (config or {}).items():
            if isinstance(v, dict):
                overrides.setdefault(k, {}).update(v)
            else:
                overrides[k] = v
        self.config = sandbox.write_config(self.tmp, {idp_name: idp, **(more_idps or {})}, **overrides)
        self.env = env
        self.fedlogind = sandbox.start_fedlogind(self.tmp, self.config, env=env) if start else None
        self.socket = Path(tomllib.loads(self.config.read_text())["daemon"]["socket"])
        self.confdir = sandbox.make_confdir(self.tmp, self.socket)

    def _ldap_data(self, keep_devices=()):
        """The directory file's users, groups, devices and policy as Slapd
        and data_ldif take them; `keep_devices` stay (without associations)
        when the file no longer names them (data_ldif makes every device an
        entry, and a device's entry holds its bindings)."""
        import slapd as slapd_harness

        doc = json.loads(self.directory_file.read_text())
        users, groups = slapd_harness.from_directory_records(doc["users"])
        devices = {d: [] for d in (*keep_devices, self.device_id)}
        devices.update(doc["devices"])
        return dict(users=users, groups=groups, devices=devices, policy=doc["policy"], unbound=doc.get("unbound") or {})

    def rewrite_directory(self, users, policy=None, devices=None, unbound=None):
        """Changes the directory, as an administrator would. File backend:
        fedlogin-directoryd reads the edited file at its next request. LDAP:
        the same records as entries (slapd.data_ldif), the difference to
        what the directory holds now applied as the rootDN with ldapmodify
        (slapd.changes_ldif): users and groups added, changed or deleted,
        device associations, `unbound` and the policy replaced. Only what
        the records change is touched, so a password changed since with
        Password Modify stays unless the user's record changes its hash;
        binding entries stay. With "ldap-pair" the change goes to the first
        provider, and replication carries it to the second."""
        sandbox.write_directory(self.directory_file, users, {"default_idp": self.idp_name, **(policy or {})}, devices, unbound)
        if self.slapd is None:
            return
        import slapd as slapd_harness

        data = self._ldap_data(keep_devices=self._ldap_devices)
        after = slapd_harness.data_ldif(**data)
        changes = slapd_harness.changes_ldif(self._ldap_ldif, after)
        if changes:
            self.slapd.modify(changes)
        self._ldap_ldif = after
        self._ldap_devices = [*data["devices"], *data["unbound"]]

    def ctl(self, *args, check=True):
        """fedloginctl (as root) against this world's fedlogind; returns the completed process."""
        out = subprocess.run([str(sandbox.bin_dir() / "fedloginctl"), *args, "--socket", str(self.socket)],
                             capture_output=True, text=True, timeout=120)
        if check:
            assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    def ctl_json(self, *args):
        return json.loads(self.ctl(*args, "--json").stdout)

    def restart_fedlogind(self, env=None):
        if self.fedlogind and self.fedlogind.alive:
            self.fedlogind.stop()
        self.fedlogind = sandbox.start_fedlogind(self.tmp, self.config, env=env if env is not None else self.env)

    def browser(self, sub):
        return lambda url: browser_sign_in(url, sub)

    def login(self, user, answers, sub=None, browser=None, service="login", steps=("authenticate", "acct_mgmt")):
        """A PAM transaction through the real libpam; returns (codes, answerer)."""
        if browser is None:
            browser = self.browser(sub or user)
        a = sandbox.sign_in_answerer(browser, answers)
        codes, _ = pamclient.authenticate(self.confdir, service, user, a, steps=steps)
        a.check()
        return codes, a

    def reports(self, user=None):
        out = subprocess.run([str(sandbox.bin_dir() / "fedlogin-directoryd"), "reports", "--json",
                              "--socket", str(self.directoryd.socket)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        reports = json.loads(out.stdout)
        return [r for r in reports if user is None or r["username"] == user]

    def wait_reports(self, user, count=1, timeout=20.0):
        end = time.time() + timeout
        while True:
            r = self.reports(user)
            if len(r) >= count or time.time() > end:
                return r
            time.sleep(0.2)

    def logs(self) -> str:
        parts = [self.fedlogind.log_text() if self.fedlogind else "", self.directoryd.log_text()]
        return "\n".join(parts)

    def stop(self):
        for p in (self.fedlogind, self.directoryd):
            if p is not None and p.alive:
                p.stop()
        for s in self.slapds:
            s.stop()


def passwd_entry(name: str):
    for line in Path("/etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f
    return None


def shadow_hash(name: str):
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f[1]
    return None


def useradd(name: str, *args: str):
    subprocess.run(["useradd", "-m", *args, name], check=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
