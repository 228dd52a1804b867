"""Two slapd in multi-provider replication on loopback, for the LDAP
backend's failover tests (harness/slapd.py makes each one).

Each provider has its own cn=config, made with `slapadd -n0` from
slapd.config_ldif with:
  - `olcServerID: <n> ldap://127.0.0.1:<port>` for both providers (each
    slapd takes the one matching its own `-h` URL);
  - the syncprov module and overlay on the mdb database;
  - `olcSyncrepl` from the other provider (refreshAndPersist, bound as the
    rootDN, retried every second) and `olcMultiProvider: TRUE`.
The first provider's database is loaded with `slapadd -n1` as Slapd does;
the second gets the same entries (entryUUID, entryCSN) from `slapcat` of
the first, so both start in step and replication carries only changes.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import slapd as slapd_harness
from slapd import ROOT_DN, ROOT_PW, SUFFIX, Slapd, _free_port


def replication_config(server_id: int, ports: list[int]) -> dict:
    """config_ldif's arguments for provider `server_id` (1-based) of `ports`."""
    ids = "".join(f"olcServerID: {i} ldap://127.0.0.1:{p}\n" for i, p in enumerate(ports, 1))
    syncrepl = "".join(
        f'olcSyncrepl: {{{n}}}rid={i:03d} provider=ldap://127.0.0.1:{p} bindmethod=simple '
        f'binddn="{ROOT_DN}" credentials={ROOT_PW} searchbase="{SUFFIX}" type=refreshAndPersist '
        f'retry="1 +" timeout=2 network-timeout=2 keepalive=10:3:2\n'
        for n, (i, p) in enumerate(((i, p) for i, p in enumerate(ports, 1) if i != server_id)))
    database = ("olcDbIndex: entryCSN eq\nolcDbIndex: entryUUID eq\n" + syncrepl + "olcMultiProvider: TRUE\n")
    overlay = ("dn: olcOverlay={1}syncprov,olcDatabase={1}mdb,cn=config\n"
               "objectClass: olcOverlayConfig\nobjectClass: olcSyncProvConfig\n"
               "olcOverlay: {1}syncprov\nolcSpCheckpoint: 10 1\n")
    return {"modules": ("syncprov",), "global_lines": ids, "database_lines": database, "entries": overlay}


class SlapdPair:
    """Two replicating providers, `first` and `second` (Slapd each); start()
    and stop() both, or each one's own start()/stop()."""

    def __init__(self, tmp: Path, **data):
        tmp = Path(tmp)
        ports = [_free_port(), _free_port()]
        while ports[1] == ports[0]:
            ports[1] = _free_port()
        for i in (1, 2):
            (tmp / f"provider{i}").mkdir(parents=True, exist_ok=True)  # before a short link to it is made
        self.providers = [Slapd(tmp / f"provider{i}", port=p, config=replication_config(i, ports), **data)
                          for i, p in enumerate(ports, 1)]
        self.first, self.second = self.providers
        # The second's entries are the first's, with the same UUIDs and CSNs.
        ldif = self.first.tmp / "replica.ldif"
        out = subprocess.run(["slapcat", "-n1", "-F", str(self.first.conf_dir), "-l", str(ldif)],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"slapcat failed:\n{out.stdout}{out.stderr}")
        for f in self.second.db_dir.iterdir():
            f.unlink()
        self.second._run(["slapadd", "-n1", "-F", self.second.conf_dir, "-l", ldif])

    @property
    def uris(self) -> list[str]:
        return [p.ldap_uri for p in self.providers]

    def start(self) -> "SlapdPair":
        try:
            for p in self.providers:
                p.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in self.providers:
            p.stop()

    def directoryd_config(self, folder: Path, **overrides) -> Path:
        """fedlogin-directoryd's configuration listing both providers, the first first."""
        return self.first.directoryd_config(folder, uris=self.uris, **overrides)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_for(provider: Slapd, base: str, filt: str = "(objectClass=*)", count: int = 1,
             timeout: float = 10.0) -> list[str]:
    """The DNs found on `provider` under `base` once there are at least `count`
    (polled: replication is asynchronous); raises after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        # Unfolded: ldapsearch folds lines at 76 characters.
        text = provider.search(base, filt, "1.1").replace("\n ", "")
        dns = [line[4:] for line in text.splitlines() if line.startswith("dn: ")]
        if len(dns) >= count:
            return dns
        if time.monotonic() > end:
            raise AssertionError(f"{count} entries {filt} under {base} on {provider.ldap_uri}: found {dns}")
        time.sleep(0.1)


def add(provider: Slapd, ldif: str):
    """ldapadd as the rootDN through this provider's ldapi socket."""
    r = subprocess.run(["ldapadd", "-x", "-H", provider.ldapi_uri, "-D", ROOT_DN, "-w", ROOT_PW], input=ldif,
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"ldapadd failed ({r.returncode}):\n{r.stdout}{r.stderr}")


__all__ = ["SlapdPair", "replication_config", "wait_for", "add", "slapd_harness"]
