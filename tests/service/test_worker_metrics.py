"""Each `crmsync worker` serves its own Prometheus metrics (issue 16 point 4), and
`serve`'s /metrics shows the broker's queue: real Redis, real Radicale, a real worker
process scraped over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crmsync.domain.records import Contact, ItemKind
from crmsync.groupware.dav.local_server import free_port
from crmsync.service.deployment import Deployment
from tests.admin.web.serving import serving
from tests.redis_server import redis_missing, start_redis
from tests.servers import running_dav_server
from tests.service.worlds import BOTH_WAYS, World

pytest.importorskip("celery", reason="celery is not installed (pip install -e '.[test]')")
if reason := redis_missing():
    pytest.skip(reason, allow_module_level=True)

from crmsync.service.workers import TASK, Dispatcher, celery_app

DEADLINE = 90.0
CLI = [sys.executable, "-c", "from crmsync.admin.cli import main; main()"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.delenv("CRMSYNC_STATE_URL", raising=False)  # the embedded SQLite store
    with running_dav_server("radicale", tmp_path) as server:
        w = World(server, tmp_path / "home", BOTH_WAYS)
        yield w
        w.close()


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on ``port`` at (Linux's /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_its_metrics_and_serve_shows_the_queue(
    world: World, tmp_path: Path
) -> None:
    world.crm.create_contact(
        world.rep.id, Contact(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    )
    redis = start_redis(tmp_path / "redis")
    worker: subprocess.Popen[bytes] | None = None
    try:
        app = celery_app(redis.url)
        deployment = Deployment.from_env(world.home)

        def send(batch: list[tuple[str, int]]) -> None:
            args = [str(world.home), deployment.org, batch, {"interval": 3600}, 60]
            app.send_task(TASK, args=args)

        # Claimed and sent while no worker runs: the batch waits in the broker's queue.
        assert Dispatcher(deployment, send, worker_id="scheduler-test").round(world.service) == 1
        with serving(world.home, "--broker", redis.url) as url:
            assert samples(url + "/metrics")[("crmsync_broker_queue_length", ())] == 1

        port = free_port()
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [*CLI, "worker", "--metrics-port", str(port)],
                env={
                    **os.environ,
                    "CRMSYNC_HOME": str(world.home),
                    "CRMSYNC_BROKER_URL": redis.url,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        scrape = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                seen = samples(scrape)
                if seen.get(("crmsync_worker_batches_total", ())) == 1:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not run the batch in time"
            time.sleep(0.2)

        assert seen[("crmsync_cycles_total", (("outcome", "ok"),))] == 1
        assert seen[("crmsync_cycle_duration_seconds_count", ())] == 1
        assert seen[("crmsync_cycle_duration_seconds_sum", ())] > 0
        written = (("direction", "to_mail"), ("kind", "contact"))
        assert seen[("crmsync_items_synced_total", written)] == 1
        assert seen[("crmsync_worker_cycles_in_flight", ())] == 0
        assert seen[("crmsync_broker_queue_length", ())] == 0
        # The rep is due again an interval later: nothing waits to be claimed.
        assert seen[("crmsync_reps_due", ())] == 0
        assert seen[("crmsync_oldest_due_age_seconds", ())] == 0
        assert [c.last_name for c in world.mail_records(ItemKind.CONTACT)] == ["Lovelace"]  # type: ignore[attr-defined]
        if Path("/proc/net/tcp").exists():  # the metrics port listens on loopback only
            assert listening_on(port) == {"127.0.0.1"}
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        redis.stop()
