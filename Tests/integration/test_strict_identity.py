"""Strict identity through the real parts (libpam, pam_fedlogin.so, fedlogind,
fedlogin-directoryd, the strict test provider): `email_verified` must be the
JSON boolean true (the string "true" only where idp.NAME.email_verified_string
says so), and emails compare in ASCII only, so a Unicode look-alike address is
not the directory user's."""
import pytest

import pamclient as pc
from strict_idp import mutations
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"


def strict_spec(strict, **extra):
    return {"issuer": strict.issuer, "client_id": "fedlogin", "client_secret": "fedlogin-test-secret",
            "client_auth": "client_secret_basic", **extra}


@pytest.mark.parametrize("mutation", ["email_verified_string_true", "email_verified_yes", "email_verified_one"])
def test_email_verified_that_is_not_the_boolean_true_is_refused(tmp_path, strict, mutation, in_namespace):
    name = unique("ver")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name])
    strict.next_token_mutation = getattr(mutations, mutation)
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert "could not be verified" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert "the IdP says the email address is not verified" in w.fedlogind.log_text()
        assert passwd_entry(name) is None and w.reports(name) == []
    finally:
        w.stop()


def test_the_string_true_is_accepted_only_where_configured(tmp_path, strict, in_namespace):
    name = unique("vstr")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict_spec(strict, email_verified_string=True), [name])
    strict.next_token_mutation = mutations.email_verified_string_true
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert passwd_entry(name) is not None
    finally:
        w.stop()


def test_yes_is_refused_even_where_the_string_true_is_accepted(tmp_path, strict, in_namespace):
    name = unique("vyes")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict_spec(strict, email_verified_string=True), [name])
    strict.next_token_mutation = mutations.email_verified_yes
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert passwd_entry(name) is None
    finally:
        w.stop()


@pytest.mark.parametrize("local", ["kate", "sam"])
def test_a_lookalike_email_is_not_the_directory_users(tmp_path, strict, local, in_namespace):
    # "kate" -> KELVIN SIGN + "ate" (lowercases to k); "sam" -> LONG S + "am" (uppercases to S).
    name = unique(local)
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [{"username": name, "email": f"{name}@example.test"}])
    strict.next_token_mutation = mutations.email_lookalike
    try:
        codes, a = w.login(name, [""])
        assert codes == [pc.PAM_AUTH_ERR], a.transcript
        assert "belongs to another person" in a.messages(pc.PAM_ERROR_MSG)[0]
        assert "email mismatch" in w.fedlogind.log_text()
        assert passwd_entry(name) is None and w.reports(name) == []
    finally:
        w.stop()


def test_an_ascii_case_difference_still_matches(tmp_path, strict, in_namespace):
    name = unique("case")
    strict.add_user(name, email=f"{name.upper()}@EXAMPLE.test")
    w = World(tmp_path, strict, [{"username": name, "email": f"{name}@example.test"}])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE])
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
    finally:
        w.stop()
