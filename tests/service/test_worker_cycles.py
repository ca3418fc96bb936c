"""A Celery worker's cycle as `crmsync.service.workers` runs it (issue 16), in this process
against SQLite and a real Radicale: what a quiet one reads from the state database, that
a save from elsewhere (a new service password) still reaches the next one, that a secret
it cannot read is the rep's error, and that a batch whose lease moved on asks the server
nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.sync import ErrorType, ServerUnavailable
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.store import StateStore
from tests.servers import DavServerInfo, running_dav_server
from tests.service.http_proxy import RuleProxy
from tests.service.test_quiet_cycle_cost import MOST_STATEMENTS, quiet_world
from tests.service.worlds import World
from tests.store.test_cycle_reads import statements

pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")

from crmsync.service import workers

TTL = dt.timedelta(minutes=1)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[DavServerInfo, RuleProxy]]:
    """Radicale, reached through a proxy that counts the requests."""
    with running_dav_server("radicale", tmp_path) as server:
        proxy = RuleProxy(server.url)
        try:
            yield replace(server, url=proxy.url), proxy
        finally:
            proxy.close()


@pytest.fixture
def world(proxied: tuple[DavServerInfo, RuleProxy], tmp_path: Path) -> Iterator[World]:
    world = quiet_world(proxied[0], tmp_path / "home", 2)
    try:
        yield world
    finally:
        # The worker thread's service for the deployment (this thread's, here).
        kept = workers._per_thread.__dict__.get("services", {})
        service = kept.pop(world.service.deployment, None)
        if service is not None:
            service.close()
        world.close()


def claimed_cycle(world: World) -> str:
    """Claim the rep as the scheduler does and run its cycle as a worker does."""
    return worker_cycle(world, claim(world))


def claim(world: World) -> int:
    fence = world.service.store.claim_rep(world.rep.id, "scheduler-test", TTL)
    assert fence is not None
    return fence


def worker_cycle(world: World, fence: int) -> str:
    return workers._one_cycle(
        world.service.deployment, world.rep.id, fence, workers.Cadence(interval=3600), TTL
    )


def test_a_workers_second_quiet_cycle_reads_no_settings(world: World) -> None:
    assert claimed_cycle(world) == "ok"  # the thread's service opens the mail server
    service = workers._service(world.service.deployment)
    with statements(service.store) as seen:
        assert claimed_cycle(world) == "ok"
    read = " ".join(seen)
    # The org's settings version says they still hold: no settings, CRM section or secret.
    for table in ("org_settings", "crm_settings", "sync_configs", "secrets"):
        assert table not in read, seen
    assert len(seen) <= MOST_STATEMENTS, seen  # the lease is checked with the rep's row


def test_a_new_service_password_reaches_the_workers_next_cycle(world: World) -> None:
    assert claimed_cycle(world) == "ok"
    # Saved elsewhere (the console): the worker's open connection signs in as before.
    world.service.store.set_secret(SERVICE_PASSWORD, "not the password")
    assert claimed_cycle(world) == "error"
    status = world.service.store.rep_status(world.rep.id)
    assert status.last_error is not None and status.recognized is False
    world.service.store.set_secret(SERVICE_PASSWORD, world.server.password)
    assert claimed_cycle(world) == "ok"


def test_a_secret_that_cannot_be_decrypted_is_the_reps_error_not_raised(
    world: World, tmp_path: Path
) -> None:
    assert claimed_cycle(world) == "ok"
    # Saved with another key file (the key replaced, say): the settings version moves and
    # the workers' key cannot decrypt the new password.
    other = StateStore(world.service.deployment.state_url, tmp_path / "another.key")
    other.set_secret(SERVICE_PASSWORD, world.server.password)
    other.close()
    assert claimed_cycle(world) == "error"  # the batch's other reps go on
    report = world.service.sync_rep(world.rep)  # crmsync sync: a report, the next rep next
    assert report.error is not None and "cannot be decrypted" in report.error
    [row] = world.service.store.errors(rep_id=world.rep.id)  # the same failure, twice
    assert row.occurrences == 2 and "cannot be decrypted" in row.message
    assert row.error_type is ErrorType.INTERNAL


def test_a_batch_whose_lease_moved_on_sends_no_request(
    world: World, proxied: tuple[DavServerInfo, RuleProxy]
) -> None:
    proxy = proxied[1]
    stale = claim(world)
    fresh = claim(world)  # claimed again (the batch redelivered, say): a new fence
    before = proxy.requests
    assert worker_cycle(world, stale) == "lease lost"
    assert proxy.requests == before
    assert world.service.store.rep_status(world.rep.id).lease_owner is not None  # still held
    assert worker_cycle(world, fresh) == "ok"
    assert proxy.requests > before  # the lease's holder does reach the server


def test_a_crm_that_cannot_be_asked_for_the_rep_is_the_reps_error_not_the_batchs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker asks the CRM who the rep is before the cycle: that failing (the CRM down,
    # its key unreadable) failed the whole batch with no error row, the lease left to
    # expire. Now it is the rep's error row, and the rep waits one failure's backoff.
    assert claimed_cycle(world) == "ok"
    service = workers._service(world.service.deployment)

    def unreachable(rep_id: str) -> None:
        raise ServerUnavailable("The CRM did not answer.", "Check that it is up.")

    monkeypatch.setattr(service.crm, "get_user", unreachable)
    assert claimed_cycle(world) == "error"
    (row,) = world.service.store.errors()
    assert (row.error_type, row.message) == (
        ErrorType.SERVER_UNAVAILABLE,
        "The CRM did not answer.",
    )
    status = world.service.store.rep_status(world.rep.id)
    assert status.lease_owner is None
    assert status.next_due is not None and status.next_due > dt.datetime.now(dt.UTC)
