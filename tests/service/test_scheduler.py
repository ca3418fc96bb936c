"""The embedded scheduler: real threads, the real store, a real Radicale.

Cycles are watched through `Recording`, a `Scheduler` whose `run_cycle` hook notes each
cycle (and how many of one rep run at once) around the real `SyncService.sync_rep`. A
cycle is held in flight by a `Gate` in an HTTP proxy between the service and Radicale.
No assertion is on speed: waits poll for a condition until a generous deadline.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.domain.records import Contact, ItemKind, User
from crmsync.domain.sync import AuditEntry, Side
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.deployment import Deployment
from crmsync.service.runner import RepReport, SyncService
from crmsync.service.scheduler import Scheduler, delay_after
from crmsync.store import StateStore
from tests.servers import DavServerInfo, running_dav_server
from tests.service.http_proxy import Request, RuleProxy
from tests.service.worlds import BOTH_WAYS, World
from tests.store.conftest import POSTGRES_URL, postgres_database

REPO = Path(__file__).resolve().parents[2]
FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01)
DEADLINE = 60.0
TTL = dt.timedelta(minutes=5)


# ---------------------------------------------------------------------- helpers


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


@dataclass
class Cycle:
    worker: str
    report: RepReport
    # The rep's status when the cycle began: what the previous cycle left.
    failures_before: int
    gap_before: float | None  # next_due - last_cycle_finished of the previous cycle


@dataclass
class CycleLog:
    """Cycles seen by one or several `Recording` schedulers, thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    running: Counter[str] = field(default_factory=Counter)
    most_at_once: Counter[str] = field(default_factory=Counter)
    cycles: list[Cycle] = field(default_factory=list)
    hold: float = 0.0  # seconds each cycle lingers, to widen any overlap

    def of(self, rep_id: str) -> list[Cycle]:
        with self.lock:
            return [c for c in self.cycles if c.report.rep.id == rep_id]

    def count(self, rep_id: str | None = None) -> int:
        with self.lock:
            return sum(1 for c in self.cycles if rep_id in (None, c.report.rep.id))


class Recording(Scheduler):
    def __init__(self, deployment: Deployment, log: CycleLog, **options: object) -> None:
        options.setdefault("retry", FAST_RETRY)
        super().__init__(deployment, **options)  # type: ignore[arg-type]
        self.log = log

    def run_cycle(self, service: SyncService, user: User, fence: int) -> RepReport:
        status = service.store.rep_status(user.id)
        gap = None
        if status.next_due is not None and status.last_cycle_finished is not None:
            gap = (status.next_due - status.last_cycle_finished).total_seconds()
        with self.log.lock:
            self.log.running[user.id] += 1
            self.log.most_at_once[user.id] = max(
                self.log.most_at_once[user.id], self.log.running[user.id]
            )
        try:
            time.sleep(self.log.hold)
            report = super().run_cycle(service, user, fence)
        finally:
            with self.log.lock:
                self.log.running[user.id] -= 1
        with self.log.lock:
            self.log.cycles.append(Cycle(self.worker_id, report, status.consecutive_failures, gap))
        return report


class Gate:
    """A proxy rule that holds every request while armed, until opened."""

    def __init__(self) -> None:
        self.armed = False
        self.opened = threading.Event()
        self.holding = threading.Event()

    def __call__(self, request: Request) -> int | None:
        if self.armed and not self.opened.is_set():
            self.holding.set()
            self.opened.wait(DEADLINE)
        return None


def ada() -> Contact:
    return Contact(first_name="Ada", last_name="Lovelace", email="ada@example.org")


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


@pytest.fixture
def world(radicale: DavServerInfo, tmp_path: Path) -> Iterator[World]:
    w = World(radicale, tmp_path / "home", BOTH_WAYS, retry=FAST_RETRY)
    yield w
    w.close()


@pytest.fixture
def gated(radicale: DavServerInfo, tmp_path: Path) -> Iterator[tuple[World, Gate, RuleProxy]]:
    """A world whose service reaches Radicale through a proxy holding requests at a gate."""
    gate = Gate()
    proxy = RuleProxy(radicale.url, gate)
    w = World(replace(radicale, url=proxy.url), tmp_path / "home", BOTH_WAYS, retry=FAST_RETRY)
    yield w, gate, proxy
    gate.opened.set()
    w.close()
    proxy.close()


