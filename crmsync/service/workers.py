"""Cycles on Celery workers: `crmsync scheduler` claims, `crmsync worker` runs (issue 16).

The schedule stays in the state database (`StateStore.claim_due`): the scheduler leases
due reps in batches and sends each batch as one task; a worker runs the batch's cycles
concurrently, each under the lease the scheduler took (its fence travels in the task),
renewed while the cycle runs and given up by the cycle's closing write. Celery only
carries the batches: no beat, no ETA, late acknowledgement, one task reserved per worker
process. A worker killed mid-batch loses no rep: the broker hands the unacknowledged
task to another worker, or the leases expire and the scheduler claims the reps again
(with new fences, so the dead worker's late writes, if any, are refused). A task that
arrives after its leases moved on does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from crmsync.domain.sync import BUG_SUGGESTION, ErrorEntry, ErrorType, SyncError
from crmsync.service import worker_metrics
from crmsync.service.batch_queue import MAX_QUEUED, VISIBILITY_TIMEOUT
from crmsync.service.crm_users import DEFAULT_EVERY, CrmUsers
from crmsync.service.deployment import Deployment
from crmsync.service.leased import DEFAULT_LEASE_TTL, LeaseKeeper, default_worker_id
from crmsync.service.runner import SyncService
from crmsync.service.scheduler import delay_after
from crmsync.store import CLAIM_BATCH, LeaseLost, StateStore

log = logging.getLogger(__name__)

TASK = "crmsync.sync_batch"

# Cycles one worker process runs at once: a claimed batch runs all together.
CYCLE_THREADS = CLAIM_BATCH

_per_thread = threading.local()
_pool_lock = threading.Lock()
_cycle_pool: ThreadPoolExecutor | None = None


def celery_app(broker_url: str, visibility_timeout: float = VISIBILITY_TIMEOUT) -> Celery:
    """The Celery app of the scheduler and the workers, on ``broker_url`` (Redis).

    ``visibility_timeout``: see `crmsync.service.batch_queue.VISIBILITY_TIMEOUT`."""
    app = Celery("crmsync", broker=broker_url)
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged once its cycles ran, not before
        task_reject_on_worker_lost=True,  # a killed worker's task goes back to the queue
        worker_prefetch_multiplier=1,  # one batch reserved per worker process
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Look for batches past their visibility timeout every tenth of it (10 s at
            # most), not kombu's default of about every 100 s.
            "unacked_restore_interval": min(10.0, max(1.0, visibility_timeout / 10)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK)(run_batch)
    return app


@dataclass(frozen=True)
class Cadence:
    """How often a rep runs: the scheduler's ``interval``, ``jitter`` and backoff cap."""

    interval: float = 60.0
    jitter: float = 0.1
    max_backoff: float = 3600.0

    def next_due(self, failures: int) -> dt.datetime:
        delay = delay_after(
            failures, interval=self.interval, jitter=self.jitter, max_backoff=self.max_backoff
        )
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)


def run_batch(
    home: str,
    org: str,
    batch: list[tuple[str, int]],
    cadence: dict[str, float],
    lease_seconds: float,
) -> dict[str, str]:
    """The task: run the cycles of ``batch`` (rep id, fence) of ``org`` concurrently;
    returns each rep's outcome ("ok", "error", "not configured", "lease lost", "not
    active")."""
    deployment = Deployment.from_env(Path(home), org)
    schedule = Cadence(**cadence)
    ttl = dt.timedelta(seconds=lease_seconds)
    outcomes = _pool().map(lambda item: _one_cycle(deployment, *item, schedule, ttl), batch)
    done = dict(zip((rep_id for rep_id, _ in batch), outcomes, strict=True))
    worker_metrics.batch_run()
    return done


def _pool() -> ThreadPoolExecutor:
    """The process's cycle threads (`CYCLE_THREADS`), kept with their services."""
    global _cycle_pool
    with _pool_lock:
        if _cycle_pool is None:
            _cycle_pool = ThreadPoolExecutor(CYCLE_THREADS, thread_name_prefix="crmsync-cycle")
        return _cycle_pool


def _service(deployment: Deployment) -> SyncService:
    """This thread's service for ``deployment``, kept across tasks: a `SyncService` is not
    shared between threads, and opening one per cycle would cost more than the cycle."""
    services: dict[Deployment, SyncService] = _per_thread.__dict__.setdefault("services", {})
    if deployment not in services:
        services[deployment] = SyncService(deployment)
    return services[deployment]


