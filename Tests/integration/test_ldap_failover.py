"""The LDAP backend's connections through faults: two slapd in multi-provider
replication (harness/slapd_pair.py), fedlogin-directoryd listing both, and a
single slapd restarted under fedlogin-directoryd's persistent connections
(docs/ldap.md, "Connections" and "Replication").
"""
import json
import signal
import time
from pathlib import Path

import pytest

import pamclient as pc
import sandbox
import slapd as slapd_harness
import slapd_pair
from world import World, unique

PASSCODE = "Correct-Horse9"
UNREACHABLE = "The directory cannot be reached, and a first login on this machine needs it. Try again later."
DEVICE = "demo-device-1"
DEVICE_DN = f"cn={DEVICE},{slapd_harness.DEVICES}"
REPORTS = "(objectClass=fedloginBinding)"


ask = sandbox.ask_directory


def report(key: str, user: str) -> dict:
    return {"key": key, "device_id": DEVICE, "username": user, "local_username": user, "uid": 70101,
            "email": f"{user}@example.test", "issuer": "https://idp.example.test", "subject": "sub-" + user,
            "password_mode": "passcode", "bound_at": "2026-12-03T10:00:00Z", "action": "bind"}


def accepted(server: slapd_harness.Slapd) -> int:
    """How many TCP connections this slapd has accepted (its stats log;
    the harness's own probes use the ldapi socket)."""
    return server.process.log_text().count(" ACCEPT from IP=")


def binding_keys(server: slapd_harness.Slapd) -> list[str]:
    text = server.search(DEVICE_DN, REPORTS, "cn").replace("\n ", "")
    return sorted(line[4:] for line in text.splitlines() if line.startswith("cn: "))


# No entry under the devices may be added by anyone but the rootDN (which
# replication binds as): fedlogin-directoryd's report_binding is refused
# (insufficientAccess) whatever DN it binds as. Inserted before the other
# rules, in each provider's own cn=config (not replicated), and removed again.
REFUSE_REPORTS = f'to dn.subtree="{slapd_harness.DEVICES}" attrs=children by * read'


def refuse_reports(server: slapd_harness.Slapd, refuse: bool):
    change = f"add: olcAccess\nolcAccess: {{0}}{REFUSE_REPORTS}\n" if refuse else "delete: olcAccess\nolcAccess: {0}\n"
    server.ldapmodify_config("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n" + change)


@pytest.fixture
def pair(tmp_path):
    servers = slapd_pair.SlapdPair(tmp_path / "pair", users=[{"username": "alice", "uid_number": 70101}],
                                   devices={DEVICE: []})
    servers.start()
    yield servers
    servers.stop()


def test_a_binding_written_through_one_provider_is_on_the_other(tmp_path, pair, in_namespace):
    d = sandbox.start_directoryd(tmp_path / "d", Path("/nonexistent"),
                                 extra_args=["--config", pair.directoryd_config(tmp_path / "d", timeout=2)])
    try:
        # fedlogin-directoryd writes through the first, listed first.
        assert ask(d.socket, {"op": "report_binding", "binding": report("k-one", "alice")})["ok"]
        assert slapd_pair.wait_for(pair.second, DEVICE_DN, "(cn=k-one)") == [f"cn=k-one,{DEVICE_DN}"]
        # Written on the second, read on the first (and through fedlogin-directoryd).
        slapd_pair.add(pair.second, f"dn: cn=k-two,{DEVICE_DN}\nobjectClass: fedloginBinding\ncn: k-two\n"
                                    f"fedloginBindingReport: {json.dumps(report('k-two', 'alice'))}\n")
        slapd_pair.wait_for(pair.first, DEVICE_DN, "(cn=k-two)")
        keys = [r["key"] for r in ask(d.socket, {"op": "list_reports"})["reports"]]
        assert sorted(keys) == ["k-one", "k-two"]
        # The same key through the other provider is the same entry: a duplicate.
        assert binding_keys(pair.first) == binding_keys(pair.second) == ["k-one", "k-two"]
    finally:
        d.stop()


def test_a_hung_first_provider_costs_timeouts_not_an_error(tmp_path, pair, in_namespace):
    """A provider that stops answering (SIGSTOP: the kernel still accepts
    connections) is left after `timeout`: the pooled connection's search
    times out, the new connection's bind to it times out, the second answers."""
    timeout = 1
    d = sandbox.start_directoryd(tmp_path / "d", Path("/nonexistent"),
                                 extra_args=["--config", pair.directoryd_config(tmp_path / "d", timeout=timeout)])
    lookup = {"op": "lookup", "user": "alice"}
    try:
        assert ask(d.socket, lookup)["ok"]  # a pooled connection to the first
        pair.first.process.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        answer = ask(d.socket, lookup)
        took = time.monotonic() - start
        assert answer["ok"] and answer["user"]["username"] == "alice", answer
        # The documented bound: timeout × (URIs + 1), with a margin for the searches.
        assert took < timeout * 3 + 2, took
        assert "LDAP connection lost; trying once more on a new connection" in d.log_text()
        # The next request has the connection to the second.
        assert ask(d.socket, lookup)["ok"]
        assert "LDAP connection lost again" not in d.log_text()
    finally:
        pair.first.process.send_signal(signal.SIGCONT)
        d.stop()


