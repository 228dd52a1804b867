"""An OpenID Connect provider for tests, strict where fedlogind must be strict.

The test owns it completely: which clients and users exist, how clients
authenticate, which key signs, and what goes wrong with the next ID token.

    idp = StrictIdP(client_id="fedlogin", client_secret="s3cret")
    idp.add_user("alice-sub", email="alice@example.test", groups=["eng"])
    ... point fedlogind at idp.issuer ...
    idp.next_token_mutation = mutations.wrong_aud
    idp.rotate_key()
    assert idp.counts["jwks"] == 2
    idp.stop()

Endpoints (paths relative to idp.issuer):
  /.well-known/openid-configuration   discovery (OpenID Connect Discovery 1.0)
  /jwks                               the published RSA keys, each with a kid
  /authorize                          GET: a small form; POST sub=...: approve
                                      (action=deny: access_denied)
  /token                              authorization_code (PKCE S256 required)
                                      and device_code grants (RFC 6749, 7636, 8628)
  /userinfo                           claims for a bearer access token
  /device_authorization               RFC 8628 device authorization
  /device                             GET: a small form; POST user_code, sub: approve

Every request is counted per endpoint in `idp.counts` and logged in
`idp.requests` as (endpoint, method, path).
"""
from __future__ import annotations

import base64
import collections
import copy
import dataclasses
import hashlib
import hmac
import html
import http.server
import json
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import KeySet, RSAKey

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# RSA key generation is the slow part of starting a provider; keys are shared
# between provider instances (each instance gives them its own kids).
_KEY_POOL: list[RSAKey] = []
_KEY_POOL_LOCK = threading.Lock()


def _pool_key(index: int) -> RSAKey:
    with _KEY_POOL_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(RSAKey.generate_key(2048, private=True))
        return _KEY_POOL[index]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def decode_unverified(token: str) -> tuple[dict, dict]:
    """(header, claims) of a compact JWS, without checking anything."""
    h, c, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c))


_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class SigningKey:
    """One RSA signing key with its kid."""

    def __init__(self, kid: str, rsa: RSAKey):
        self.kid = kid
        self.rsa = rsa

    def public_jwk(self) -> dict:
        jwk = {k: v for k, v in self.rsa.as_dict(private=False).items() if k in ("kty", "n", "e")}
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return jwk

    def public_pem(self) -> bytes:
        return self.rsa.as_pem(private=False)

    def sign_rs256(self, signing_input: bytes) -> bytes:
        return self.rsa.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


@dataclasses.dataclass
class Client:
    client_id: str
    client_secret: str | None
    auth_method: str  # client_secret_basic | client_secret_post | none
    redirect_uris: list[str]


@dataclasses.dataclass
class User:
    sub: str
    claims: dict[str, Any]


@dataclasses.dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    sub: str
    nonce: str | None
    scope: str
    expires: float


@dataclasses.dataclass
class _DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires: float
    interval: int
    status: str = "pending"  # pending | approved | denied | used
    sub: str | None = None
    last_poll: float | None = None


