"""One org's limiter shared by worker processes (issue 16): the fake Salesforce on
127.0.0.1, real Redis. Each connection below has its own Redis client, as two
`crmsync worker` processes would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from crmsync.crm.salesforce import RetryPolicy
from crmsync.crm.salesforce.connection import SalesforceConnection, org_scope
from crmsync.crm.salesforce.errors import RequestLimitExceeded
from crmsync.service.shared_rate_limits import SharedRateLimits
from tests.crm.salesforce.harness import OrgHarness, Sleeps, fake_harness
from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

# Redis keeps the hold on its own clock, so the waits below are real (and short).
HOLD = 0.3


class RealSleeps(Sleeps):
    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        time.sleep(seconds)


@pytest.fixture
def org() -> Iterator[OrgHarness]:
    harness = fake_harness()
    yield harness
    harness.close()


def worker_connection(org: OrgHarness, url: str) -> tuple[SalesforceConnection, RealSleeps]:
    """A connection to ``org`` whose limiter state lives in Redis at ``url``."""
    sleeps = RealSleeps()
    config = org.crm.conn.config
    shared = SharedRateLimits(url)
    conn = SalesforceConnection(
        config,
        retry=RetryPolicy(sleep=sleeps, random=lambda: 0.5, limit_hold=HOLD),
        limiter=shared.limiter(org_scope(config)),
    )
    return conn, sleeps


def test_a_spent_allocation_met_by_one_worker_holds_back_the_others(
    org: OrgHarness, redis_url: str
) -> None:
    assert org.fake is not None
    first, _ = worker_connection(org, redis_url)
    second, second_slept = worker_connection(org, redis_url)
    first.get("limits/")
    second.get("limits/")
    assert second_slept.waits == []  # nobody was told to wait yet

    org.fake.api_limit = org.fake.api_used  # the next call is one too many
    with pytest.raises(RequestLimitExceeded):
        first.get("limits/")
    calls = len(org.fake.calls)
    org.fake.api_limit = 1_000_000  # whatever the second worker sends now is answered
    second.get("limits/")
    # The second worker, which never met the refusal, waited the org's hold out first.
    assert second_slept.waits and all(0 < wait <= HOLD for wait in second_slept.waits)
    assert len(org.fake.calls) == calls + 1
    for conn in (first, second):
        conn.close()


def test_another_org_is_not_held_back(org: OrgHarness, redis_url: str) -> None:
    other = fake_harness()
    try:
        assert org.fake is not None
        spent, _ = worker_connection(org, redis_url)
        elsewhere, elsewhere_slept = worker_connection(other, redis_url)
        org.fake.api_limit = org.fake.api_used
        with pytest.raises(RequestLimitExceeded):
            spent.get("limits/")
        elsewhere.get("limits/")
        assert elsewhere_slept.waits == []
        assert org_scope(org.crm.conn.config) != org_scope(other.crm.conn.config)
    finally:
        other.close()