def test_first_logins_go_on_when_the_first_provider_stops(tmp_path, idp_mock, in_namespace):
    names = [unique("fover") for _ in range(6)]
    for n in names:
        idp_mock.set_user(n, email=f"{n}@example.test", email_verified=True, name=n.capitalize())
    w = World(tmp_path, idp_mock, names, backend="ldap-pair")
    try:
        first, second = w.slapds
        def stop_first_then_sign_in(user):
            def browser(url):
                first.stop()
                return w.browser(user)(url)
            return browser

        for i, n in enumerate(names):
            # Part-way, in the middle of the fourth login (after its lookup,
            # before its account and report are made): fedlogin-directoryd's
            # pooled connections to the first provider are lost, and its next
            # request is tried once more on a new connection, to the second.
            browser = stop_first_then_sign_in(n) if i == 3 else None
            start = time.monotonic()
            codes, a = w.login(n, ["", PASSCODE, PASSCODE], browser=browser)
            assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
            assert UNREACHABLE not in a.messages(pc.PAM_ERROR_MSG)
            assert time.monotonic() - start < 20
        # Every binding is in the directory: on the second provider, which
        # took the last three directly and the first three by replication.
        for n in names:
            assert len(w.wait_reports(n)) == 1, n
        assert len(slapd_pair.wait_for(second, DEVICE_DN, REPORTS, count=len(names))) == len(names)
        assert w.ctl_json("outbox")["pending"] == []
        log = w.directoryd.log_text()
        assert "LDAP connection lost; trying once more on a new connection" in log
        assert "LDAP connection lost again" not in log
        assert "LDAP directory is unavailable" not in w.fedlogind.log_text()
    finally:
        w.stop()


def test_both_providers_down_keeps_the_reports_and_delivers_each_once(tmp_path, idp_mock, in_namespace):
    early = [unique("outage") for _ in range(2)]
    late = unique("outage")
    for n in early + [late]:
        idp_mock.set_user(n, email=f"{n}@example.test", email_verified=True, name=n.capitalize())
    w = World(tmp_path, idp_mock, early + [late], backend="ldap-pair")
    try:
        first, second = w.slapds
        # 1. The directory takes no report: the logins complete, the reports wait.
        for s in w.slapds:
            refuse_reports(s, True)
        for n in early:
            codes, a = w.login(n, ["", PASSCODE, PASSCODE])
            assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert len(w.ctl_json("outbox")["pending"]) == len(early)
        assert binding_keys(first) == binding_keys(second) == []

        # 2. Both providers down: a first login cannot be made; the outbox keeps the reports.
        for s in w.slapds:
            s.stop()
        codes, a = w.login(late, ["x"], browser=None)
        assert codes[0] != pc.PAM_SUCCESS, a.transcript
        assert UNREACHABLE in a.messages(pc.PAM_ERROR_MSG), a.transcript
        assert "LDAP directory is unavailable" in w.fedlogind.log_text()
        assert not a.urls
        w.ctl("outbox", "deliver", check=False)
        assert len(w.ctl_json("outbox")["pending"]) == len(early)

        # 3. Back, taking reports again: each report is delivered once
        #    (fedlogind retries after report_retry_max = 1 s).
        for s in w.slapds:
            s.start()
            refuse_reports(s, False)
        end = time.monotonic() + 15
        while w.ctl_json("outbox")["pending"] and time.monotonic() < end:
            time.sleep(0.2)
        assert w.ctl_json("outbox")["pending"] == []
        slapd_pair.wait_for(second, DEVICE_DN, REPORTS, count=len(early))
        keys = binding_keys(first)
        assert len(keys) == len(early) and len(set(keys)) == len(keys)
        assert sorted(r["local_username"] for r in w.reports()) == sorted(early)
        time.sleep(1.5)  # another retry round would have come by now
        assert binding_keys(first) == binding_keys(second) == keys
        assert w.directoryd.log_text().count("binding recorded") == len(early)

        # The late user's first login works now.
        codes, a = w.login(late, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert len(w.wait_reports(late)) == 1
    finally:
        w.stop()


def test_a_restarted_slapd_is_used_again_without_an_error(tmp_path, in_namespace):
    server = slapd_harness.Slapd(tmp_path / "slapd", users=[{"username": "alice", "uid_number": 70101}],
                                 devices={DEVICE: []})
    server.start()
    d = sandbox.start_directoryd(tmp_path / "d", Path("/nonexistent"),
                                 extra_args=["--config", server.directoryd_config(tmp_path / "d", timeout=2)])
    try:
        lookup = {"op": "lookup", "user": "alice"}
        for _ in range(10):
            assert ask(d.socket, lookup)["user"]["username"] == "alice"
        # One persistent connection served the ten requests, one after the other.
        assert accepted(server) == 1
        server.stop()
        server.start()
        # Its connection was closed by the restart: dropped, and the request
        # retried on a new one, which binds again.
        for _ in range(5):
            answer = ask(d.socket, lookup)
            assert answer["ok"] and answer["user"]["username"] == "alice", answer
        assert accepted(server) == 2
        assert d.log_text().count("LDAP connection lost; trying once more on a new connection") == 1
        # A directory that is down is still an error, and the next request after it is back succeeds.
        server.stop()
        answer = ask(d.socket, lookup)
        assert answer["ok"] is False and "unavailable" in answer["error"], answer
        server.start()
        assert ask(d.socket, lookup)["ok"]
    finally:
        d.stop()
        server.stop()