def _one_cycle(
    deployment: Deployment, rep_id: str, fence: int, schedule: Cadence, ttl: dt.timedelta
) -> str:
    service = _service(deployment)
    try:
        # Opened first: the CRM asked next matches the settings saved since the last
        # cycle, and a batch that comes after its lease moved on (redelivered by the
        # broker, or taken late from a deep queue) stops here, before any request (its
        # writes would be refused by the fence anyway).
        record = service.open_cycle(rep_id, fence)
    except LeaseLost:
        return "lease lost"
    try:
        user = service.crm.get_user(rep_id)
    except LookupError:
        user = None
    except Exception as failure:  # the CRM unreachable, its key unreadable ...
        return _crm_failed(service, rep_id, fence, schedule, failure)
    if user is None or not user.active:  # gone since it was scheduled: look next interval
        service.store.set_next_due(rep_id, schedule.next_due(0))
        service.store.release_rep(rep_id, fence)
        return "not active"
    with LeaseKeeper(service.store, rep_id, fence, ttl), worker_metrics.cycle(service) as seen:
        report = service.sync_rep(user, fence=fence, next_due=schedule.next_due, opened=record)
        seen(report)
    if report.lease_lost:
        return "lease lost"
    if not report.configured:
        return "not configured"
    return "ok" if report.error is None else "error"


def _crm_failed(
    service: SyncService, rep_id: str, fence: int, schedule: Cadence, failure: Exception
) -> str:
    """The rep's error row when the CRM could not be asked who the rep is, instead of the
    whole batch failing with it; the rep is tried again after one failure's wait."""
    if isinstance(failure, SyncError):
        kind, message, suggestion = failure.error_type, failure.message, failure.suggestion
    else:
        log.exception("the CRM could not be asked for rep %s", rep_id)
        kind, message = ErrorType.INTERNAL, f"{type(failure).__name__}: {failure}"
        suggestion = BUG_SUGGESTION
    entry = ErrorEntry(rep_id, None, None, "sync", kind, message, suggestion, service.clock())
    try:
        service.store.fenced(rep_id, fence).record_error(entry)
    except LeaseLost:
        return "lease lost"
    service.store.set_next_due(rep_id, schedule.next_due(1))
    service.store.release_rep(rep_id, fence)
    return "error"


class Dispatcher:
    """`crmsync scheduler`: leases due reps in batches and sends them to the workers.

    Backpressure: while ``queued()`` (batches sent that no worker has taken yet, e.g. the
    broker queue's length) is ``max_queued`` or more, nothing more is claimed, so reps stay
    due in the database instead of piling up in the queue as duplicate batches whose leases
    expire before a worker gets to them. The CRM's user list is read once per
    ``users_every`` seconds (`CrmUsers`), and at once when the org's settings moved (a new
    CRM section or key: each round checks the settings version,
    `SyncService.follow_settings`).
    """

    def __init__(
        self,
        deployment: Deployment,
        send: Callable[[list[tuple[str, int]]], None],
        *,
        lease_ttl: dt.timedelta = DEFAULT_LEASE_TTL,
        batch: int = CLAIM_BATCH,
        max_in_flight: int | None = None,
        poll: float = 1.0,
        worker_id: str | None = None,
        queued: Callable[[], int] | None = None,
        max_queued: int = MAX_QUEUED,
        users_every: float = DEFAULT_EVERY,
    ) -> None:
        self.deployment = deployment
        self.send = send
        self.lease_ttl = lease_ttl
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.poll = poll
        self.worker_id = worker_id or default_worker_id("scheduler")
        self.queued = queued
        self.max_queued = max_queued
        self.users = CrmUsers(users_every)
        self._scheduled: set[str] = set()
        self._held_back = False

    def round(self, service: SyncService) -> int:
        """Schedule new reps, claim and send due batches while the queue has room;
        returns the reps sent."""
        store: StateStore = service.store
        if service.follow_settings():  # a new CRM section or key, say: list its users
            self.users.forget()
        new = sorted({user.id for user in self.users.get(service.reps)} - self._scheduled)
        if new:
            store.schedule_reps(new)
            self._scheduled.update(new)
        sent = 0
        while not self._queue_full() and (
            claimed := store.claim_due(
                self.worker_id, self.lease_ttl, limit=self.batch, max_in_flight=self.max_in_flight
            )
        ):
            self.send(claimed)
            sent += len(claimed)
        return sent

    def _queue_full(self) -> bool:
        if self.queued is None:
            return False
        waiting = self.queued()
        full = waiting >= self.max_queued
        if full != self._held_back:  # said once when it starts and once when it ends
            self._held_back = full
            if full:
                log.info("%d batches wait for a worker: no claims until one is taken", waiting)
            else:
                log.info("the workers took the queued batches: claiming again")
        return full

    def run(self, stopping: Callable[[], bool]) -> None:
        """Rounds until ``stopping()``; a failed round (database away) is tried again."""
        with SyncService(self.deployment) as service:
            while not stopping():
                try:
                    self.round(service)
                except Exception:
                    log.exception("scheduling round of org %s failed", self.deployment.org)
                time.sleep(self.poll)
