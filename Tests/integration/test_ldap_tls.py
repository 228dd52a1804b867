"""fedlogin-directoryd's LDAP backend over TLS, against a real slapd with a
test CA (harness/testca.py: a CA, slapd's certificate for 127.0.0.1, a
device's client certificate, and a second CA that signed nothing here).

STARTTLS on ldap:// and ldaps:// work with ca_file; a server whose
certificate does not chain to ca_file, or is not issued for the URI's
host, is refused, and the unavailable answer and `fedlogin-directoryd
check` say why ("TLS: ..."); a server that does not do STARTTLS is
refused too. SASL EXTERNAL with the device's client certificate binds as
the device's entry (slapd's olcAuthzRegexp maps the certificate's
subject). `tls = "none"` to a host that is not loopback is refused by
--check-config, naming the key.
"""
import subprocess
from pathlib import Path

import pytest

import sandbox
import slapd as slapd_harness
import testca
from test_ldap_directory import ask, start_ldap_directoryd

USERS = [{"username": "alice", "password": "alice-pw-1", "display_name": "Alice Example", "uid_number": 70101},
         {"username": "dora", "password": "dora-pw-1", "uid_number": 70104}]
DEVICES = {"dev1": ["alice"]}
DEVICE_DN = f"cn=dev1,{slapd_harness.DEVICES}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return testca.TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory, ca):
    server = slapd_harness.Slapd(tmp_path_factory.mktemp("slapd"), users=USERS, devices=DEVICES, tls=ca)
    server.start()
    yield server
    server.stop()


def binary() -> Path:
    return sandbox.bin_dir() / "fedlogin-directoryd"


def run_check(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary(), "check", "--config", config, *args], capture_output=True, text=True, timeout=30)


