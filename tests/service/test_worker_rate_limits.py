"""Rate limits hold across `crmsync worker` processes (issue 16): two workers on one Google
Cloud project (the fake on 127.0.0.1), their limiters in a real Redis through
CRMSYNC_REDIS_URL, the schedule in real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.service.deployment import Deployment
from crmsync.service.shared_rate_limits import KEY_PREFIX
from tests.groupware.google.fake_google import FakeGoogle
from tests.groupware.google.fake_server import FakeGoogleServer
from tests.redis_server import start_redis
from tests.service.google_world import REP, GoogleWorld
from tests.service.worlds import BOTH_WAYS
from tests.store.conftest import POSTGRES_URL, postgres_database

pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")

from crmsync.service.workers import TASK, Dispatcher, celery_app
from tests.service.test_celery_workers import start_worker, wait_until

OTHER = "otto@example.com"
# How long the project's quota stays spent once a request spent it.
QUOTA_WINDOW = 3.0


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    redis = start_redis(tmp_path / "redis")
    try:
        yield redis.url
    finally:
        redis.stop()


def test_two_workers_wait_out_one_project_quota_together(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not POSTGRES_URL:
        pytest.skip("CRMSYNC_TEST_POSTGRES_URL is not set (see .ci/run): no PostgreSQL")
    for url in postgres_database():
        monkeypatch.setenv("CRMSYNC_STATE_URL", url)
        server = FakeGoogleServer(FakeGoogle(users=(REP, OTHER)))
        world = GoogleWorld(tmp_path / "home", BOTH_WAYS, server=server)
        try:
            _two_workers(world, redis_url, tmp_path)
        finally:
            world.close()


def _two_workers(world: GoogleWorld, redis_url: str, tmp_path: Path) -> None:
    from redis import Redis

    other = world.crm.create_user(OTHER, "Otto Other")
    world.service.store.save_config(replace(BOTH_WAYS, user_ids=(world.rep.id, other.id)))
    deployment = Deployment.from_env(world.home)
    app = celery_app(redis_url)
    sent: list[object] = []
    held: list[list[object]] = []

    def send(batch: list[tuple[str, int]]) -> None:
        args = [str(world.home), deployment.org, batch, {"interval": 3600}, 60]
        if sent:
            held.append(args)  # the second batch waits for the test
        else:
            sent.append(app.send_task(TASK, args=args))

    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            workers.append(start_worker(world, redis_url, log, CRMSYNC_REDIS_URL=redis_url))
        # Both consume before anything is sent, so the second batch finds the idle one.
        wait_until(lambda: all("ready" in log.read_text() for log in logs), "both workers up")
        world.fake.exhaust_project_quota(QUOTA_WINDOW)
        dispatcher = Dispatcher(deployment, send, batch=1, lease_ttl=dt.timedelta(minutes=1))
        assert dispatcher.round(world.service) == 2  # one batch sent, one kept back
        # The first rep's worker was refused and told Redis to hold the whole project...
        blocked = f"{KEY_PREFIX}{world.connection.scope_name.lower()}:blocked"
        redis = Redis.from_url(redis_url)
        wait_until(lambda: redis.exists(blocked), "the project's wait was shared")
        assert world.fake.quota_refusals == 1
        # ...so the other worker, taking the second rep meanwhile, waits it out first.
        app.send_task(TASK, args=held.pop())
        store = world.service.store
        wait_until(
            lambda: all(
                store.rep_status(rep).last_cycle_finished and not store.rep_status(rep).lease_owner
                for rep in (world.rep.id, other.id)
            ),
            "both reps synced",
        )
        assert all(store.rep_status(rep).last_error is None for rep in (world.rep.id, other.id))
        assert world.fake.quota_refusals == 1  # one refusal for the two workers
        assert all("succeeded" in log.read_text() for log in logs)  # each ran a batch
        redis.close()
    finally:
        for process in workers:
            os.killpg(process.pid, signal.SIGTERM)
        for process in workers:
            process.wait(30)