@pytest.fixture
def running() -> Iterator[list[Scheduler]]:
    """Schedulers a test starts; stopped at the end even when the test fails."""
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop(timeout=DEADLINE)


def start(running: list[Scheduler], scheduler: Scheduler) -> Scheduler:
    running.append(scheduler)
    scheduler.start()
    return scheduler


# ---------------------------------------------------------------------- the timing rule


def test_the_delay_is_the_interval_after_success_and_doubles_with_each_failure() -> None:
    options = {"interval": 60.0, "jitter": 0.0, "max_backoff": 3600.0}
    assert delay_after(0, **options) == 60.0
    assert delay_after(1, **options) == 60.0
    assert delay_after(2, **options) == 120.0
    assert delay_after(4, **options) == 480.0
    assert delay_after(7, **options) == 3600.0  # 3840 capped
    assert delay_after(10_000, **options) == 3600.0


@given(
    failures=st.integers(0, 200),
    interval=st.floats(0.01, 1000.0),
    jitter=st.floats(0.0, 0.99),
    max_backoff=st.floats(0.01, 10_000.0),
)
def test_a_jittered_delay_stays_within_its_bounds(
    failures: int, interval: float, jitter: float, max_backoff: float
) -> None:
    delay = delay_after(failures, interval=interval, jitter=jitter, max_backoff=max_backoff)
    base = interval * 2 ** max(failures - 1, 0)
    assert delay >= min(base * (1 - jitter), max(max_backoff, interval)) * (1 - 1e-9)
    assert delay <= base * (1 + jitter) * (1 + 1e-9)
    if failures > 0:
        assert delay <= max(max_backoff, interval) * (1 + 1e-9)


# ---------------------------------------------------------------------- cycles


def test_a_configured_rep_syncs_on_schedule_and_the_next_cycles_write_nothing(
    world: World, running: list[Scheduler]
) -> None:
    world.crm.create_contact(world.rep.id, ada())
    log = CycleLog()
    scheduler = start(running, Recording(Deployment.from_env(world.home), log, interval=0.2))

    wait_until(lambda: log.count(world.rep.id) >= 3, "three cycles ran")
    assert scheduler.stop(DEADLINE)
    first, *later = log.of(world.rep.id)
    assert first.report.error is None
    assert first.report.kinds[ItemKind.CONTACT].written_to(Side.MAIL) == 1
    assert [c.report.writes for c in later] == [0] * len(later)
    assert [c.report.error for c in later] == [None] * len(later)
    assert world.mail_records(ItemKind.CONTACT) == [ada()]
    status = world.service.store.rep_status(world.rep.id)
    assert status.consecutive_failures == 0
    assert status.next_due is not None and status.next_due > status.last_cycle_finished


def test_one_rep_never_runs_twice_at_once_within_or_across_schedulers(
    world: World, running: list[Scheduler]
) -> None:
    idle = [world.crm.create_user(f"idle{i}@example.com", f"Idle {i}") for i in range(2)]
    reps = [world.rep.id] + [user.id for user in idle]
    log = CycleLog(hold=0.03)
    # Intervals far shorter than a cycle, and more workers than reps: every rep is due
    # again before its cycle ends, so only the set in flight and the lease keep it single.
    options = {"interval": 0.01, "jitter": 0.0, "workers": 4, "poll": 0.01}
    first = Recording(Deployment.from_env(world.home), log, worker_id="first", **options)
    second = Recording(Deployment.from_env(world.home), log, worker_id="second", **options)
    start(running, first)
    start(running, second)

    wait_until(lambda: all(log.count(rep) >= 8 for rep in reps), "every rep ran 8 cycles")
    first.stop(DEADLINE)
    second.stop(DEADLINE)
    assert dict(log.most_at_once) == dict.fromkeys(reps, 1)
    assert {c.worker for c in log.cycles} <= {"first", "second"}
    assert all(c.report.error is None for c in log.cycles)


