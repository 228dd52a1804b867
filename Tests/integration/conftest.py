"""Fixtures and guards for fedlogin's integration tests.

Run them as root inside the private mount namespace:

    sudo Tests/integration/run-in-namespace.sh .venv/bin/pytest Tests/integration

Markers:
  unprivileged  the test needs neither root nor the namespace
  namespace     the test creates accounts or otherwise writes /etc or /home:
                it fails unless run inside run-in-namespace.sh

Without root every test not marked `unprivileged` is skipped. Outside the
namespace the session fails if the host's account or PAM files changed.
"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

import sandbox  # noqa: E402
from strict_idp import StrictIdP  # noqa: E402

NOT_ROOT = ("fedlogin integration tests run as root in a private mount namespace: "
            "sudo Tests/integration/run-in-namespace.sh .venv/bin/pytest Tests/integration")
NOT_IN_NAMESPACE = ("this test writes accounts and must run inside the private mount namespace: "
                    "Tests/integration/run-in-namespace.sh .venv/bin/pytest Tests/integration")


def pytest_configure(config):
    config.addinivalue_line("markers", "unprivileged: needs neither root nor the private namespace")
    config.addinivalue_line("markers", "namespace: writes accounts; only inside run-in-namespace.sh")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason=NOT_ROOT)
    for item in items:
        if item.get_closest_marker("unprivileged") is None:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    if item.get_closest_marker("namespace") is not None and not sandbox.in_namespace():
        pytest.fail(NOT_IN_NAMESPACE, pytrace=False)


def pytest_sessionstart(session):
    session.config._fedlogin_etc = None if sandbox.in_namespace() else sandbox.etc_snapshot()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_fedlogin_etc", None)
    if before is None:
        return
    changed = sandbox.etc_changes(before)
    if changed:
        sys.stderr.write(f"\nERROR: the tests changed this machine's files: {', '.join(changed)}\n")
        session.exitstatus = 1


@pytest.fixture
def in_namespace():
    """Fails the test unless it runs inside run-in-namespace.sh."""
    if not sandbox.in_namespace():
        pytest.fail(NOT_IN_NAMESPACE, pytrace=False)


@pytest.fixture(scope="session")
def idp_mock(tmp_path_factory):
    """oidc-provider-mock, one for the session (it takes ~1 s to start)."""
    idp = sandbox.start_mock_idp(tmp_path_factory.mktemp("idp-mock"))
    yield idp
    idp.stop()


@pytest.fixture
def strict_idp():
    """A fresh StrictIdP per test (tests change its users, keys and mutations).
    Client "fedlogin", secret "fedlogin-test-secret", client_secret_basic."""
    idp = StrictIdP()
    yield idp
    idp.stop()


@pytest.fixture
def strict(strict_idp):
    """The same StrictIdP under the short name the tests use."""
    return strict_idp


@pytest.fixture(autouse=True)
def _stop_processes_left_running():
    """Stops, by pid, any process a test started and left running."""
    before = {p.pid for p in sandbox.live_processes()}
    yield
    for p in sandbox.live_processes():
        if p.pid not in before:
            p.stop()
