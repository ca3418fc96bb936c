"""The embedded scheduler of ``crmsync serve``: a dispatcher thread and a pool of workers.

The schedule lives in the state store (DESIGN, "service"): each rep has a next-due time
and a lease. Each round the dispatcher reads the org's active reps and their next-due
times, and hands the due ones, earliest first, to idle workers, one cycle per rep at a
time: in this process by the set of reps in flight, across processes by the rep's lease
(`StateStore.claim_rep`); a rep whose lease another worker holds is skipped. After a
cycle the worker sets the rep's next-due time: ``interval`` later (± ``jitter``) after a
good cycle or a rep no configuration covers, ``interval * 2**(failures - 1)`` (capped at
``max_backoff``, jittered too) after the rep's consecutive failures. Each rep is a task of
its own, so a failing or slow rep holds one worker and never delays the others' dispatch.

On PostgreSQL the dispatcher leases due reps in batches instead (`StateStore.claim_due`:
``FOR UPDATE SKIP LOCKED``, earliest due first, at most ``max_in_flight`` of the org's
reps leased at once across all schedulers); on SQLite it claims rep by rep as above.

`Scheduler.stop` (or a signal, see `install_signal_handlers`) ends dispatching at once,
lets the cycles in flight finish and joins the threads. Every write of a cycle is fenced
by its lease (a worker that lost it writes nothing more); the dispatcher renews the
leases of long cycles before they expire, and the cycle's closing write gives it up.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import select

from crmsync.domain.records import User
from crmsync.domain.sync import BUG_SUGGESTION, ErrorEntry, ErrorType
from crmsync.engine.executor import utc_now
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.crm_users import DEFAULT_EVERY, CrmUsers
from crmsync.service.deployment import Deployment
from crmsync.service.leased import default_worker_id
from crmsync.service.metrics import SyncMetrics, cycle_errors, outcome_of
from crmsync.service.runner import RepReport, SyncService
from crmsync.store import CLAIM_BATCH, LeaseLost, StateStore, schema

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY = 3600.0  # seconds between audit-retention prunes


def delay_after(
    failures: int,
    *,
    interval: float,
    jitter: float,
    max_backoff: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds until a rep's next cycle after ``failures`` consecutive failed cycles.

    ``interval`` scaled by a random factor in ``[1 - jitter, 1 + jitter]`` after a good
    cycle; ``interval * 2**(failures - 1)``, jittered alike and capped at ``max_backoff``
    (never below the plain interval's range), after failed ones.
    """
    factor = 1 + jitter * (2 * (rng or random).random() - 1)
    if failures <= 0:
        return interval * factor
    backoff = interval * 2 ** min(failures - 1, 62)
    return min(backoff * factor, max(max_backoff, interval))


@dataclass
class _Lease:
    fence: int
    renewed: float  # time.monotonic() of the last claim