def check_config(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([binary(), "serve", "--config", config, "--check-config"], capture_output=True, text=True,
                          timeout=30)


def lookup_through(tmp: Path, config: Path, user: str = "alice") -> dict:
    d = start_ldap_directoryd(tmp, config)
    try:
        return ask(d.socket, {"op": "lookup", "user": user})
    finally:
        d.stop()


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_starttls_and_ldaps_work_with_the_ca_file(tmp_path, tls_slapd, ca, mode):
    uri = tls_slapd.ldap_uri if mode == "starttls" else tls_slapd.ldaps_uri
    config = tls_slapd.directoryd_config(tmp_path, uris=[uri], tls=mode, ca_file=str(ca.ca_cert))
    assert check_config(config).returncode == 0
    answer = lookup_through(tmp_path / "d", config)
    assert answer["ok"] and answer["user"]["username"] == "alice", answer
    r = run_check(config, "--user", "alice")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"TLS ({mode}), certificate verified" in r.stdout, r.stdout
    assert f"bound as dn:{DEVICE_DN}" in r.stdout, r.stdout
    # slapd saw TLS on that connection.
    assert "TLS established" in (tls_slapd.tmp / "slapd.err").read_text()


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_a_server_certificate_from_another_ca_is_refused(tmp_path, tls_slapd, ca, mode):
    uri = tls_slapd.ldap_uri if mode == "starttls" else tls_slapd.ldaps_uri
    config = tls_slapd.directoryd_config(tmp_path, uris=[uri], tls=mode, ca_file=str(ca.other_ca_cert))
    answer = lookup_through(tmp_path / "d", config)
    assert answer["ok"] is False, answer
    assert "unavailable" in answer["error"] and "TLS: the server's certificate is not trusted" in answer["error"], answer
    r = run_check(config)
    assert r.returncode == 1, r.stdout
    assert "FAIL connect and bind" in r.stdout and "TLS: the server's certificate is not trusted" in r.stdout, r.stdout
    assert str(ca.other_ca_cert) in r.stdout, r.stdout


def test_without_a_ca_file_the_systems_cas_do_not_trust_the_test_ca(tmp_path, tls_slapd):
    config = tls_slapd.directoryd_config(tmp_path, uris=[tls_slapd.ldaps_uri], tls="ldaps")
    r = run_check(config)
    assert r.returncode == 1 and "not trusted" in r.stdout and "system's CAs" in r.stdout, r.stdout


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_a_hostname_mismatch_is_refused(tmp_path, tls_slapd, ca, mode):
    # The certificate is for IP 127.0.0.1 only; "localhost" is not in it.
    uri = (tls_slapd.ldap_uri if mode == "starttls" else tls_slapd.ldaps_uri).replace("127.0.0.1", "localhost")
    config = tls_slapd.directoryd_config(tmp_path, uris=[uri], tls=mode, ca_file=str(ca.ca_cert))
    answer = lookup_through(tmp_path / "d", config)
    assert answer["ok"] is False and "TLS: hostname mismatch" in answer["error"], answer
    r = run_check(config)
    assert r.returncode == 1 and "TLS: hostname mismatch" in r.stdout and "IP:127.0.0.1" in r.stdout, r.stdout


def test_starttls_refused_and_ldaps_to_a_port_without_tls(tmp_path, ca):
    plain = slapd_harness.Slapd(tmp_path / "plain", users=USERS, devices=DEVICES)
    plain.start()
    try:
        config = plain.directoryd_config(tmp_path, uris=[plain.ldap_uri], tls="starttls", ca_file=str(ca.ca_cert))
        answer = lookup_through(tmp_path / "d", config)
        assert answer["ok"] is False and "TLS: the server refused STARTTLS" in answer["error"], answer
        r = run_check(config)
        assert r.returncode == 1 and "TLS: the server refused STARTTLS" in r.stdout, r.stdout
        # ldaps:// to a port that speaks LDAP without TLS: a handshake failure, not "unreachable".
        config = plain.directoryd_config(tmp_path, uris=[plain.ldap_uri.replace("ldap:", "ldaps:")], tls="ldaps",
                                         ca_file=str(ca.ca_cert))
        r = run_check(config)
        assert r.returncode == 1 and "TLS: the handshake failed" in r.stdout, r.stdout
        # A port nobody listens on stays unreachable.
        config = plain.directoryd_config(tmp_path, uris=["ldaps://127.0.0.1:1"], tls="ldaps", ca_file=str(ca.ca_cert))
        r = run_check(config)
        assert r.returncode == 1 and "unreachable" in r.stdout and "TLS" not in r.stdout.split("FAIL", 1)[1], r.stdout
    finally:
        plain.stop()


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_sasl_external_with_the_client_certificate_binds_as_the_device(tmp_path, tls_slapd, ca, mode):
    uri = tls_slapd.ldap_uri if mode == "starttls" else tls_slapd.ldaps_uri
    config = tls_slapd.directoryd_config(tmp_path, uris=[uri], tls=mode, ca_file=str(ca.ca_cert),
                                         tls_cert=str(ca.client_cert), tls_key=str(ca.client_key))
    text = config.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("bind_dn", "bind_password_file")))
    config.write_text(text + "\n")
    assert check_config(config).returncode == 0, check_config(config).stderr
    r = run_check(config, "--user", "alice", "--device", "dev1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"bound as dn:{DEVICE_DN}" in r.stdout, r.stdout
    answer = lookup_through(tmp_path / "d", config)
    assert answer["ok"] and answer["user"]["username"] == "alice", answer
    # The key must be root's alone, like the bind password file.
    ca.client_key.chmod(0o640)
    try:
        r = check_config(config)
        assert r.returncode == 78 and "ldap.tls_key" in r.stderr, r.stderr
    finally:
        ca.client_key.chmod(0o600)


def test_tls_none_to_a_host_that_is_not_loopback_is_refused_naming_the_key(tmp_path, tls_slapd):
    config = tls_slapd.directoryd_config(tmp_path, uris=["ldap://ldap1.example.test"], tls="none")
    r = check_config(config)
    assert r.returncode == 78, r.stdout + r.stderr
    assert "ldap.tls" in r.stderr and "loopback" in r.stderr and "starttls" in r.stderr, r.stderr
    # Loopback and ldapi:// may go without TLS.
    config = tls_slapd.directoryd_config(tmp_path, uris=[tls_slapd.ldapi_uri, tls_slapd.ldap_uri], tls="none", timeout=1)
    assert check_config(config).returncode == 0
    # ldaps with an ldap:// URI: the key and the fix.
    config = tls_slapd.directoryd_config(tmp_path, uris=[tls_slapd.ldap_uri], tls="ldaps")
    r = check_config(config)
    assert r.returncode == 78 and "ldap.tls" in r.stderr and "ldaps://" in r.stderr, r.stderr
    # A ca_file that does not exist.
    config = tls_slapd.directoryd_config(tmp_path, uris=[tls_slapd.ldaps_uri], ca_file=str(tmp_path / "nope.pem"))
    r = check_config(config)
    assert r.returncode == 78 and "ldap.ca_file" in r.stderr, r.stderr


def test_check_config_refuses_timeouts_longer_than_fedloginds_directory_timeout(tmp_path, tls_slapd):
    config = tls_slapd.directoryd_config(tmp_path, uris=[tls_slapd.ldapi_uri, tls_slapd.ldap_uri], timeout=3)
    fedlogin_conf = tmp_path / "fedlogin.conf"
    fedlogin_conf.write_text("[daemon]\ndirectory_timeout = 5\n")
    r = subprocess.run([binary(), "serve", "--config", config, "--check-config", "--fedlogin-config", fedlogin_conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r.stdout + r.stderr
    # 3 s × (2 URIs + the one retry) = 9 s.
    assert "ldap.timeout" in r.stderr and "daemon.directory_timeout" in r.stderr and "9 s" in r.stderr, r.stderr
    fedlogin_conf.write_text("[daemon]\ndirectory_timeout = 9\n")
    r = subprocess.run([binary(), "serve", "--config", config, "--check-config", "--fedlogin-config", fedlogin_conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_change_password_goes_over_tls_too(tmp_path, tls_slapd, ca):
    good = tls_slapd.directoryd_config(tmp_path / "good", uris=[tls_slapd.ldap_uri], tls="starttls",
                                       ca_file=str(ca.ca_cert))
    bad = tls_slapd.directoryd_config(tmp_path / "bad", uris=[tls_slapd.ldaps_uri], tls="ldaps",
                                      ca_file=str(ca.other_ca_cert))
    d = start_ldap_directoryd(tmp_path / "d", good)
    try:
        answer = ask(d.socket, {"op": "change_password", "user": "dora", "current": "dora-pw-1", "new": "dora-pw-2"})
        assert answer == {"ok": True}, answer
    finally:
        d.stop()
    d = start_ldap_directoryd(tmp_path / "d2", bad)
    try:
        answer = ask(d.socket, {"op": "change_password", "user": "dora", "current": "dora-pw-2", "new": "dora-pw-3"})
        assert answer["ok"] is False and "TLS: the server's certificate is not trusted" in answer["error"], answer
    finally:
        d.stop()
