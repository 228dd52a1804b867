"""Test certificates for the LDAP backend's TLS tests, made with openssl in a
temporary folder: a CA, a server certificate for 127.0.0.1 signed by it, a
device's client certificate signed by it, and a second CA that signed
nothing the server uses (a client trusting only it refuses the server).

Keys are P-256 (fast to make); every key file is mode 0600.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _openssl(*args, cwd: Path):
    r = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def _key(path: Path):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path, cwd=path.parent)
    os.chmod(path, 0o600)


def _ca(folder: Path, name: str, subject: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _key(key)
    _openssl("req", "-x509", "-new", "-key", key, "-subj", subject, "-days", "2", "-out", cert,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    return key, cert


def _signed(folder: Path, name: str, subject: str, ca_key: Path, ca_cert: Path, extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt",
                           folder / f"{name}.ext")
    _key(key)
    _openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr, cwd=folder)
    ext.write_text(extensions)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
             "-extfile", ext, "-out", cert, cwd=folder)
    return key, cert


class TestCA:
    """Certificates under `folder`:

    ca_cert             the test CA (give it as ca_file)
    server_cert/_key    slapd's, for IP 127.0.0.1 only (so "localhost" is a
                        hostname mismatch)
    client_cert/_key    a device's, subject CN=<device>,O=fedlogin devices
    other_ca_cert       a CA that signed nothing here
    """

    CLIENT_ORG = "fedlogin devices"

    def __init__(self, folder: Path, device: str = "dev1"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca_cert = _ca(self.folder, "ca", "/O=fedlogin tests/CN=fedlogin test CA")
        self.server_key, self.server_cert = _signed(
            self.folder, "server", "/O=fedlogin tests/CN=127.0.0.1", self.ca_key, self.ca_cert,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1\n")
        self.device = device
        self.client_key, self.client_cert = _signed(
            self.folder, "client", f"/O={self.CLIENT_ORG}/CN={device}", self.ca_key, self.ca_cert,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
        _, self.other_ca_cert = _ca(self.folder, "other-ca", "/O=someone else/CN=another CA")
