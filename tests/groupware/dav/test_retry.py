"""Retry with backoff against a flaky proxy in front of a real Radicale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy
from crmsync.groupware.dav.local_server import LocalRadicale
from crmsync.groupware.dav.mailbox import open_mailbox
from tests.groupware.contract import sample_contact
from tests.groupware.dav.flaky_proxy import FlakyProxy
from tests.servers import REP_EMAIL, SERVICE_ACCOUNT, SERVICE_PASSWORD, start_radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRadicale]:
    server = start_radicale(tmp_path_factory.mktemp("retry"))
    yield server
    server.stop()


def _connection(url: str, sleeps: list[float], attempts: int = 4) -> DavConnection:
    policy = RetryPolicy(max_attempts=attempts, base_delay=0.01, jitter=0.0, sleep=sleeps.append)
    return DavConnection(url, SERVICE_ACCOUNT, SERVICE_PASSWORD, retry=policy, timeout=0.5)


def _settings(url: str) -> OrgSettings:
    return OrgSettings(server_url=url, service_account=SERVICE_ACCOUNT)


@pytest.mark.parametrize("failure", ["503", "reset", "stall"])
def test_transient_failures_are_retried(radicale: LocalRadicale, failure: str) -> None:
    proxy = FlakyProxy(radicale.port, [failure] * 2)
    sleeps: list[float] = []
    connection = _connection(proxy.url, sleeps)
    try:
        mailbox = open_mailbox(connection, _settings(proxy.url), REP_EMAIL)
        written = mailbox.contacts.create(sample_contact(), f"retry-{failure}")
        assert written.record == sample_contact()
    finally:
        proxy.close()
    assert len(sleeps) == 2
    if failure == "503":
        assert sleeps == [0.0, 0.0]  # Retry-After: 0 honoured
    else:
        assert sleeps == [0.01, 0.02]  # exponential backoff


def test_server_that_never_recovers_is_unavailable(radicale: LocalRadicale) -> None:
    proxy = FlakyProxy(radicale.port, [], forever="503")
    sleeps: list[float] = []
    connection = _connection(proxy.url, sleeps, attempts=3)
    try:
        with pytest.raises(ServerUnavailable) as caught:
            open_mailbox(connection, _settings(proxy.url), REP_EMAIL)
    finally:
        proxy.close()
    assert connection.requests_made == 3
    assert caught.value.transient and caught.value.suggestion
    assert "503" in caught.value.message


def test_retry_after_is_capped_and_backoff_grows() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0, max_retry_after=10)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    from crmsync.groupware.dav.local_server import free_port

    sleeps: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable):
        open_mailbox(_connection(url, sleeps, attempts=2), _settings(url), REP_EMAIL)
    assert len(sleeps) == 1
