"""What the `crmsync scheduler` dispatcher asks of others (issue 16): the CRM's user list
once per interval (and from the CRM as saved since), and nothing claimed while the real
Redis broker's queue is deep."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.redis_server import start_redis
from tests.service.salesforce_world import fake_crm_settings, fake_salesforce

pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")

from crmsync.service.worker_metrics import QUEUE, BrokerQueue
from crmsync.service.workers import TASK, Dispatcher, celery_app


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(tmp_path: Path) -> Iterator[SyncService]:
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        yield service


def test_the_crm_user_list_is_read_once_per_interval(
    service: SyncService, monkeypatch: pytest.MonkeyPatch
) -> None:
    rita = service.crm.create_user("rita@example.com", "Rita Rep").id
    reads: list[object] = []
    list_users = service.crm.list_users

    def counted(**options: object) -> object:
        reads.append(options)
        return list_users(**options)  # type: ignore[arg-type]

    monkeypatch.setattr(service.crm, "list_users", counted)
    sent: list[str] = []
    dispatcher = Dispatcher(
        service.deployment, lambda batch: sent.extend(rep for rep, _ in batch), users_every=60
    )
    clock = dispatcher.users.clock = Clock()
    for _ in range(5):  # rounds a second apart, all inside the minute
        dispatcher.round(service)
        clock.now += 1
    assert len(reads) == 1 and sent == [rita]

    hugo = service.crm.create_user("hugo@example.com", "Hugo Hired").id
    dispatcher.round(service)
    assert sent == [rita] and len(reads) == 1  # not read again yet
    clock.now += 60
    dispatcher.round(service)
    assert len(reads) == 2 and sent == [rita, hugo]  # scheduled once the list was read


def test_a_crm_saved_elsewhere_lists_the_users_of_the_next_round(service: SyncService) -> None:
    rita = service.crm.create_user("rita@example.com", "Rita Rep").id
    sent: list[str] = []
    dispatcher = Dispatcher(
        service.deployment, lambda batch: sent.extend(rep for rep, _ in batch), users_every=3600
    )
    assert dispatcher.round(service) == 1 and sent == [rita]
    fake, pem, salesforce_rep = fake_salesforce("rep@example.com")
    try:
        # Saved on the console (another service): the switch to Salesforce, then a new key.
        with SyncService(service.deployment) as console:
            console.configure_crm(fake_crm_settings(fake.url, fake.client_id), pem)
            dispatcher.round(service)
            assert salesforce_rep in sent  # listed by Salesforce, within the hour
            salesforce = service.crm
            console.store.set_secret(SALESFORCE_SECRET, pem + "\n")
            dispatcher.round(service)
            assert service.crm is not salesforce  # opened with the new key
    finally:
        service.close()  # lets go of the shared Salesforce CRM before its server stops
        fake.stop()


def test_nothing_is_claimed_while_the_broker_queue_is_deep(
    tmp_path: Path, service: SyncService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.service.workers")
    redis = start_redis(tmp_path / "redis")
    try:
        reps = [service.crm.create_user(f"rep{i}@example.com", f"Rep {i}").id for i in range(5)]
        app = celery_app(redis.url)
        queue = BrokerQueue(redis.url)
        sent: list[str] = []

        def send(batch: list[tuple[str, int]]) -> None:
            app.send_task(TASK, args=["home", "org", batch, {}, 60])
            sent.extend(rep for rep, _ in batch)

        dispatcher = Dispatcher(
            service.deployment, send, batch=1, queued=queue.length, max_queued=2
        )
        assert dispatcher.round(service) == 2  # then two batches wait for a worker
        assert queue.length() == 2
        assert dispatcher.round(service) == 0  # three reps are due, none is claimed
        assert dispatcher.round(service) == 0
        said = [r.getMessage() for r in caplog.records]
        assert said == ["2 batches wait for a worker: no claims until one is taken"]  # once
        unleased = [s.rep_id for s in service.store.rep_statuses() if s.lease_owner is None]
        assert sorted(unleased) == sorted(set(reps) - set(sent)) and len(unleased) == 3

        from redis import Redis

        redis_client = Redis.from_url(redis.url)
        assert redis_client.rpop(QUEUE) is not None  # a worker took a batch
        assert dispatcher.round(service) == 1  # room for one more
        assert dispatcher.round(service) == 0
        assert len(sent) == len(set(sent)) == 3  # each rep sent once
        redis_client.close()
    finally:
        redis.stop()