class Scheduler:
    """Runs the cycles of one org's reps on a schedule, in threads of this process.

    ``workers`` cycles run at once at most, each worker thread with a `SyncService` of
    its own. ``lease_ttl`` is how long a rep stays claimed if this process dies mid-cycle;
    the leases of running cycles are renewed every third of it. ``poll`` is how often the
    dispatcher looks for reps made due from elsewhere (new users, "sync now") besides the
    next-due times it knows (default: ``interval``, at most 5 s). The CRM's user list is
    read once per ``users_every`` seconds (`CrmUsers`): a new rep is scheduled within that;
    and at once when the org's settings moved (a new CRM section or key: each round checks
    the settings version, `SyncService.follow_settings`). ``clock`` (aware UTC) is the
    store's and the services' notion of now. Call `start` once, then `stop`.
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        interval: float = 60.0,
        jitter: float = 0.1,
        workers: int = 2,
        max_backoff: float = 3600.0,
        lease_ttl: float = 300.0,
        poll: float | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        metrics: SyncMetrics | None = None,
        worker_id: str | None = None,
        retry: RetryPolicy | None = None,
        max_in_flight: int | None = None,
        users_every: float = DEFAULT_EVERY,
    ) -> None:
        if interval <= 0 or workers < 1 or lease_ttl <= 0 or not 0 <= jitter < 1:
            raise ValueError("need interval > 0, workers >= 1, lease_ttl > 0, 0 <= jitter < 1")
        self.deployment = deployment
        self.interval = interval
        self.jitter = jitter
        self.workers = workers
        self.max_backoff = max_backoff
        self.lease_ttl = dt.timedelta(seconds=lease_ttl)
        self.poll = poll if poll is not None else min(interval, 5.0)
        self.clock = clock
        self.metrics = metrics
        self.worker_id = worker_id or default_worker_id("serve")
        self.retry = retry
        self.max_in_flight = max_in_flight
        self._users = CrmUsers(users_every)
        self._scheduled: set[str] = set()  # reps known to have a row (PostgreSQL claims)
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._leases: dict[str, _Lease] = {}
        self._queue: queue.SimpleQueue[User | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._last_housekeeping: float | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the services (raising if the databases cannot be opened) and start the
        dispatcher and worker threads."""
        with self._lock:
            if self._started:
                raise RuntimeError("a Scheduler starts only once")
            self._started = True
        services = [self._open_service() for _ in range(self.workers + 1)]
        self._threads = [
            threading.Thread(
                target=self._dispatch_loop,
                args=(services[0],),
                name=f"crmsync-dispatcher-{self.deployment.org}",
                daemon=True,
            )
        ] + [
            threading.Thread(
                target=self._work_loop,
                args=(service,),
                name=f"crmsync-worker-{self.deployment.org}-{n}",
                daemon=True,
            )
            for n, service in enumerate(services[1:], 1)
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "scheduler started",
            extra={"org": self.deployment.org, "worker": self.worker_id, "workers": self.workers},
        )

    def request_stop(self) -> None:
        """Stop dispatching new cycles; returns at once (safe in a signal handler)."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every thread has ended (after a stop request); returns whether they
        did within ``timeout``. Signal handlers of the main thread still run meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread is threading.current_thread():
                continue
            while thread.is_alive():
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    return False
                thread.join(left)
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop dispatching, let the cycles in flight finish and join the threads; returns
        whether all ended within ``timeout``. Idempotent, callable from any thread."""
        self.request_stop()
        return self.wait(timeout)

    def in_flight(self) -> set[str]:
        """The ids of the reps whose cycle is running or about to, in this scheduler."""
        with self._lock:
            return set(self._in_flight)

    # -- dispatcher ----------------------------------------------------------------------
    def _open_service(self) -> SyncService:
        return SyncService(self.deployment, retry=self.retry, clock=self.clock)

    def _dispatch_loop(self, service: SyncService) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    wait = self._dispatch_round(service)
                except Exception:  # e.g. the database briefly unreachable: try again
                    log.exception("scheduling round of org %s failed", self.deployment.org)
                    wait = self.poll
                self._wake.wait(wait)
        finally:
            for _ in range(self.workers):
                self._queue.put(None)  # the workers end once the queue's cycles are done
            service.close()

    def _dispatch_round(self, service: SyncService) -> float:
        """Hand the due reps to idle workers; returns how long to sleep at most."""
        store = service.store
        self._housekeeping(service)
        self._renew_leases(store)
        if service.follow_settings():  # a new CRM section or key, say: list its users
            self._users.forget()
        with self._lock:
            idle = self.workers - len(self._in_flight)
            busy = set(self._in_flight)
        if store.engine.dialect.name == "postgresql":
            self._claim_batches(store, self._users.get(service.reps), idle)
            return self.poll
        now = self.clock()
        due_times = _next_due_times(store)
        due: list[tuple[dt.datetime, User]] = []
        soonest: dt.datetime | None = None
        for user in self._users.get(service.reps):
            if user.id in busy:
                continue
            next_due = due_times.get(user.id)
            if next_due is None or next_due <= now:
                due.append((next_due or dt.datetime.min.replace(tzinfo=dt.UTC), user))
            elif soonest is None or next_due < soonest:
                soonest = next_due
        due.sort(key=lambda pair: pair[0])
        for _, user in due:
            if idle <= 0 or self._stopping.is_set():
                break
            if self._claim(store, user):
                idle -= 1
        if soonest is None:
            return self.poll
        return max(0.0, min(self.poll, (soonest - self.clock()).total_seconds()))

    def _claim_batches(self, store: StateStore, users: list[User], idle: int) -> None:
        """PostgreSQL: lease due reps in batches (`StateStore.claim_due`, ``SKIP LOCKED``)
        and queue their cycles; a claimed rep no longer active comes round next interval."""
        by_id = {user.id: user for user in users}
        new = sorted(by_id.keys() - self._scheduled)
        if new:
            store.schedule_reps(new)
            self._scheduled.update(new)
        while idle > 0 and not self._stopping.is_set():
            claimed = store.claim_due(
                self.worker_id,
                self.lease_ttl,
                limit=min(idle, CLAIM_BATCH),
                max_in_flight=self.max_in_flight,
            )
            if not claimed:
                return
            idle -= len(claimed)
            for rep_id, fence in claimed:
                user = by_id.get(rep_id)
                if user is None:
                    store.set_next_due(rep_id, self.next_due(0))
                    store.release_rep(rep_id, fence)
                    continue
                with self._lock:
                    self._in_flight.add(rep_id)
                    self._leases[rep_id] = _Lease(fence, time.monotonic())
                self._queue.put(user)

    def _claim(self, store: StateStore, user: User) -> bool:
        """Take the rep's lease and queue its cycle; ``False`` if another worker holds it
        or ran it since this round read its next-due time."""
        fence = store.claim_rep(user.id, self.worker_id, self.lease_ttl)
        if fence is None:
            return False
        try:
            next_due = _next_due_times(store, user.id).get(user.id)
        except Exception:
            store.release_rep(user.id, fence)
            raise
        if next_due is not None and next_due > self.clock():
            store.release_rep(user.id, fence)
            return False
        with self._lock:
            self._in_flight.add(user.id)
            self._leases[user.id] = _Lease(fence, time.monotonic())
        self._queue.put(user)
        return True

    def _renew_leases(self, store: StateStore) -> None:
        every = self.lease_ttl.total_seconds() / 3
        with self._lock:
            due = [
                (rep_id, lease)
                for rep_id, lease in self._leases.items()
                if time.monotonic() - lease.renewed >= every
            ]
        for rep_id, lease in due:
            if store.renew_lease(rep_id, lease.fence, self.lease_ttl):
                lease.renewed = time.monotonic()
            else:  # the cycle's fenced writes are refused from now on
                log.warning(
                    "lease of rep %s expired and was taken by another worker mid-cycle",
                    rep_id,
                    extra={"rep_id": rep_id, "worker": self.worker_id},
                )

    def _housekeeping(self, service: SyncService) -> None:
        """Prune the audit trail to the retention setting, as `SyncService.sync_all` does,
        at most once per `HOUSEKEEPING_EVERY`."""
        now = time.monotonic()
        if self._last_housekeeping is not None and now - self._last_housekeeping < (
            HOUSEKEEPING_EVERY
        ):
            return
        self._last_housekeeping = now
        retention = dt.timedelta(days=service.org_settings().audit_retention_days)
        service.store.prune_audit(self.clock() - retention)

    # -- workers -------------------------------------------------------------------------
    def _work_loop(self, service: SyncService) -> None:
        try:
            while (user := self._queue.get()) is not None:
                closed = False
                try:
                    if not self._stopping.is_set():  # queued but not started: dropped
                        closed = self._cycle(service, user)
                except Exception:
                    log.exception("scheduling rep %s failed", user.id)
                finally:
                    self._finish(service.store, user, release=not closed)
        finally:
            service.close()

    def _cycle(self, service: SyncService, user: User) -> bool:
        """Run the rep's cycle under its lease; returns whether the lease was given up
        (by the cycle's closing write, or lost to another worker)."""
        with self._lock:
            fence = self._leases[user.id].fence
        started_at = service.clock()
        started = time.monotonic()
        closed = True
        try:
            report = self.run_cycle(service, user, fence)
        except Exception as bug:  # sync_rep records its own failures; this is worse
            log.exception("cycle of rep %s failed outside the sync", user.id)
            report = RepReport(user, error=f"{type(bug).__name__}: {bug}")
            closed = self._record_crash(service, user, fence, report)
        seconds = time.monotonic() - started
        if self.metrics is not None:
            errors = cycle_errors(service.store, report, started_at)
            self.metrics.observe(report, seconds, errors)
        # Reps no configuration covers come round every interval: keep them out of INFO.
        log.log(
            logging.INFO if report.configured else logging.DEBUG,
            "cycle of rep %s: %s, %d writes in %.2f s",
            user.id,
            outcome_of(report),
            report.writes,
            seconds,
            extra={
                "org": self.deployment.org,
                "rep_id": user.id,
                "outcome": outcome_of(report),
                "duration_seconds": round(seconds, 3),
                "writes": report.writes,
                "error": report.error,
                "consecutive_failures": report.failures,
                "next_due": report.next_due.isoformat() if report.next_due else None,
                "worker": self.worker_id,
            },
        )
        return closed

    def run_cycle(self, service: SyncService, user: User, fence: int) -> RepReport:
        """One cycle of ``user`` under its lease (`SyncService.sync_rep`), setting its
        next-due time; a hook for subclasses."""
        return service.sync_rep(user, fence=fence, next_due=self.next_due)

    def next_due(self, failures: int) -> dt.datetime:
        """When a rep with ``failures`` consecutive failed cycles is due next."""
        delay = delay_after(
            failures, interval=self.interval, jitter=self.jitter, max_backoff=self.max_backoff
        )
        return self.clock() + dt.timedelta(seconds=delay)

    def _record_crash(
        self, service: SyncService, user: User, fence: int, report: RepReport
    ) -> bool:
        """Note a cycle that broke outside the sync on the rep (under its lease); returns
        whether that gave the lease up."""
        state = service.store.fenced(user.id, fence)
        try:
            state.record_error(
                ErrorEntry(
                    user.id,
                    None,
                    None,
                    "sync",
                    ErrorType.INTERNAL,
                    report.error or "",
                    BUG_SUGGESTION,
                    service.clock(),
                )
            )
            report.failures = service.store.rep_status(user.id).consecutive_failures + 1
            report.next_due = self.next_due(report.failures)
            state.cycle_finished(user.id, error=report.error, next_due=report.next_due)
        except LeaseLost:
            return True
        return False

    def _finish(self, store: StateStore, user: User, *, release: bool) -> None:
        with self._lock:
            lease = self._leases.pop(user.id, None)
            self._in_flight.discard(user.id)
        if release and lease is not None:
            try:
                store.release_rep(user.id, lease.fence)
            except Exception:  # it expires after lease_ttl anyway
                log.exception("could not release the lease of rep %s", user.id)
        self._wake.set()


