"""Tests of the test provider itself (harness/strict_idp.py): it must be strict
in exactly the ways the daemon's tests rely on. No root needed."""
import base64
import hashlib
import hmac
import http.server
import secrets
import threading
import time
import urllib.parse

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError

from strict_idp import (DEVICE_GRANT, StrictIdP, browser_sign_in, decode_unverified, mutations,
                        pkce_challenge)

pytestmark = pytest.mark.unprivileged

HTTP = httpx.Client(trust_env=False)

CLIENT = "fedlogin"
SECRET = "fedlogin-test-secret"


class Loopback:
    """A one-shot redirect listener on 127.0.0.1, as the daemon runs one."""

    def __init__(self, path="/callback"):
        got = self.got = {}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                got.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                got["_path"] = urllib.parse.urlsplit(self.path).path
                self.send_response(200)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"done")

            def log_message(self, *a):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_port}{path}"
        self.thread = threading.Thread(target=self.server.handle_request, daemon=True)
        self.thread.start()

    def close(self):
        self.server.server_close()


@pytest.fixture
def idp():
    p = StrictIdP(client_id=CLIENT, client_secret=SECRET)
    p.add_user("alice-sub", email="alice@example.test", name="Alice Example", groups=["eng"])
    yield p
    p.stop()


@pytest.fixture
def loopback():
    lb = Loopback()
    yield lb
    lb.close()