class OAuthError(Exception):
    def __init__(self, error: str, description: str = "", status: int = 400, headers=None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


# ---------------------------------------------------------------------------
# ID token mutations: fn(header, claims) -> (header, claims, signing_mode).
# signing_mode: "current" (RS256 with the current key), "other_key" (RS256 with
# an unpublished key, header kid kept), "none" (no signature), "hs256_pubkey"
# (HMAC-SHA256 keyed with the current public key's PEM), or an RSAKey object.
# ---------------------------------------------------------------------------
class mutations:  # noqa: N801 - a namespace of helpers
    OTHER_CLIENT = "some-other-client"
    EVIL_ISSUER = "https://idp.invalid"

    @staticmethod
    def bad_signature(h, c):
        return h, c, "other_key"

    @staticmethod
    def alg_none(h, c):
        h = dict(h, alg="none")
        return h, c, "none"

    @staticmethod
    def hs256_public_key(h, c):
        h = dict(h, alg="HS256")
        return h, c, "hs256_pubkey"

    @staticmethod
    def wrong_iss(h, c):
        return h, dict(c, iss=mutations.EVIL_ISSUER), "current"

    @staticmethod
    def wrong_aud(h, c):
        c = dict(c, aud=mutations.OTHER_CLIENT)
        c.pop("azp", None)
        return h, c, "current"

    @staticmethod
    def aud_list_without_azp(h, c):
        aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        c = dict(c, aud=aud + [mutations.OTHER_CLIENT])
        c.pop("azp", None)
        return h, c, "current"

    @staticmethod
    def wrong_azp(h, c):
        aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        return h, dict(c, aud=aud + [mutations.OTHER_CLIENT], azp=mutations.OTHER_CLIENT), "current"

    @staticmethod
    def expired(h, c):
        now = int(time.time())
        return h, dict(c, iat=now - 3600, exp=now - 600), "current"

    @staticmethod
    def iat_future(h, c):
        now = int(time.time())
        return h, dict(c, iat=now + 600, exp=now + 1200), "current"

    @staticmethod
    def nbf_future(h, c):
        return h, dict(c, nbf=int(time.time()) + 600), "current"

    @staticmethod
    def nonce_missing(h, c):
        c = dict(c)
        c.pop("nonce", None)
        return h, c, "current"

    @staticmethod
    def nonce_different(h, c):
        return h, dict(c, nonce="not-the-nonce-" + secrets.token_urlsafe(8)), "current"

    @staticmethod
    def unknown_kid(h, c):
        return dict(h, kid="unknown-" + secrets.token_hex(4)), c, "other_key"

    @staticmethod
    def email_unverified(h, c):
        return h, dict(c, email_verified=False), "current"

    @staticmethod
    def email_verified_string_true(h, c):
        """The string "true" (some IdPs send it); only accepted where configured."""
        return h, dict(c, email_verified="true"), "current"

    @staticmethod
    def email_verified_yes(h, c):
        return h, dict(c, email_verified="yes"), "current"

    @staticmethod
    def email_verified_one(h, c):
        return h, dict(c, email_verified=1), "current"

    @staticmethod
    def email_lookalike(h, c):
        """A valid token whose email has Unicode look-alikes of ASCII letters:
        k -> KELVIN SIGN (U+212A), s -> LATIN SMALL LETTER LONG S (U+017F)."""
        local, _, domain = c["email"].partition("@")
        local = local.replace("k", "\u212a").replace("K", "\u212a").replace("s", "\u017f")
        return h, dict(c, email=local + "@" + domain), "current"

    @staticmethod
    def set_claims(**claims):
        """A mutation that sets (or, with value None, removes) claims."""
        def fn(h, c):
            c = dict(c)
            for k, v in claims.items():
                if v is None:
                    c.pop(k, None)
                else:
                    c[k] = v
            return h, c, "current"
        return fn

    # Every helper meant to make a token that must be refused.
    REJECTED = (
        "bad_signature", "alg_none", "hs256_public_key", "wrong_iss", "wrong_aud",
        "aud_list_without_azp", "wrong_azp", "expired", "iat_future", "nonce_missing",
        "nonce_different", "unknown_kid", "email_unverified",
        "email_verified_string_true", "email_verified_yes", "email_verified_one",
    )


# ---------------------------------------------------------------------------


class StrictIdP:
    """A strict OpenID provider on 127.0.0.1, started by the constructor.

    client_auth: "client_secret_basic", "client_secret_post" or "none".
    redirect_uris: the registered redirect URIs. A loopback URI
      (http://127.0.0.1/... or http://[::1]/...) matches any port unless
      exact_port=True (RFC 8252 §7.3); everything else must match exactly.
    require_nonce: refuse authorization requests without a nonce.
    scope_gated_claims: email/email_verified only with scope "email",
      name/given_name/family_name/preferred_username only with "profile".
    include_azp: put azp (= client_id) into ID tokens.
    """

    def __init__(
        self,
        client_id: str = "fedlogin",
        client_secret: str | None = "fedlogin-test-secret",
        client_auth: str = "client_secret_basic",
        redirect_uris: list[str] | None = None,
        exact_port: bool = False,
        require_nonce: bool = False,
        scope_gated_claims: bool = True,
        include_azp: bool = True,
        code_lifetime: float = 60.0,
        token_lifetime: int = 300,
        device_interval: int = 1,
        device_lifetime: int = 300,
        authorization_response_iss: bool = False,
        device_answer: dict | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.exact_port = exact_port
        # The token endpoint's answer to a code it never issued: real IdPs
        # say invalid_grant, and some invalid_code or invalid_request.
        self.unknown_code_answer: tuple[str, str] = ("invalid_grant", "unknown or already used code")
        self.require_nonce = require_nonce
        self.scope_gated_claims = scope_gated_claims
        self.include_azp = include_azp
        self.code_lifetime = code_lifetime
        self.token_lifetime = token_lifetime
        self.device_interval = device_interval
        self.device_lifetime = device_lifetime
        self.authorization_response_iss = authorization_response_iss
        # Fields that replace the device authorization answer's (e.g.
        # {"interval": -1}); the grant itself keeps device_interval.
        self.device_answer = dict(device_answer or {})

        self.lock = threading.RLock()
        self.clients: dict[str, Client] = {}
        self.users: dict[str, User] = {}
        self.counts: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.issued_id_tokens: list[str] = []
        self.next_token_mutation: Callable | None = None  # used once
        self.token_mutation: Callable | None = None  # used for every token
        self._failures: dict[str, list[int]] = collections.defaultdict(list)
        self._delays: dict[str, float] = {}
        self._codes: dict[str, _Code] = {}
        self._access_tokens: dict[str, tuple[str, str, float]] = {}  # token -> (sub, scope, exp)
        self._devices: dict[str, _DeviceGrant] = {}
        self._key_index = 0
        self.keys: list[SigningKey] = []  # published keys; the last one signs
        self._other_key = SigningKey("other", _pool_key(0))
        self._new_key()

        if client_id is not None:
            self.add_client(client_id, client_secret, client_auth, redirect_uris)

        idp = self

        class Handler(_Handler):
            provider = idp

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        h = f"[{host}]" if ":" in host else host
        self.issuer = f"http://{h}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="strict-idp", daemon=True)
        self._thread.start()

    # -- setup by the test -------------------------------------------------

    def add_client(self, client_id: str, client_secret: str | None = None,
                   auth_method: str = "client_secret_basic", redirect_uris: list[str] | None = None) -> Client:
        if auth_method not in ("client_secret_basic", "client_secret_post", "none"):
            raise ValueError(f"unknown client auth method {auth_method}")
        if auth_method != "none" and not client_secret:
            raise ValueError(f"{auth_method} needs a client secret")
        client = Client(client_id, client_secret if auth_method != "none" else None, auth_method,
                        list(redirect_uris or ["http://127.0.0.1/callback"]))
        with self.lock:
            self.clients[client_id] = client
        return client

    @property
    def client(self) -> Client:
        """The first registered client."""
        return next(iter(self.clients.values()))

    def add_user(self, sub: str, email: str | None = None, **claims) -> User:
        """Registers (or replaces) a user. Defaults: email_verified=True, name from email."""
        base: dict[str, Any] = {}
        if email is not None:
            base["email"] = email
            base["email_verified"] = True
            base["name"] = email.split("@")[0].capitalize()
        base.update(claims)
        user = User(sub, base)
        with self.lock:
            self.users[sub] = user
        return user

    def rotate_key(self, keep_old: bool = True) -> str:
        """Publishes a new key that signs from now on; returns its kid.
        keep_old=False drops the previous keys from the JWKS."""
        with self.lock:
            if not keep_old:
                self.keys.clear()
            return self._new_key().kid

    @property
    def current_key(self) -> SigningKey:
        return self.keys[-1]

    @property
    def kid(self) -> str:
        return self.current_key.kid

    def jwks(self) -> dict:
        with self.lock:
            return {"keys": [k.public_jwk() for k in self.keys]}

    def key_set(self) -> KeySet:
        """The published keys as a joserfc KeySet."""
        return KeySet.import_key_set(self.jwks())

    def fail_next(self, endpoint: str, status: int = 503, count: int = 1):
        """The next `count` requests to `endpoint` (a key of `counts`) answer `status`."""
        with self.lock:
            self._failures[endpoint].extend([status] * count)

    def delay(self, endpoint: str, seconds: float):
        """Each request to `endpoint` waits `seconds` before it is answered (0 to stop)."""
        with self.lock:
            self._delays[endpoint] = seconds

    def approve_device(self, user_code: str, sub: str):
        self._device_decision(user_code, sub, deny=False)

    def deny_device(self, user_code: str):
        self._device_decision(user_code, None, deny=True)

    @property
    def last_authorize(self) -> dict[str, str] | None:
        return self.authorize_requests[-1] if self.authorize_requests else None

    def discovery(self) -> dict:
        iss = self.issuer
        return {
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "jwks_uri": iss + "/jwks",
            "userinfo_endpoint": iss + "/userinfo",
            "device_authorization_endpoint": iss + "/device_authorization",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", DEVICE_GRANT],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": sorted({c.auth_method for c in self.clients.values()}),
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "nonce", "email",
                                 "email_verified", "name"],
            "authorization_response_iss_parameter_supported": self.authorization_response_iss,
        }

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- internals ---------------------------------------------------------

    def _new_key(self) -> SigningKey:
        self._key_index += 1
        key = SigningKey(f"k{self._key_index}-{secrets.token_hex(4)}", _pool_key(self._key_index))
        self.keys.append(key)
        return key

    def redirect_uri_registered(self, client: Client, uri: str) -> bool:
        if uri in client.redirect_uris:
            return True
        if self.exact_port:
            return False
        got = urllib.parse.urlsplit(uri)
        if got.scheme != "http" or got.hostname not in ("127.0.0.1", "::1"):
            return False
        for reg in client.redirect_uris:
            want = urllib.parse.urlsplit(reg)
            if (want.scheme, want.hostname, want.path, want.query) == (got.scheme, got.hostname, got.path, got.query):
                return True
        return False

    def _device_decision(self, user_code, sub, deny):
        with self.lock:
            grant = next((g for g in self._devices.values() if g.user_code == user_code), None)
            if grant is None or grant.status != "pending" or time.time() > grant.expires:
                raise KeyError(f"no pending device authorization with user code {user_code}")
            if deny:
                grant.status = "denied"
            else:
                if sub not in self.users:
                    raise KeyError(f"unknown user {sub}")
                grant.status, grant.sub = "approved", sub

    def _user_claims(self, user: User, scope: str) -> dict:
        scopes = set(scope.split())
        gated = {"email": "email", "email_verified": "email", "name": "profile",
                 "given_name": "profile", "family_name": "profile", "preferred_username": "profile"}
        out = {}
        for k, v in user.claims.items():
            if self.scope_gated_claims and k in gated and gated[k] not in scopes:
                continue
            out[k] = v
        return out

    def make_id_token(self, client_id: str, sub: str, scope: str, nonce: str | None) -> str:
        """An ID token for `sub`, mutated by next_token_mutation / token_mutation."""
        now = int(time.time())
        with self.lock:
            user = self.users[sub]
            claims = {"iss": self.issuer, "sub": sub, "aud": client_id}
            if self.include_azp:
                claims["azp"] = client_id
            claims.update(exp=now + self.token_lifetime, iat=now, auth_time=now)
            if nonce is not None:
                claims["nonce"] = nonce
            claims.update(self._user_claims(user, scope))
            header = {"alg": "RS256", "kid": self.current_key.kid, "typ": "JWT"}
            mode: Any = "current"
            mutation = self.next_token_mutation or self.token_mutation
            self.next_token_mutation = None
            if mutation is not None:
                header, claims, mode = mutation(copy.deepcopy(header), copy.deepcopy(claims))
            token = self.sign(header, claims, mode)
            self.issued_id_tokens.append(token)
            return token

    def sign(self, header: dict, claims: dict, mode: Any = "current") -> str:
        """A compact JWS of `claims` with exactly `header`, signed per `mode`."""
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if mode == "current":
            sig = self.current_key.sign_rs256(signing_input)
        elif mode == "other_key":
            sig = self._other_key.sign_rs256(signing_input)
        elif mode == "none":
            sig = b""
        elif mode == "hs256_pubkey":
            sig = hmac.new(self.current_key.public_pem(), signing_input, hashlib.sha256).digest()
        elif isinstance(mode, RSAKey):
            sig = SigningKey("x", mode).sign_rs256(signing_input)
        else:
            raise ValueError(f"unknown signing mode {mode!r}")
        return signing_input.decode() + "." + b64url(sig)

    def _authenticate_client(self, headers, form) -> Client:
        """RFC 6749 §2.3: exactly one method; the client's registered one."""
        auth = headers.get("Authorization")
        basic_id = basic_secret = None
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                raise OAuthError("invalid_client", "unsupported authentication scheme", 401,
                                 {"WWW-Authenticate": 'Basic realm="token"'})
            try:
                raw = base64.b64decode(value.strip(), validate=True).decode()
                i, sep, s = raw.partition(":")
                if not sep:
                    raise ValueError
                basic_id, basic_secret = urllib.parse.unquote_plus(i), urllib.parse.unquote_plus(s)
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401,
                                 {"WWW-Authenticate": 'Basic realm="token"'}) from None
        if basic_id is not None and "client_secret" in form:
            raise OAuthError("invalid_request", "more than one client authentication method")
        client_id = basic_id if basic_id is not None else form.get("client_id")
        if basic_id is not None and "client_id" in form and form["client_id"] != basic_id:
            raise OAuthError("invalid_request", "client_id does not match the authenticated client")
        www = {"WWW-Authenticate": 'Basic realm="token"'} if basic_id is not None else {}
        if not client_id:
            raise OAuthError("invalid_client", "no client authentication", 401, www)
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401, www)
        if client.auth_method == "client_secret_basic":
            if basic_id is None:
                raise OAuthError("invalid_client", "client must use client_secret_basic", 401,
                                 {"WWW-Authenticate": 'Basic realm="token"'})
            if not hmac.compare_digest(basic_secret.encode(), client.client_secret.encode()):
                raise OAuthError("invalid_client", "wrong client secret", 401, www)
        elif client.auth_method == "client_secret_post":
            if basic_id is not None or "client_secret" not in form:
                raise OAuthError("invalid_client", "client must use client_secret_post", 401, www)
            if not hmac.compare_digest(form["client_secret"].encode(), client.client_secret.encode()):
                raise OAuthError("invalid_client", "wrong client secret", 401)
        else:  # none: a public client
            if basic_id is not None or "client_secret" in form:
                raise OAuthError("invalid_client", "public client must not send a secret", 401, www)
        return client

    def token_endpoint(self, headers, form) -> dict:
        with self.lock:
            self.token_requests.append(dict(form))
            client = self._authenticate_client(headers, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type missing")
            if grant_type == "authorization_code":
                return self._code_grant(client, form)
            if grant_type == DEVICE_GRANT:
                return self._device_grant(client, form)
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")

    def _code_grant(self, client: Client, form) -> dict:
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code missing")
        entry = self._codes.pop(code, None)  # single use, whatever happens next
        if entry is None:
            # A code it never issued, sent with a redirect URI the client did not
            # register: refused for the redirect URI, as exact-matching IdPs do.
            if not self.redirect_uri_registered(client, form.get("redirect_uri") or ""):
                raise OAuthError("unauthorized_client", "redirect_uri is not registered for this client")
            raise OAuthError(*self.unknown_code_answer)
        if time.time() > entry.expires:
            raise OAuthError("invalid_grant", "code expired")
        if entry.client_id != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != entry.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if verifier is None:
            raise OAuthError("invalid_grant", "code_verifier missing")
        if not _VERIFIER_RE.match(verifier):
            raise OAuthError("invalid_request", "malformed code_verifier")
        if not hmac.compare_digest(pkce_challenge(verifier), entry.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return self._token_response(client.client_id, entry.sub, entry.scope, entry.nonce)

    def _device_grant(self, client: Client, form) -> dict:
        device_code = form.get("device_code")
        if not device_code:
            raise OAuthError("invalid_request", "device_code missing")
        grant = self._devices.get(device_code)
        if grant is None or grant.client_id != client.client_id or grant.status == "used":
            raise OAuthError("invalid_grant", "unknown device_code")
        now = time.time()
        if now > grant.expires:
            raise OAuthError("expired_token", "device code expired")
        too_fast = grant.last_poll is not None and now - grant.last_poll < grant.interval - 0.05
        grant.last_poll = now
        if grant.status == "denied":
            grant.status = "used"
            raise OAuthError("access_denied", "the user denied the request")
        if grant.status == "pending":
            if too_fast:
                grant.interval += 5  # RFC 8628 §3.5
                raise OAuthError("slow_down", "polling too fast")
            raise OAuthError("authorization_pending", "waiting for the user")
        grant.status = "used"
        return self._token_response(client.client_id, grant.sub, grant.scope, None)

    def _token_response(self, client_id, sub, scope, nonce) -> dict:
        access = secrets.token_urlsafe(32)
        self._access_tokens[access] = (sub, scope, time.time() + self.token_lifetime)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": scope,
            "id_token": self.make_id_token(client_id, sub, scope, nonce),
        }

    def device_authorization(self, headers, form) -> dict:
        with self.lock:
            client = self._authenticate_client(headers, form)
            scope = form.get("scope", "")
            if "openid" not in scope.split():
                raise OAuthError("invalid_scope", "scope must include openid")
            device_code = secrets.token_urlsafe(32)
            alphabet = "BCDFGHJKLMNPQRSTVWXZ"
            raw = "".join(secrets.choice(alphabet) for _ in range(8))
            user_code = raw[:4] + "-" + raw[4:]
            self._devices[device_code] = _DeviceGrant(
                device_code, user_code, client.client_id, scope,
                time.time() + self.device_lifetime, self.device_interval)
            verification = self.issuer + "/device"
            answer = {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verification,
                "verification_uri_complete": verification + "?" + urllib.parse.urlencode({"user_code": user_code}),
                "expires_in": self.device_lifetime,
                "interval": self.device_interval,
            }
            answer.update(self.device_answer)
            return answer

    def userinfo(self, headers) -> dict:
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        with self.lock:
            entry = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
            if entry is None or time.time() > entry[2]:
                raise OAuthError("invalid_token", "unknown or expired access token", 401,
                                 {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            sub, scope, _ = entry
            return dict(self._user_claims(self.users[sub], scope), sub=sub)


class _AuthorizeError(Exception):
    """An authorization error that is shown to the user, not redirected (§4.1.2.1)."""


class _Handler(http.server.BaseHTTPRequestHandler):
    provider: StrictIdP
    protocol_version = "HTTP/1.1"
    server_version = "StrictIdP/1"

    ROUTES = {
        "/.well-known/openid-configuration": "discovery",
        "/jwks": "jwks",
        "/authorize": "authorize",
        "/token": "token",
        "/userinfo": "userinfo",
        "/device_authorization": "device_authorization",
        "/device": "device",
    }

    def log_message(self, *args):
        pass

    # -- plumbing --

    def _dispatch(self, method):
        idp = self.provider
        url = urllib.parse.urlsplit(self.path)
        endpoint = self.ROUTES.get(url.path)
        body = self._read_body()
        with idp.lock:
            idp.counts[endpoint or "unknown"] += 1
            idp.requests.append((endpoint or "unknown", method, self.path))
            failures = idp._failures.get(endpoint)
            fail = failures.pop(0) if failures else None
            delay = idp._delays.get(endpoint, 0)
        if delay:
            time.sleep(delay)
        if endpoint is None:
            return self._send(404, b"not found", "text/plain")
        if fail is not None:
            return self._send(fail, json.dumps({"error": "temporarily_unavailable"}).encode(), "application/json")
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        form = {}
        if method == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded" and endpoint not in ("userinfo",):
                return self._json(400, {"error": "invalid_request",
                                        "error_description": "body must be application/x-www-form-urlencoded"})
            pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            names = [k for k, _ in pairs]
            if len(names) != len(set(names)):
                return self._json(400, {"error": "invalid_request",
                                        "error_description": "repeated parameter"})
            form = dict(pairs)
        try:
            getattr(self, "_do_" + endpoint)(method, query, form)
        except OAuthError as e:
            payload = {"error": e.error}
            if e.description:
                payload["error_description"] = e.description
            self._json(e.status, payload, e.headers)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def end_headers(self):
        # One request per connection: after stop() nothing answers any more,
        # not even on a connection a client kept open.
        self.send_header("Connection", "close")
        self.close_connection = True
        super().end_headers()

    def _send(self, status, body: bytes, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _html(self, status, text):
        page = f"<!doctype html><html><head><title>Strict IdP</title></head><body>{text}</body></html>"
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    # -- endpoints --

    def _do_discovery(self, method, query, form):
        if method != "GET":
            return self._send(405, b"", "text/plain", {"Allow": "GET"})
        self._json(200, self.provider.discovery())

    def _do_jwks(self, method, query, form):
        if method != "GET":
            return self._send(405, b"", "text/plain", {"Allow": "GET"})
        self._json(200, self.provider.jwks())

    def _do_token(self, method, query, form):
        if method != "POST":
            raise OAuthError("invalid_request", "the token endpoint takes POST")
        self._json(200, self.provider.token_endpoint(self.headers, form))

    def _do_device_authorization(self, method, query, form):
        if method != "POST":
            raise OAuthError("invalid_request", "the device authorization endpoint takes POST")
        self._json(200, self.provider.device_authorization(self.headers, form))

    def _do_userinfo(self, method, query, form):
        self._json(200, self.provider.userinfo(self.headers))

    def _do_authorize(self, method, query, form):
        idp = self.provider
        # Authorization parameters come from the query; an OpenID POST request
        # may carry them in the body instead.
        params = dict(query)
        if method == "POST":
            for k, v in form.items():
                if k not in ("sub", "action"):
                    params.setdefault(k, v)
        with idp.lock:
            idp.authorize_requests.append(dict(params))
        try:
            client, redirect_uri = self._authorize_client(params)
        except _AuthorizeError as e:
            return self._html(400, f"<h1>Invalid request</h1><p>{html.escape(str(e))}</p>")
        state = params.get("state")

        def back(**values):
            if state is not None:
                values["state"] = state
            if idp.authorization_response_iss:
                values["iss"] = idp.issuer
            sep = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
            self._redirect(redirect_uri + sep + urllib.parse.urlencode(values))

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in params.get("scope", "").split():
            return back(error="invalid_scope", error_description="scope must include openid")
        challenge = params.get("code_challenge")
        if not challenge:
            return back(error="invalid_request", error_description="code_challenge required")
        if params.get("code_challenge_method") != "S256":
            return back(error="invalid_request", error_description="code_challenge_method must be S256")
        if not _CHALLENGE_RE.match(challenge):
            return back(error="invalid_request", error_description="malformed code_challenge")
        if idp.require_nonce and not params.get("nonce"):
            return back(error="invalid_request", error_description="nonce required")

        if method == "GET":
            return self._html(200, (
                f"<h1>Sign in to {html.escape(client.client_id)}</h1>"
                '<form method="post"><label>Subject <input name="sub"></label>'
                '<button name="action" value="approve">Sign in</button>'
                '<button name="action" value="deny">Deny</button></form>'))
        if form.get("action") == "deny":
            return back(error="access_denied")
        sub = form.get("sub")
        with idp.lock:
            if not sub or sub not in idp.users:
                return self._html(400, f"<h1>Unknown user</h1><p>{html.escape(sub or '')}</p>")
            code = secrets.token_urlsafe(32)
            idp._codes[code] = _Code(client.client_id, redirect_uri, challenge, sub,
                                     params.get("nonce"), params["scope"], time.time() + idp.code_lifetime)
        back(code=code)

    def _authorize_client(self, params):
        idp = self.provider
        client_id = params.get("client_id")
        if not client_id:
            raise _AuthorizeError("client_id missing")
        client = idp.clients.get(client_id)
        if client is None:
            raise _AuthorizeError(f"unknown client {client_id}")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise _AuthorizeError("redirect_uri missing")
        if not idp.redirect_uri_registered(client, redirect_uri):
            raise _AuthorizeError(f"redirect_uri {redirect_uri} is not registered")
        return client, redirect_uri

    def _do_device(self, method, query, form):
        idp = self.provider
        user_code = form.get("user_code") or query.get("user_code") or ""
        if method == "GET":
            return self._html(200, (
                '<h1>Device sign-in</h1><form method="post">'
                f'<input name="user_code" value="{html.escape(user_code)}">'
                '<input name="sub"><button name="action" value="approve">Sign in</button>'
                '<button name="action" value="deny">Deny</button></form>'))
        try:
            if form.get("action") == "deny":
                idp.deny_device(user_code)
                return self._html(200, "<h1>Denied</h1>")
            idp.approve_device(user_code, form.get("sub"))
        except KeyError as e:
            return self._html(400, f"<h1>Error</h1><p>{html.escape(str(e))}</p>")
        self._html(200, "<h1>Signed in</h1><p>You can return to your device.</p>")


# ---------------------------------------------------------------------------


_tls = None  # one TLS context for every browser (loading the CA bundle is slow)


def browser_sign_in(auth_url: str, sub: str, deny: bool = False, follow: bool = True, timeout: float = 30.0):
    """Acts as the user's browser: POSTs the sign-in form (`sub`, or
    action=deny) to `auth_url` and follows redirects, e.g. to the daemon's
    loopback listener. Works with StrictIdP and oidc-provider-mock, and with a
    StrictIdP device verification URL. Returns the final httpx.Response
    (follow=False: the provider's own response, e.g. the 302)."""
    import httpx

    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    data = {"action": "deny"} if deny else {"sub": sub}
    with httpx.Client(follow_redirects=follow, trust_env=False, timeout=timeout, verify=_tls) as browser:
        return browser.post(auth_url, data=data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