@pytest.fixture
def postgres_world(
    radicale: DavServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A world whose state store is a fresh PostgreSQL database (batch claims)."""
    if not POSTGRES_URL:
        pytest.skip("CRMSYNC_TEST_POSTGRES_URL is not set (see .ci/run): no PostgreSQL")
    for url in postgres_database():
        monkeypatch.setenv("CRMSYNC_STATE_URL", url)
        w = World(radicale, tmp_path / "home", BOTH_WAYS, retry=FAST_RETRY)
        yield w
        w.close()


def test_on_postgresql_schedulers_claim_reps_in_batches_and_never_run_one_twice(
    postgres_world: World, running: list[Scheduler]
) -> None:
    world = postgres_world
    world.crm.create_contact(world.rep.id, ada())
    idle = [world.crm.create_user(f"idle{i}@example.com", f"Idle {i}") for i in range(4)]
    reps = [world.rep.id] + [user.id for user in idle]
    log = CycleLog(hold=0.03)
    options = {"interval": 0.01, "jitter": 0.0, "workers": 4, "poll": 0.01}
    # The cap: at most 3 of the org's reps leased at once, across both schedulers.
    first = Recording(
        Deployment.from_env(world.home), log, worker_id="first", max_in_flight=3, **options
    )
    second = Recording(
        Deployment.from_env(world.home), log, worker_id="second", max_in_flight=3, **options
    )
    start(running, first)
    start(running, second)

    wait_until(lambda: all(log.count(rep) >= 5 for rep in reps), "every rep ran 5 cycles")
    first.stop(DEADLINE)
    second.stop(DEADLINE)
    assert dict(log.most_at_once) == dict.fromkeys(reps, 1)
    assert all(c.report.error is None for c in log.cycles)
    assert world.mail_records(ItemKind.CONTACT) == [ada()]
    assert all(s.lease_owner is None for s in world.service.store.rep_statuses())


def test_a_failing_rep_backs_off_while_a_healthy_rep_keeps_its_interval(
    world: World, running: list[Scheduler]
) -> None:
    service = world.service
    service.configure_server(
        world.server.settings(additional_domains=("example.com",)), world.server.password
    )
    outsider = world.crm.create_user("outsider@elsewhere.test", "Otto Outsider")
    service.store.save_config(replace(BOTH_WAYS, user_ids=(world.rep.id, outsider.id)))
    log = CycleLog()
    interval = 0.25
    start(
        running,
        Recording(Deployment.from_env(world.home), log, interval=interval, jitter=0.0),
    )

    wait_until(lambda: len(log.of(outsider.id)) >= 5, "the outsider's fifth cycle", 120)
    failing = log.of(outsider.id)
    assert all(c.report.error and "outside" in c.report.error for c in failing)
    # Each cycle began after the previous one's failures were counted and its wait set.
    assert [c.failures_before for c in failing[:5]] == [0, 1, 2, 3, 4]
    for cycle in failing[1:5]:
        assert cycle.gap_before is not None
        assert cycle.gap_before >= interval * 2 ** (cycle.failures_before - 1)
    assert service.store.rep_status(outsider.id).consecutive_failures >= 4

    healthy = log.of(world.rep.id)
    assert len(healthy) > len(failing)
    assert all(c.report.error is None and c.failures_before == 0 for c in healthy)
    gaps = [c.gap_before for c in healthy[1:]]
    # The healthy rep's wait stays one interval while the outsider's grows past 2, 4, 8.
    assert gaps and all(g is not None and interval <= g < 2 * interval for g in gaps)


def test_reps_added_while_running_are_scheduled(tmp_path: Path, running: list[Scheduler]) -> None:
    deployment = Deployment.from_env(tmp_path / "home")
    with SyncService(deployment) as service:
        early = service.crm.create_user("early@example.com", "Early")
        log = CycleLog()
        # One cycle per rep: each is due at once, then an hour later.
        # The CRM's user list is read again every 0.2 s (a minute by default).
        start(running, Recording(deployment, log, interval=3600, users_every=0.2))
        wait_until(lambda: log.count(early.id) == 1, "the first rep's cycle")
        late = service.crm.create_user("late@example.com", "Late")
        wait_until(lambda: log.count(late.id) == 1, "the new rep's cycle")
        report = log.of(late.id)[0].report
        assert report.configured is False and report.error is None
        # The worker sets the next-due time right after the cycle (the hook) returns.
        wait_until(lambda: service.store.rep_status(late.id).next_due, "the new rep's next due")
        assert service.store.rep_status(late.id).next_due > dt.datetime.now(dt.UTC)
    assert log.count(early.id) == 1


def test_the_scheduler_prunes_the_audit_trail_past_its_retention(
    tmp_path: Path, running: list[Scheduler]
) -> None:
    deployment = Deployment.from_env(tmp_path / "home")
    with SyncService(deployment) as service:
        now = dt.datetime.now(dt.UTC)
        days = service.org_settings().audit_retention_days

        def entry(age: dt.timedelta, crm_id: str) -> AuditEntry:
            return AuditEntry(
                "rep-x", ItemKind.CONTACT, crm_id, None, "create", Side.MAIL, "r", now - age
            )

        service.store.record_audit(
            [entry(dt.timedelta(days=days + 1), "old"), entry(dt.timedelta(0), "new")]
        )
        start(running, Scheduler(deployment, interval=3600))
        wait_until(
            lambda: [e.crm_id for e in service.store.rep_history("rep-x")] == ["new"],
            "the old audit entry is pruned",
        )


# ---------------------------------------------------------------------- stopping


def test_stop_lets_the_cycle_in_flight_finish_then_starts_none(
    gated: tuple[World, Gate, RuleProxy], running: list[Scheduler]
) -> None:
    world, gate, proxy = gated
    world.crm.create_contact(world.rep.id, ada())
    gate.armed = True
    log = CycleLog()
    scheduler = start(running, Recording(Deployment.from_env(world.home), log, interval=0.1))
    assert gate.holding.wait(DEADLINE), "the first cycle reached the mail server"
    # The cycle is in flight and holds the rep's lease: another worker cannot claim it.
    with StateStore(
        world.service.deployment.state_url, world.service.deployment.secrets_key_path
    ) as store:
        assert store.claim_rep(world.rep.id, "intruder", TTL) is None

    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(scheduler.stop(DEADLINE)))
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop() returned while a cycle was in flight"
    assert scheduler.in_flight() == {world.rep.id}

    gate.opened.set()
    stopper.join(DEADLINE)
    assert stopped == [True]
    assert scheduler.stop(1.0) is True  # idempotent
    [cycle] = log.of(world.rep.id)
    assert cycle.report.error is None
    assert cycle.report.kinds[ItemKind.CONTACT].written_to(Side.MAIL) == 1
    status = world.service.store.rep_status(world.rep.id)
    assert status.last_cycle_finished is not None and status.lease_owner is None

    requests = proxy.requests
    time.sleep(1.0)  # ten intervals: a scheduler still dispatching would start a cycle
    assert proxy.requests == requests
    assert log.count() == 1
    assert world.mail_records(ItemKind.CONTACT) == [ada()]


CHILD = """
import sys
from pathlib import Path
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.deployment import Deployment
from crmsync.service.scheduler import Scheduler, install_signal_handlers

scheduler = Scheduler(
    Deployment.from_env(Path(sys.argv[1])), interval=0.1, retry=RetryPolicy(base_delay=0.01)
)
install_signal_handlers(scheduler)
scheduler.start()
print("started", flush=True)
print("stopped" if scheduler.wait() else "still running", flush=True)
"""


def test_sigterm_finishes_the_cycle_in_flight_and_exits_cleanly(
    gated: tuple[World, Gate, RuleProxy],
) -> None:
    world, gate, _proxy = gated
    world.crm.create_contact(world.rep.id, ada())
    gate.armed = True
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(world.home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert gate.holding.wait(DEADLINE), "the child's first cycle reached the mail server"
        child.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert child.poll() is None, "the child exited with a cycle in flight"
        gate.opened.set()
        out, err = child.communicate(timeout=DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err.decode()
    assert out.decode().split() == ["started", "stopped"]
    status = world.service.store.rep_status(world.rep.id)
    assert status.last_error is None and status.lease_owner is None
    assert status.last_cycle_finished is not None
    assert status.last_cycle_finished >= status.last_cycle_started
    assert world.mail_records(ItemKind.CONTACT) == [ada()]