def auth_url(idp, redirect_uri, client_id=CLIENT, verifier=None, **extra):
    params = dict(response_type="code", client_id=client_id, redirect_uri=redirect_uri,
                  scope="openid email profile", state=secrets.token_urlsafe(8),
                  nonce=secrets.token_urlsafe(8))
    if verifier is not None:
        params.update(code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    return idp.issuer + "/authorize?" + urllib.parse.urlencode(params), params


def get_code(idp, loopback, sub="alice-sub", **kw):
    verifier = secrets.token_urlsafe(48)
    url, params = auth_url(idp, loopback.redirect_uri, verifier=verifier, **kw)
    r = browser_sign_in(url, sub)
    assert r.status_code == 200 and r.text == "done", r.text
    loopback.thread.join(5)
    assert loopback.got["state"] == params["state"]
    return loopback.got["code"], verifier, params


def exchange(idp, code, verifier, redirect_uri, auth=(CLIENT, SECRET), **extra):
    data = dict(grant_type="authorization_code", code=code, redirect_uri=redirect_uri)
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    return HTTP.post(idp.issuer + "/token", data=data, auth=auth)


class Rejected(Exception):
    pass


def verify_id_token(token, idp, nonce, client_id=CLIENT):
    """What a strict relying party checks (OpenID Connect Core §3.1.3.7);
    raises Rejected(reason)."""
    try:
        tok = jwt.decode(token, idp.key_set(), algorithms=["RS256"])
    except (JoseError, ValueError) as e:
        raise Rejected(f"signature: {type(e).__name__}") from e
    claims = tok.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": idp.issuer},
        sub={"essential": True},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as e:
        raise Rejected(f"claims: {getattr(e, 'claim', '')}: {e}") from e
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(aud) > 1 and "azp" not in claims:
        raise Rejected("azp missing with several audiences")
    if "azp" in claims and claims["azp"] != client_id:
        raise Rejected("azp is another client")
    if claims.get("email_verified") is not True:
        raise Rejected("email not verified")
    return claims


# -- discovery and keys -----------------------------------------------------


def test_discovery_and_jwks(idp):
    d = HTTP.get(idp.issuer + "/.well-known/openid-configuration").json()
    assert d["issuer"] == idp.issuer
    assert idp.issuer.startswith("http://127.0.0.1:")
    for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "device_authorization_endpoint"):
        assert d[k].startswith(idp.issuer + "/")
    assert d["id_token_signing_alg_values_supported"] == ["RS256"]
    assert d["code_challenge_methods_supported"] == ["S256"]
    assert d["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    jwks = HTTP.get(d["jwks_uri"]).json()
    assert [k["kid"] for k in jwks["keys"]] == [idp.kid]
    assert all(k["kty"] == "RSA" and "d" not in k for k in jwks["keys"])
    assert idp.counts["discovery"] == 1 and idp.counts["jwks"] == 1


def test_rotate_key_publishes_new_kid_and_signs_with_it(idp, loopback):
    old = idp.kid
    new = idp.rotate_key()
    assert new != old and idp.kid == new
    kids = [k["kid"] for k in HTTP.get(idp.issuer + "/jwks").json()["keys"]]
    assert kids == [old, new]
    code, verifier, params = get_code(idp, loopback)
    token = exchange(idp, code, verifier, loopback.redirect_uri).json()["id_token"]
    assert decode_unverified(token)[0]["kid"] == new
    verify_id_token(token, idp, params["nonce"])
    idp.rotate_key(keep_old=False)
    assert [k["kid"] for k in idp.jwks()["keys"]] == [idp.kid]
    with pytest.raises(Rejected, match="signature"):
        verify_id_token(token, idp, params["nonce"])


# -- the code flow ------------------------------------------------------------


def test_code_flow_with_pkce(idp, loopback):
    code, verifier, params = get_code(idp, loopback)
    assert loopback.got["_path"] == "/callback"
    r = exchange(idp, code, verifier, loopback.redirect_uri)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    claims = verify_id_token(body["id_token"], idp, params["nonce"])
    assert claims["sub"] == "alice-sub"
    assert claims["aud"] == CLIENT and claims["azp"] == CLIENT
    assert claims["email"] == "alice@example.test" and claims["email_verified"] is True
    assert claims["name"] == "Alice Example" and claims["groups"] == ["eng"]
    assert claims["exp"] > claims["iat"] >= int(time.time()) - 5
    info = HTTP.get(idp.issuer + "/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).json()
    assert info["sub"] == "alice-sub" and info["email"] == "alice@example.test"
    assert idp.last_authorize["code_challenge_method"] == "S256"
    assert idp.counts["authorize"] == 1 and idp.counts["token"] == 1


def test_claims_follow_scopes(idp, loopback):
    code, verifier, params = get_code(idp, loopback, scope="openid")
    claims = decode_unverified(exchange(idp, code, verifier, loopback.redirect_uri).json()["id_token"])[1]
    assert "email" not in claims and "name" not in claims
    assert claims["groups"] == ["eng"]  # extra claims are always there


def test_pkce_wrong_verifier_rejected_and_code_spent(idp, loopback):
    code, verifier, _ = get_code(idp, loopback)
    r = exchange(idp, code, "w" * 43, loopback.redirect_uri)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(idp, code, verifier, loopback.redirect_uri)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_pkce_verifier_missing_rejected(idp, loopback):
    code, _, _ = get_code(idp, loopback)
    r = exchange(idp, code, None, loopback.redirect_uri)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_is_single_use(idp, loopback):
    code, verifier, _ = get_code(idp, loopback)
    assert exchange(idp, code, verifier, loopback.redirect_uri).status_code == 200
    r = exchange(idp, code, verifier, loopback.redirect_uri)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_expires():
    with StrictIdP(code_lifetime=0.2) as idp:
        idp.add_user("alice-sub", email="alice@example.test")
        lb = Loopback()
        code, verifier, _ = get_code(idp, lb)
        time.sleep(0.4)
        r = exchange(idp, code, verifier, lb.redirect_uri)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        lb.close()


def test_token_redirect_uri_must_match(idp, loopback):
    code, verifier, _ = get_code(idp, loopback)
    r = exchange(idp, code, verifier, loopback.redirect_uri.replace("/callback", "/other"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("auth,extra", [
    ((CLIENT, "wrong"), {}),
    (("nobody", SECRET), {}),
    (None, {"client_id": CLIENT, "client_secret": SECRET}),  # post, but basic is registered
    (None, {"client_id": CLIENT}),
])
def test_client_authentication_failures_are_invalid_client(idp, loopback, auth, extra):
    code, verifier, _ = get_code(idp, loopback)
    r = exchange(idp, code, verifier, loopback.redirect_uri, auth=auth, **extra)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # A failed client authentication does not spend the code.
    assert exchange(idp, code, verifier, loopback.redirect_uri).status_code == 200


def test_basic_credentials_are_form_urlencoded():
    secret = "s3cr:et/+ %"
    with StrictIdP(client_secret=secret) as idp:
        idp.add_user("alice-sub", email="alice@example.test")
        lb = Loopback()
        code, verifier, _ = get_code(idp, lb)
        raw = f"{urllib.parse.quote_plus(CLIENT)}:{urllib.parse.quote_plus(secret)}"
        r = HTTP.post(idp.issuer + "/token", headers={
            "Authorization": "Basic " + base64.b64encode(raw.encode()).decode()},
            data=dict(grant_type="authorization_code", code=code, redirect_uri=lb.redirect_uri,
                      code_verifier=verifier))
        assert r.status_code == 200, r.text
        lb.close()


def test_client_secret_post_and_public_client():
    with StrictIdP(client_auth="client_secret_post") as idp:
        idp.add_client("public", auth_method="none")
        idp.add_user("alice-sub", email="alice@example.test")
        lb = Loopback()
        code, verifier, _ = get_code(idp, lb)
        r = exchange(idp, code, verifier, lb.redirect_uri, auth=(CLIENT, SECRET))  # basic: wrong method
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = exchange(idp, code, verifier, lb.redirect_uri, auth=None, client_id=CLIENT, client_secret=SECRET)
        assert r.status_code == 200, r.text
        lb.close()
        lb = Loopback()
        code, verifier, params = get_code(idp, lb, client_id="public")
        r = exchange(idp, code, verifier, lb.redirect_uri, auth=None, client_id="public")
        assert r.status_code == 200, r.text
        assert decode_unverified(r.json()["id_token"])[1]["aud"] == "public"
        lb.close()


def test_unsupported_grant_type(idp):
    r = HTTP.post(idp.issuer + "/token", data={"grant_type": "password"}, auth=(CLIENT, SECRET))
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


# -- the authorization endpoint ---------------------------------------------


def test_authorize_get_shows_form(idp):
    url, _ = auth_url(idp, "http://127.0.0.1:5000/callback", verifier="v" * 43)
    r = HTTP.get(url)
    assert r.status_code == 200 and 'name="sub"' in r.text


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:5000/other",
    "http://localhost:5000/callback",
    "https://127.0.0.1:5000/callback",
    "http://evil.test/callback",
])
def test_unregistered_redirect_uri_is_not_followed(idp, redirect_uri):
    url, _ = auth_url(idp, redirect_uri, verifier="v" * 43)
    r = browser_sign_in(url, "alice-sub", follow=False)
    assert r.status_code == 400 and "location" not in r.headers


def test_unknown_client_is_not_redirected(idp, loopback):
    url, _ = auth_url(idp, loopback.redirect_uri, client_id="nobody", verifier="v" * 43)
    r = browser_sign_in(url, "alice-sub", follow=False)
    assert r.status_code == 400 and "location" not in r.headers


def test_loopback_port_exact_when_configured():
    with StrictIdP(redirect_uris=["http://127.0.0.1:5000/callback"], exact_port=True) as idp:
        idp.add_user("alice-sub", email="alice@example.test")
        url, _ = auth_url(idp, "http://127.0.0.1:5001/callback", verifier="v" * 43)
        assert browser_sign_in(url, "alice-sub", follow=False).status_code == 400
        url, _ = auth_url(idp, "http://127.0.0.1:5000/callback", verifier="v" * 43)
        r = browser_sign_in(url, "alice-sub", follow=False)
        assert r.status_code == 302 and r.headers["location"].startswith("http://127.0.0.1:5000/callback?code=")


@pytest.mark.parametrize("extra,error", [
    ({}, "invalid_request"),  # no code_challenge
    ({"code_challenge": "c" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "c" * 43}, "invalid_request"),  # method missing (means plain)
    ({"code_challenge": pkce_challenge("v" * 43), "code_challenge_method": "S256",
      "response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": pkce_challenge("v" * 43), "code_challenge_method": "S256",
      "scope": "email"}, "invalid_scope"),
])
def test_authorize_errors_redirect_with_state(idp, loopback, extra, error):
    url, params = auth_url(idp, loopback.redirect_uri, **extra)
    r = browser_sign_in(url, "alice-sub", follow=False)
    assert r.status_code == 302
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["location"]).query))
    assert q["error"] == error and q["state"] == params["state"] and "code" not in q