def _next_due_times(store: StateStore, rep_id: str | None = None) -> dict[str, dt.datetime]:
    """Rep id → next-due time of the reps that have one (all reps, or ``rep_id``)."""
    reps = schema.reps
    query = select(reps.c.rep_id, reps.c.next_due).where(reps.c.next_due.is_not(None))
    if rep_id is not None:
        query = query.where(reps.c.rep_id == rep_id)
    with store.engine.connect() as conn:
        return {row.rep_id: row.next_due for row in conn.execute(query)}


def install_signal_handlers(
    scheduler: Scheduler,
    on_stop: Callable[[], None] | None = None,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> Callable[[], None]:
    """Make ``signals`` stop ``scheduler`` gracefully; returns a function that puts the
    previous handlers back.

    The first signal requests the stop (`Scheduler.request_stop`: cycles in flight
    finish), calls ``on_stop`` (e.g. to tell a web server to exit) and puts the previous
    handlers back, so a second signal acts as before (SIGINT: `KeyboardInterrupt`, SIGTERM:
    the process ends at once). The handler never blocks: the main thread waits in
    `Scheduler.wait` or a server's loop. Call from the main thread.

    Under uvicorn (which captures SIGINT/SIGTERM itself and, once shut down, re-raises
    them to the handlers it found), install these before ``uvicorn.run`` and stop the
    scheduler in the app's lifespan shutdown; the re-raised signal then ends nothing.
    """
    signals = tuple(signals)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping the scheduler", signal.Signals(signum).name)
        restore()
        scheduler.request_stop()
        if on_stop is not None:
            on_stop()

    for sig in signals:
        signal.signal(sig, handle)
    return restore
