"""`crmsync worker` and `crmsync scheduler`: cycles on Celery workers (issue 16).

Both need PostgreSQL for the state database (the schedule's batch claims) and a Redis
broker (``--broker`` or ``CRMSYNC_BROKER_URL``); `crmsync serve --no-scheduler` then serves
only the console and the API.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from typing import Annotated

import typer

from crmsync.admin.cycle_options import Interval, UsersEvery, VisibilityTimeout
from crmsync.service.batch_queue import MAX_QUEUED, VISIBILITY_TIMEOUT
from crmsync.service.crm_users import DEFAULT_EVERY
from crmsync.service.deployment import Deployment

log = logging.getLogger(__name__)

BROKER_HELP = "The Redis broker's URL, e.g. redis://redis.internal:6379/1."
DEFAULT_BROKER = "redis://127.0.0.1:6379/1"


def worker(
    broker: Annotated[str, typer.Option(help=BROKER_HELP, envvar="CRMSYNC_BROKER_URL")] = (
        DEFAULT_BROKER
    ),
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics at /metrics on this port (off if unset).",
            min=1,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics port listens on.")
    ] = "127.0.0.1",
    visibility_timeout: VisibilityTimeout = VISIBILITY_TIMEOUT,
) -> None:
    """Run the cycles the scheduler sends, a claimed batch at a time, its reps at once.

    Run one per core (or machine); a killed worker's reps are taken by the others once
    their leases expire.
    """
    from crmsync.service.logs import configure_logging
    from crmsync.service.workers import celery_app

    configure_logging()
    if metrics_port is not None:
        from crmsync.service.worker_metrics import serve_metrics
        from crmsync.store import StateStore

        deployment = Deployment.from_env()
        # Open for the life of the process: the queue gauges read it at each scrape.
        store = StateStore(deployment.state_url, deployment.secrets_key_path)
        serve_metrics(metrics_port, metrics_host, store.rep_statuses, broker)
        log.info("worker metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    # solo: one batch per process at a time; the batch's cycles run in its own threads.
    app = celery_app(broker, visibility_timeout)
    app.worker_main(["worker", "--pool", "solo", "--loglevel", "INFO"])


def scheduler(
    broker: Annotated[str, typer.Option(help=BROKER_HELP, envvar="CRMSYNC_BROKER_URL")] = (
        DEFAULT_BROKER
    ),
    interval: Interval = 60.0,
    lease: Annotated[
        float, typer.Option(help="Seconds a claimed rep stays leased unless renewed.")
    ] = 300.0,
    max_in_flight: Annotated[
        int | None, typer.Option(help="The org's reps in a cycle at once at most.")
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between two claiming rounds.")] = 1.0,
    max_queued: Annotated[
        int,
        typer.Option(
            help="Claim nothing while this many batches wait in the broker for a worker.",
            min=1,
        ),
    ] = MAX_QUEUED,
    users_every: UsersEvery = DEFAULT_EVERY,
    visibility_timeout: VisibilityTimeout = VISIBILITY_TIMEOUT,
) -> None:
    """Claim due reps from the state database in batches and send them to the workers.

    One per org is enough; a second one is harmless (claims never overlap). SIGTERM or
    Ctrl-C stops it after the round in flight.
    """
    from crmsync.service.logs import configure_logging
    from crmsync.service.worker_metrics import BrokerQueue
    from crmsync.service.workers import TASK, Dispatcher, celery_app

    configure_logging()
    deployment = Deployment.from_env()
    app = celery_app(broker, visibility_timeout)
    cadence = {"interval": interval}

    def send(batch: list[tuple[str, int]]) -> None:
        args = [str(deployment.home), deployment.org, batch, cadence, lease]
        app.send_task(TASK, args=args)

    stop = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: stop.set())
    dispatcher = Dispatcher(
        deployment,
        send,
        lease_ttl=dt.timedelta(seconds=lease),
        max_in_flight=max_in_flight,
        poll=poll,
        queued=BrokerQueue(broker).length,
        max_queued=max_queued,
        users_every=users_every,
    )
    dispatcher.run(stop.is_set)