def test_deny_gives_access_denied(idp, loopback):
    url, params = auth_url(idp, loopback.redirect_uri, verifier="v" * 43)
    r = browser_sign_in(url, "alice-sub", deny=True)
    assert r.status_code == 200
    loopback.thread.join(5)
    assert loopback.got["error"] == "access_denied" and loopback.got["state"] == params["state"]


def test_unknown_user_gets_no_code(idp, loopback):
    url, _ = auth_url(idp, loopback.redirect_uri, verifier="v" * 43)
    r = browser_sign_in(url, "mallory", follow=False)
    assert r.status_code == 400 and "location" not in r.headers


def test_nonce_required_when_configured():
    with StrictIdP(require_nonce=True) as idp:
        url, _ = auth_url(idp, "http://127.0.0.1:5000/callback", verifier="v" * 43, nonce=None)
        r = browser_sign_in(url, "alice-sub", follow=False)
        assert "error=invalid_request" in r.headers["location"]


# -- token mutations ------------------------------------------------------------


def issue(idp, loopback, mutation):
    idp.next_token_mutation = mutation
    code, verifier, params = get_code(idp, loopback)
    r = exchange(idp, code, verifier, loopback.redirect_uri)
    assert r.status_code == 200, r.text
    return r.json()["id_token"], params["nonce"]


