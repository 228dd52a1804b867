"""Several IdPs: routing by group, key rotation, client authentication
methods, and `fedloginctl idp check`."""
import subprocess
import threading
import time

import pytest

import pamclient as pc
import sandbox
from strict_idp import StrictIdP, browser_sign_in, free_port
from world import World, unique

pytestmark = pytest.mark.namespace
PASSCODE = "Correct-Horse9"


def idp_check(tmp_path, idps, name=None):
    config = sandbox.write_config(tmp_path, idps)
    out = subprocess.run([str(sandbox.bin_dir() / "fedloginctl"), "idp", "check", "--config", str(config),
                          *([name] if name else [])], capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def test_idp_check_passes_a_good_configuration(tmp_path, in_namespace):
    with StrictIdP() as idp:
        rc, out = idp_check(tmp_path, {"corp": idp})
        assert rc == 0, out
        assert "discovery      ok" in out and "client         ok" in out
        assert "device grant   " + idp.issuer + "/device_authorization" in out


def test_idp_check_tells_a_wrong_secret(tmp_path, in_namespace):
    with StrictIdP() as idp:
        rc, out = idp_check(tmp_path, {"corp": {"issuer": idp.issuer, "client_id": "fedlogin",
                                                "client_secret": "not-the-secret"}})
        assert rc == 1
        assert "the IdP rejects the client secret" in out and "regenerate it at the IdP" in out
        assert "not-the-secret" not in out


def test_idp_check_tells_an_unknown_client_id(tmp_path, in_namespace):
    with StrictIdP() as idp:
        rc, out = idp_check(tmp_path, {"corp": {"issuer": idp.issuer, "client_id": "no-such-app",
                                                "client_secret": "x"}})
        assert rc == 1
        assert "the IdP does not know client id no-such-app" in out


def test_idp_check_tells_an_unreachable_idp(tmp_path, in_namespace):
    port = free_port()  # nothing listens there
    rc, out = idp_check(tmp_path, {"corp": {"issuer": f"http://127.0.0.1:{port}", "client_id": "c",
                                            "client_secret": "x"}})
    assert rc == 1
    assert "is the IdP reachable from this machine?" in out


def exact_port_idp(port, public):
    redirect = f"http://127.0.0.1:{port}/callback"
    if public:
        return StrictIdP(client_auth="none", client_secret=None, redirect_uris=[redirect], exact_port=True)
    return StrictIdP(redirect_uris=[redirect], exact_port=True)


def client_keys(idp, public, **more):
    keys = {"issuer": idp.issuer, "client_id": "fedlogin", **more}
    if public:
        keys["client_auth"] = "none"
    else:
        keys["client_secret"] = "fedlogin-test-secret"
    return keys


@pytest.mark.parametrize("public", [True, False], ids=["public", "confidential"])
def test_idp_check_probes_with_the_redirect_uri_a_sign_in_sends(tmp_path, in_namespace, public):
    port = free_port()
    with exact_port_idp(port, public) as idp:
        rc, out = idp_check(tmp_path, {"corp": client_keys(idp, public, redirect_port=port)})
        assert rc == 0, out
        assert "client         ok" in out
        assert idp.token_requests[-1]["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


@pytest.mark.parametrize("public", [True, False], ids=["public", "confidential"])
def test_idp_check_tells_a_redirect_port_the_idp_does_not_match(tmp_path, in_namespace, public):
    port = free_port()
    with exact_port_idp(port, public) as idp:
        rc, out = idp_check(tmp_path, {"corp": client_keys(idp, public)})
        assert rc == 1, out
        assert "the IdP refuses the redirect URI http://127.0.0.1/callback" in out
        assert "redirect_port" in out
        assert "regenerate" not in out and "secret" not in out.split("redirect URI", 1)[1]


@pytest.mark.parametrize("answer", [("invalid_code", "code is not valid"),
                                    ("invalid_request", "The authorization code is invalid or expired")])
def test_idp_check_accepts_other_answers_for_a_made_up_code(tmp_path, in_namespace, answer):
    with StrictIdP(client_auth="none", client_secret=None) as idp:
        idp.unknown_code_answer = answer
        rc, out = idp_check(tmp_path, {"corp": client_keys(idp, True)})
        assert rc == 0, out
        assert "client         ok" in out


def test_idp_check_gives_a_public_client_no_secret_advice(tmp_path, in_namespace):
    with StrictIdP(client_auth="none", client_secret=None) as idp:
        idp.unknown_code_answer = ("invalid_request", "grant_type not allowed for this client")
        rc, out = idp_check(tmp_path, {"corp": client_keys(idp, True)})
        assert rc == 1, out
        assert "the IdP rejects fedlogin's client" in out and "public client" in out
        assert "regenerate" not in out


def test_routing_by_group_picks_the_idp(tmp_path, in_namespace):
    corp, partner = StrictIdP(), StrictIdP()
    staff, contractor = unique("staff"), unique("contractor")
    corp.add_user(staff, email=f"{staff}@example.test")
    partner.add_user(contractor, email=f"{contractor}@example.test")
    w = World(tmp_path, corp, [staff, {"username": contractor, "groups": ["contractors"]}],
              policy={"routing": [{"group": "contractors", "idp": "partner"}]}, more_idps={"partner": partner})
    try:
        codes, a = w.login(staff, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert a.urls[0].startswith(corp.issuer)
        codes, a = w.login(contractor, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert a.urls[0].startswith(partner.issuer)
        log = w.fedlogind.log_text()
        assert "signing in with partner (routing policy: group contractors)" in log
        assert "signing in with demo (default IdP)" in log
    finally:
        w.stop()
        corp.stop()
        partner.stop()


def test_a_rotated_key_is_fetched_once(tmp_path, in_namespace):
    idp = StrictIdP()
    first, second = unique("rot"), unique("rot")
    idp.add_user(first, email=f"{first}@example.test")
    idp.add_user(second, email=f"{second}@example.test")
    w = World(tmp_path, idp, [first, second])
    try:
        codes, _ = w.login(first, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS]
        assert idp.counts["jwks"] == 1
        idp.rotate_key(keep_old=False)
        time.sleep(1.1)  # refetches are at most once a second
        codes, a = w.login(second, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert idp.counts["jwks"] == 2  # the unknown kid caused exactly one refetch
    finally:
        w.stop()
        idp.stop()


def test_a_public_client_signs_in_with_pkce_alone(tmp_path, in_namespace):
    idp = StrictIdP(client_auth="none", client_secret=None)
    name = unique("pub")
    idp.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, {"issuer": idp.issuer, "client_id": "fedlogin", "client_auth": "none"}, [name])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        request = idp.token_requests[-1]
        assert request.get("client_id") == "fedlogin" and "client_secret" not in request
        assert request.get("code_verifier")
    finally:
        w.stop()
        idp.stop()


def test_a_fixed_redirect_port_serves_logins_in_flight_routed_by_state(tmp_path, in_namespace):
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    idp = StrictIdP(redirect_uris=[redirect], exact_port=True)
    one, two = unique("fix"), unique("fix")
    for n in (one, two):
        idp.add_user(n, email=f"{n}@example.test")
    w = World(tmp_path, {"issuer": idp.issuer, "client_id": "fedlogin", "client_secret": "fedlogin-test-secret",
                         "redirect_port": port}, [one, two])
    results = {}
    try:
        # Two sign-ins at once: the second completes while the first waits.
        first_url = threading.Event()
        gate = threading.Event()

        def slow_browser(url):
            first_url.set()
            gate.wait(20)
            return browser_sign_in(url, one)

        def run_one():
            results[one] = w.login(one, ["", PASSCODE, PASSCODE], browser=slow_browser)

        t = threading.Thread(target=run_one)
        t.start()
        first_url.wait(20)
        results[two] = w.login(two, ["", PASSCODE, PASSCODE])
        gate.set()
        t.join(60)
        for n in (one, two):
            codes, a = results[n]
            assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
            assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in a.urls[0]
    finally:
        w.stop()
        idp.stop()


HOLD_PORT = ("import socket,sys,time\n"
             "s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
             "print('listening', flush=True); time.sleep(300)\n")


def hold_port_as_nobody(port):
    """Another local user listening on the redirect port."""
    p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                          HOLD_PORT, str(port)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "listening"
    return p


def test_a_redirect_port_taken_by_another_user_falls_back_to_the_device_grant(tmp_path, in_namespace):
    from test_signin_flows import device_browser
    port = free_port()
    holder = hold_port_as_nobody(port)
    idp = StrictIdP(redirect_uris=[f"http://127.0.0.1:{port}/callback"], exact_port=True)
    one, two = unique("held"), unique("freed")
    for n in (one, two):
        idp.add_user(n, email=f"{n}@example.test")
    # fedlogind starts although the port is taken, and says who holds it.
    w = World(tmp_path, {"issuer": idp.issuer, "client_id": "fedlogin", "client_secret": "fedlogin-test-secret",
                         "redirect_port": port}, [one, two])
    try:
        assert "uid 65534 is listening on it" in w.fedlogind.log_text()
        codes, a = w.login(one, ["", PASSCODE, PASSCODE], browser=device_browser(one))
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        info = a.messages(pc.PAM_TEXT_INFO)
        assert info[0] == (f"The sign-in cannot come back to this machine: the redirect port {port} of this machine "
                           "is in use (by uid 65534). Sign in with a code instead.")
        assert idp.counts["device_authorization"] == 1 and idp.counts["authorize"] == 0
        # Once the port is free, the next sign-in binds it.
        holder.kill()
        holder.wait()
        codes, a = w.login(two, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in a.urls[0]
    finally:
        holder.kill()
        w.stop()
        idp.stop()


def test_a_redirect_port_taken_with_no_device_grant_refuses_with_the_reason(tmp_path, in_namespace):
    port = free_port()
    holder = hold_port_as_nobody(port)
    idp = StrictIdP(redirect_uris=[f"http://127.0.0.1:{port}/callback"], exact_port=True)
    idp.discovery = lambda: {k: v for k, v in StrictIdP.discovery(idp).items() if k != "device_authorization_endpoint"}
    name = unique("heldnodev")
    idp.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, {"issuer": idp.issuer, "client_id": "fedlogin", "client_secret": "fedlogin-test-secret",
                         "redirect_port": port}, [name])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert (f"The sign-in cannot come back to this machine: the redirect port {port} of this machine is in use "
                "(by uid 65534). Ask your administrator.") in a.messages(pc.PAM_ERROR_MSG)
        assert a.urls == []
    finally:
        holder.kill()
        w.stop()
        idp.stop()
