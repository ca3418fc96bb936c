"""Prometheus metrics of one `crmsync worker` process, on a port of its own (issue 16).

`crmsync worker --metrics-port N` calls `serve_metrics`; the task code (`workers`) then
reports each batch and cycle through `batch_run` and `cycle`, which do nothing in a worker
started without a port. What a worker exposes:

- everything `SyncMetrics` counts for the cycles this process ran: ``crmsync_cycles_total``,
  ``crmsync_items_synced_total``, ``crmsync_errors_total`` and the
  ``crmsync_cycle_duration_seconds`` histogram;
- ``crmsync_worker_batches_total``: batches (tasks) this process has run;
- ``crmsync_worker_cycles_in_flight``: cycles running in this process now;
- the queue, read at each scrape: ``crmsync_broker_queue_length`` (batches waiting in the
  Redis broker for a worker) and, from the org's state database, ``crmsync_reps_due`` (reps
  due that nobody has claimed) and ``crmsync_oldest_due_age_seconds`` (the claim lag),
  with ``crmsync_reps{status}``.

`BrokerQueue` also feeds ``serve``'s ``/metrics`` when a broker is configured.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crmsync.service.metrics import RepStatuses, SyncMetrics, cycle_errors
from crmsync.service.runner import RepReport, SyncService

log = logging.getLogger(__name__)

# Celery's default queue; kombu's Redis transport keeps it as a list of that name, and
# one list per priority step beside it (name + "\x06\x16" + step) for prioritised tasks.
QUEUE = "celery"
PRIORITY_STEPS = (3, 6, 9)
_QUEUE_HELP = "Batches waiting in the broker's queue for a worker."

_metrics: WorkerMetrics | None = None
_lock = threading.Lock()


class BrokerQueue(Collector):
    """``crmsync_broker_queue_length`` of the Redis broker at ``url``, read at each scrape;
    left out of a scrape while Redis does not answer."""

    def __init__(self, url: str, queue: str = QUEUE) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._keys = [queue, *(f"{queue}\x06\x16{step}" for step in PRIORITY_STEPS)]

    def describe(self) -> Iterator[Metric]:
        # Describing must not reach Redis (it runs at registration).
        yield GaugeMetricFamily("crmsync_broker_queue_length", _QUEUE_HELP)

    def length(self) -> int:
        """Batches waiting for a worker now (raises while Redis does not answer); the
        scheduler's backpressure reads it too."""
        pipe = self._redis.pipeline(transaction=False)
        for key in self._keys:
            pipe.llen(key)
        return sum(int(n) for n in pipe.execute())

    def collect(self) -> Iterator[Metric]:
        try:
            waiting = self.length()
        except Exception:  # a scrape must answer while the broker does not
            log.warning("could not read the broker's queue length", exc_info=True)
            return
        yield GaugeMetricFamily("crmsync_broker_queue_length", _QUEUE_HELP, value=waiting)


class WorkerMetrics(SyncMetrics):
    """`SyncMetrics` with the worker's batches, its cycles in flight and the broker's
    queue."""

    def __init__(self, rep_statuses: RepStatuses | None, broker_url: str | None) -> None:
        super().__init__(rep_statuses)
        self.batches = Counter(
            "crmsync_worker_batches", "Batches (tasks) this worker has run.", registry=self.registry
        )
        self.in_flight = Gauge(
            "crmsync_worker_cycles_in_flight",
            "Cycles running in this worker now.",
            registry=self.registry,
        )
        if broker_url:
            self.registry.register(BrokerQueue(broker_url))


def serve_metrics(
    port: int, host: str, rep_statuses: RepStatuses | None, broker_url: str | None
) -> WorkerMetrics:
    """Expose this process's worker metrics on ``host:port`` (a thread of its own) and
    count from now on."""
    global _metrics
    metrics = WorkerMetrics(rep_statuses, broker_url)
    start_http_server(port, addr=host, registry=metrics.registry)
    with _lock:
        _metrics = metrics
    return metrics


def batch_run() -> None:
    """Count a batch this worker has run (nothing without `serve_metrics`)."""
    if _metrics is not None:
        _metrics.batches.inc()


@contextlib.contextmanager
def cycle(service: SyncService) -> Iterator[Callable[[RepReport], None]]:
    """Around one cycle: counts it in flight while it runs; the caller hands its report
    to the function yielded, which observes its outcome, writes, errors and duration."""
    metrics = _metrics
    if metrics is None:
        yield _ignore
        return
    started_at, started = service.clock(), time.monotonic()

    def observe(report: RepReport) -> None:
        errors = cycle_errors(service.store, report, started_at)
        metrics.observe(report, time.monotonic() - started, errors)

    metrics.in_flight.inc()
    try:
        yield observe
    finally:
        metrics.in_flight.dec()


def _ignore(report: Any) -> None:
    return None