def test_next_token_mutation_is_used_once(idp):
    idp.next_token_mutation = mutations.wrong_iss
    results = []
    for _ in range(2):
        lb = Loopback()
        code, verifier, params = get_code(idp, lb)
        token = exchange(idp, code, verifier, lb.redirect_uri).json()["id_token"]
        results.append((token, params["nonce"]))
        lb.close()
    with pytest.raises(Rejected, match="iss"):
        verify_id_token(results[0][0], idp, results[0][1])
    verify_id_token(results[1][0], idp, results[1][1])
    assert idp.next_token_mutation is None


EXPECTED = {
    "bad_signature": "signature",
    "alg_none": "signature",
    "hs256_public_key": "signature",
    "unknown_kid": "signature",
    "wrong_iss": "claims: .*iss",
    "wrong_aud": "claims: .*aud",
    "aud_list_without_azp": "azp missing",
    "wrong_azp": "azp is another client",
    "expired": "claims: .*exp",
    "iat_future": "claims: .*iat",
    "nonce_missing": "claims: .*nonce",
    "nonce_different": "claims: .*nonce",
    "email_unverified": "email not verified",
    "email_verified_string_true": "email not verified",
    "email_verified_yes": "email not verified",
    "email_verified_one": "email not verified",
}


def test_every_rejecting_mutation_is_covered():
    assert set(EXPECTED) == set(mutations.REJECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mutation_is_rejected(idp, loopback, name):
    token, nonce = issue(idp, loopback, getattr(mutations, name))
    with pytest.raises(Rejected, match=EXPECTED[name]):
        verify_id_token(token, idp, nonce)


def test_mutation_details(idp):
    def one(mutation):
        lb = Loopback()
        token, nonce = issue(idp, lb, mutation)
        lb.close()
        return token, nonce

    token, _ = one(mutations.alg_none)
    h, _ = decode_unverified(token)
    assert h["alg"] == "none" and token.endswith(".")

    token, _ = one(mutations.hs256_public_key)
    h, _ = decode_unverified(token)
    signing_input, _, sig = token.rpartition(".")
    expected = hmac.new(idp.current_key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert h["alg"] == "HS256" and h["kid"] == idp.kid
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected

    token, _ = one(mutations.bad_signature)
    assert decode_unverified(token)[0]["kid"] == idp.kid  # same kid, another key

    token, _ = one(mutations.unknown_kid)
    assert decode_unverified(token)[0]["kid"] not in [k["kid"] for k in idp.jwks()["keys"]]

    _, c = decode_unverified(one(mutations.aud_list_without_azp)[0])
    assert c["aud"] == [CLIENT, mutations.OTHER_CLIENT] and "azp" not in c

    _, c = decode_unverified(one(mutations.wrong_azp)[0])
    assert CLIENT in c["aud"] and c["azp"] == mutations.OTHER_CLIENT

    _, c = decode_unverified(one(mutations.expired)[0])
    assert c["exp"] < time.time()

    _, c = decode_unverified(one(mutations.iat_future)[0])
    assert c["iat"] > time.time() + 60

    _, c = decode_unverified(one(mutations.nonce_missing)[0])
    assert "nonce" not in c

    token, nonce = one(mutations.set_claims(email="mallory@example.test", name=None))
    _, c = decode_unverified(token)
    assert c["email"] == "mallory@example.test" and "name" not in c
    verify_id_token(token, idp, nonce)  # still a valid token: only the claims differ


def test_lookalike_email_and_device_answer_overrides(idp):
    lb = Loopback()
    idp.add_user("kate-sub", email="kate.sims@example.test")
    idp.next_token_mutation = mutations.email_lookalike
    code, verifier, params = get_code(idp, lb, sub="kate-sub")
    r = exchange(idp, code, verifier, lb.redirect_uri)
    lb.close()
    token = r.json()["id_token"]
    _, c = decode_unverified(token)
    assert c["email"] == "\u212aate.\u017fim\u017f@example.test"
    verify_id_token(token, idp, params["nonce"])  # a valid token: only the relying party's comparison refuses it
    p = StrictIdP(device_answer={"interval": -1, "expires_in": 1e20})
    try:
        r = HTTP.post(p.issuer + "/device_authorization", data={"scope": "openid"}, auth=(CLIENT, SECRET))
        assert r.status_code == 200, r.text
        assert r.json()["interval"] == -1 and r.json()["expires_in"] == 1e20
    finally:
        p.stop()


def test_sticky_mutation(idp):
    idp.token_mutation = mutations.email_unverified
    for _ in range(2):
        lb = Loopback()
        token, nonce = issue(idp, lb, None)
        assert decode_unverified(token)[1]["email_verified"] is False
        lb.close()


# -- failures, counters, device grant ------------------------------------------


def test_fail_next_and_counts(idp):
    idp.fail_next("jwks", 503)
    assert HTTP.get(idp.issuer + "/jwks").status_code == 503
    assert HTTP.get(idp.issuer + "/jwks").status_code == 200
    assert idp.counts["jwks"] == 2


def test_device_grant(idp):
    def token(device_code):
        return HTTP.post(idp.issuer + "/token", auth=(CLIENT, SECRET),
                          data={"grant_type": DEVICE_GRANT, "device_code": device_code})

    d = HTTP.post(idp.issuer + "/device_authorization", auth=(CLIENT, SECRET),
                   data={"scope": "openid email"}).json()
    assert d["interval"] == 1 and d["verification_uri_complete"].startswith(d["verification_uri"])
    assert token(d["device_code"]).json()["error"] == "authorization_pending"
    assert token(d["device_code"]).json()["error"] == "slow_down"  # polled at once
    r = browser_sign_in(d["verification_uri_complete"], "alice-sub")
    assert r.status_code == 200 and "Signed in" in r.text
    r = token(d["device_code"])
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["id_token"], idp.key_set(), algorithms=["RS256"]).claims
    assert claims["sub"] == "alice-sub" and "nonce" not in claims
    assert token(d["device_code"]).json()["error"] == "invalid_grant"

    d = HTTP.post(idp.issuer + "/device_authorization", auth=(CLIENT, SECRET),
                   data={"scope": "openid"}).json()
    browser_sign_in(d["verification_uri_complete"], "alice-sub", deny=True)
    assert token(d["device_code"]).json()["error"] == "access_denied"


# -- the browser helper against oidc-provider-mock ----------------------------


def test_browser_sign_in_with_oidc_provider_mock(idp_mock, loopback):
    idp_mock.set_user("bob", email="bob@example.test")
    verifier = secrets.token_urlsafe(48)
    d = HTTP.get(idp_mock.issuer + "/.well-known/openid-configuration").json()
    params = dict(response_type="code", client_id="fedlogin", redirect_uri=loopback.redirect_uri,
                  scope="openid email", state="st4te", nonce="n0nce",
                  code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    r = browser_sign_in(d["authorization_endpoint"] + "?" + urllib.parse.urlencode(params), "bob")
    assert r.status_code == 200 and r.text == "done"
    loopback.thread.join(5)
    assert loopback.got["state"] == "st4te"
    r = HTTP.post(d["token_endpoint"], auth=("fedlogin", "x"),
                   data=dict(grant_type="authorization_code", code=loopback.got["code"],
                             redirect_uri=loopback.redirect_uri, code_verifier=verifier))
    claims = decode_unverified(r.json()["id_token"])[1]
    assert claims["sub"] == "bob" and claims["email"] == "bob@example.test" and claims["nonce"] == "n0nce"


def test_browser_deny_with_oidc_provider_mock(idp_mock, loopback):
    d = HTTP.get(idp_mock.issuer + "/.well-known/openid-configuration").json()
    params = dict(response_type="code", client_id="fedlogin", redirect_uri=loopback.redirect_uri,
                  scope="openid", state="st4te")
    browser_sign_in(d["authorization_endpoint"] + "?" + urllib.parse.urlencode(params), "bob", deny=True)
    loopback.thread.join(5)
    assert loopback.got["error"] == "access_denied"
