"""Numbers from an IdP are bounded before fedlogind waits on them: a device
authorization answer with interval -1 or 1e20 (RFC 8628 §3.2) signs in,
polling at 1 s (or 60 s at most), with one log line naming what was clamped.
Through libpam, pam_fedlogin.so, fedlogind and the strict test provider."""
import pytest

import pamclient as pc
from strict_idp import StrictIdP, browser_sign_in
from world import World, passwd_entry, unique

pytestmark = pytest.mark.namespace

PASSCODE = "Correct-Horse9"


class ApprovesOnSecondPoll(StrictIdP):
    """Answers the first poll with authorization_pending, so fedlogind must
    wait its interval once; approves the grant before the second."""

    def _device_grant(self, client, form):
        grant = self._devices.get(form.get("device_code"))
        if grant is not None and grant.status == "pending" and self.counts["polls"] >= 1:
            grant.status, grant.sub = "approved", self.approve_as
        self.counts["polls"] += 1
        return super()._device_grant(client, form)


def test_a_negative_interval_is_clamped_and_the_sign_in_completes(tmp_path, in_namespace):
    strict = ApprovesOnSecondPoll(device_interval=1, device_answer={"interval": -1})
    name = unique("negint")
    strict.add_user(name, email=f"{name}@example.test")
    strict.approve_as = name
    w = World(tmp_path, strict, [name])
    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=lambda url: None, service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        assert strict.counts["polls"] >= 2
        assert w.fedlogind.alive
        log = w.fedlogind.log_text()
        assert log.count("numbers are out of range") == 1
        assert "interval -1 -> 1" in log
        assert passwd_entry(name) is not None
    finally:
        w.stop()
        strict.stop()


def test_a_huge_interval_is_clamped(tmp_path, in_namespace):
    strict = StrictIdP(device_answer={"interval": 1e20, "expires_in": 1e20})
    name = unique("hugeint")
    strict.add_user(name, email=f"{name}@example.test")
    w = World(tmp_path, strict, [name])

    def approve_now(url):
        if "user_code=" in url:
            return browser_sign_in(url, name)

    try:
        codes, a = w.login(name, ["", PASSCODE, PASSCODE], browser=approve_now, service="sshd")
        assert codes == [pc.PAM_SUCCESS, pc.PAM_SUCCESS], a.transcript
        info = a.messages(pc.PAM_TEXT_INFO)[0]
        assert "You have " in info
        log = w.fedlogind.log_text()
        assert "interval 1e+20 -> 60" in log and "expires_in 1e+20 -> 3600" in log
        assert w.fedlogind.alive
    finally:
        w.stop()
        strict.stop()
