"""Cycles on Celery workers (issue 16): real Redis (broker), real PostgreSQL (schedule),
real Radicale, `crmsync worker` processes fed by the scheduler's batches."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, ItemKind
from crmsync.service.deployment import Deployment
from tests.redis_server import start_redis
from tests.servers import running_dav_server
from tests.service.google_world import GoogleWorld
from tests.service.http_proxy import Request, RuleProxy
from tests.service.worlds import BOTH_WAYS, World
from tests.store.conftest import POSTGRES_URL, postgres_database

pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")

from crmsync.service.workers import TASK, Dispatcher, celery_app

DEADLINE = 90.0


def ada() -> Contact:
    return Contact(first_name="Ada", last_name="Lovelace", email="ada@example.org")


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    if not POSTGRES_URL:
        pytest.skip("CRMSYNC_TEST_POSTGRES_URL is not set (see .ci/run): no PostgreSQL")
    with running_dav_server("radicale", tmp_path) as server:
        for url in postgres_database():
            monkeypatch.setenv("CRMSYNC_STATE_URL", url)
            w = World(server, tmp_path / "home", BOTH_WAYS)
            yield w
            w.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    redis = start_redis(tmp_path / "redis")
    try:
        yield redis.url
    finally:
        redis.stop()


def start_worker(
    world: World | GoogleWorld, broker: str, log: Path, **settings: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CRMSYNC_HOME": str(world.home),
        "CRMSYNC_BROKER_URL": broker,
        **settings,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from crmsync.admin.cli import main; main()", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_workers_run_the_batches_the_scheduler_claims(
    world: World, broker: str, tmp_path: Path
) -> None:
    world.crm.create_contact(world.rep.id, ada())
    others = [world.crm.create_user(f"idle{i}@example.com", f"Idle {i}") for i in range(3)]
    app = celery_app(broker)
    deployment = Deployment.from_env(world.home)

    def send(batch: list[tuple[str, int]]) -> None:
        app.send_task(TASK, args=[str(world.home), deployment.org, batch, {"interval": 3600}, 60])

    workers = [start_worker(world, broker, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        dispatcher = Dispatcher(deployment, send, worker_id="scheduler-test")
        assert dispatcher.round(world.service) == 1 + len(others)
        assert dispatcher.round(world.service) == 0  # all leased: nothing more to send
        store = world.service.store

        def all_done() -> bool:
            statuses = store.rep_statuses()
            return (
                len(statuses) == 4
                and all(s.next_due is not None and s.lease_owner is None for s in statuses)
                and store.rep_status(world.rep.id).last_cycle_finished is not None
            )

        # The reps no configuration covers come round too (and are rescheduled).
        wait_until(all_done, "every rep's cycle ran and gave its lease up")
        assert world.mail_records(ItemKind.CONTACT) == [ada()]
        assert all(s.last_error is None for s in store.rep_statuses())
        # Each rep is due again an interval later, so the next round sends nothing.
        assert dispatcher.round(world.service) == 0
    finally:
        for process in workers:
            os.killpg(process.pid, signal.SIGTERM)
        for process in workers:
            process.wait(30)


class HoldWhileArmed:
    """A proxy rule that holds every request while armed (a cycle stuck mid-flight)."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.released = threading.Event()

    def __call__(self, request: Request) -> int | None:
        if self.armed.is_set():
            self.holding.set()
            self.released.wait(DEADLINE)
        return None


def test_a_worker_killed_mid_batch_loses_no_rep_and_its_batch_redelivered_writes_nothing(
    tmp_path: Path, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not POSTGRES_URL:
        pytest.skip("CRMSYNC_TEST_POSTGRES_URL is not set (see .ci/run): no PostgreSQL")
    hold = HoldWhileArmed()
    with running_dav_server("radicale", tmp_path / "dav") as server:
        proxy = RuleProxy(server.url, hold)
        try:
            for url in postgres_database():
                monkeypatch.setenv("CRMSYNC_STATE_URL", url)
                world = World(replace(server, url=proxy.url), tmp_path / "home", BOTH_WAYS)
                try:
                    _kill_mid_batch(world, broker, hold, tmp_path)
                finally:
                    world.close()
        finally:
            hold.released.set()
            proxy.close()


def _kill_mid_batch(world: World, broker: str, hold: HoldWhileArmed, tmp_path: Path) -> None:
    world.crm.create_contact(world.rep.id, ada())
    # The broker hands an unacknowledged batch out again after 2 s; the lease lasts 3 s.
    visibility = {"CRMSYNC_VISIBILITY_TIMEOUT": "2"}
    app = celery_app(broker, visibility_timeout=2)
    deployment = Deployment.from_env(world.home)
    lease = 3.0
    fences: list[int] = []

    def send(batch: list[tuple[str, int]]) -> None:
        fences.extend(fence for _, fence in batch)
        app.send_task(
            TASK, args=[str(world.home), deployment.org, batch, {"interval": 3600}, lease]
        )

    dispatcher = Dispatcher(deployment, send, lease_ttl=dt.timedelta(seconds=lease))
    store = world.service.store
    hold.armed.set()
    stalled = start_worker(world, broker, tmp_path / "stalled.log", **visibility)
    later = None
    try:
        assert dispatcher.round(world.service) == 1  # the first batch, with the first fence
        assert hold.holding.wait(DEADLINE), "the first worker's cycle never reached the server"
        # The worker dies without acknowledging: the broker still holds its batch.
        os.killpg(stalled.pid, signal.SIGKILL)
        stalled.wait(30)
        hold.armed.clear()
        hold.released.set()
        # Its lease runs out; the scheduler claims the rep again, with a new fence.
        wait_until(lambda: dispatcher.round(world.service) == 1, "the rep was claimed again")
        assert fences[1] == fences[0] + 1
        # A new worker gets both: the new batch and the dead worker's, past its visibility.
        later = start_worker(world, broker, tmp_path / "later.log", **visibility)
        log = tmp_path / "later.log"
        wait_until(
            lambda: log.read_text().count("succeeded") == 2, "both batches ran on the new worker"
        )
        outcomes = log.read_text()
        assert "'lease lost'" in outcomes and "'ok'" in outcomes
        assert world.mail_records(ItemKind.CONTACT) == [ada()]  # synced once, by the new lease
        status = store.rep_status(world.rep.id)
        assert status.last_error is None and status.lease_owner is None
    finally:
        for process in (stalled, later):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
