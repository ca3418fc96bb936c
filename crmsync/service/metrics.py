"""Prometheus metrics of the sync cycles, for ``/metrics``.

`SyncMetrics` keeps its own `CollectorRegistry` (never the process-wide default), so
several apps or tests in one process do not clash. What it exposes:

- ``crmsync_cycles_total{outcome}``: cycles run, ``outcome`` ``ok``, ``error`` (the
  cycle's report has an error: the rep could not sync, a change could not be written, or
  deletions were held back) or ``not_configured`` (no active configuration covers the rep).
- ``crmsync_items_synced_total{kind,direction}``: items created, updated or deleted,
  ``kind`` ``contact`` / ``event``, ``direction`` ``to_mail`` / ``to_crm`` (the side written).
- ``crmsync_errors_total{error_type}``: error-report rows the cycles wrote, by their
  `ErrorType` (one per failed item, one per rep-level failure); the scheduler passes a
  cycle's rows to `SyncMetrics.observe`.
- ``crmsync_cycle_duration_seconds``: a histogram of cycle durations (configured reps only).
- ``crmsync_reps{status}``: the reps the state store knows, by `rep_state`, read from the
  store at each scrape.

For an org that syncs Salesforce (``crm_state`` given; read at each scrape, no API call):

- ``crmsync_crm_api_calls_total``: API calls this process made to the org.
- ``crmsync_crm_api_calls_per_cycle``: a histogram of the calls answered while each rep's
  cycle ran (with several workers, overlapping cycles count each other's calls too).
- ``crmsync_crm_api_usage_used`` / ``crmsync_crm_api_usage_limit``: the org's rolling
  24-hour API calls (every integration's) and its daily allocation, from the last answer.
- ``crmsync_crm_writes_paused``: 1 while writes wait for usage to drop below the allocation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorEntry, ErrorType, Side
from crmsync.service.crms import CrmApiState
from crmsync.service.runner import RepReport
from crmsync.store import RepStatus, StateStore, SyncStatus

log = logging.getLogger(__name__)

DIRECTIONS = {Side.MAIL: "to_mail", Side.CRM: "to_crm"}
OUTCOMES = ("ok", "error", "not_configured")
ERROR_STATE = "error"
# A rep's state is its least advanced configured flow; the order of `rep_state`.
_PROGRESS = (
    SyncStatus.NOT_STARTED,
    SyncStatus.INITIAL_SYNC_IN_PROGRESS,
    SyncStatus.INITIAL_SYNC_COMPLETED,
    SyncStatus.SYNC_IN_PROGRESS,
    SyncStatus.IN_SYNC,
)
REP_STATES = (*(s.value for s in _PROGRESS), SyncStatus.NOT_CONFIGURED.value, ERROR_STATE)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
CALL_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 25, 50, 100, 250, 1000)

RepStatuses = Callable[[], Iterable[RepStatus]]
CrmState = Callable[[], CrmApiState | None]


def cycle_errors(store: StateStore, report: RepReport, since: dt.datetime) -> list[ErrorEntry]:
    """The error-report rows a cycle that started at ``since`` wrote (no other cycle of
    the rep ran meanwhile: it held the rep's lease)."""
    if report.error is None and not any(k.errors for k in report.kinds.values()):
        return []
    return store.errors(rep_id=report.rep.id, since=since)


def outcome_of(report: RepReport) -> str:
    """The ``outcome`` label of a cycle's report."""
    if not report.configured:
        return "not_configured"
    return "ok" if report.error is None else "error"


def rep_state(status: RepStatus) -> str:
    """One word for a rep's state, a value of `REP_STATES`.

    ``error`` when the last cycle failed; else ``not_configured`` when no flow syncs (every
    stored flow is "not configured"), ``not_started`` when nothing is recorded yet, and
    otherwise the `SyncStatus` value of its least advanced flow.
    """
    if status.last_error is not None:
        return ERROR_STATE
    flows = list(status.sync.values())
    if not flows:
        return SyncStatus.NOT_STARTED.value
    configured = [s for s in flows if s is not SyncStatus.NOT_CONFIGURED]
    if not configured:
        return SyncStatus.NOT_CONFIGURED.value
    return min(configured, key=_PROGRESS.index).value


class SyncMetrics:
    """The service's metrics in a registry of their own; safe to use from any thread.

    ``rep_statuses`` (e.g. ``StateStore.rep_statuses``) feeds the ``crmsync_reps`` gauge at
    scrape time; without it the gauge is left out.
    """

    def __init__(
        self, rep_statuses: RepStatuses | None = None, crm_state: CrmState | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.cycles = Counter(
            "crmsync_cycles",
            "Sync cycles run, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.items = Counter(
            "crmsync_items_synced",
            "Items created, updated or deleted by sync cycles, by kind and side written.",
            ["kind", "direction"],
            registry=self.registry,
        )
        self.errors = Counter(
            "crmsync_errors",
            "Error-report rows written by sync cycles, by error type.",
            ["error_type"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "crmsync_cycle_duration_seconds",
            "Duration of the sync cycles of configured reps.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.crm_calls = Histogram(
            "crmsync_crm_api_calls_per_cycle",
            "CRM API calls (Salesforce) answered while a rep's cycle ran.",
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        # Every label value from the start, so a rate over a series that is still 0 works.
        for outcome in OUTCOMES:
            self.cycles.labels(outcome)
        for kind in ItemKind:
            for direction in DIRECTIONS.values():
                self.items.labels(kind.value, direction)
        for error_type in ErrorType:
            self.errors.labels(error_type.value)
        if rep_statuses is not None:
            self.registry.register(_RepsCollector(rep_statuses))
        if crm_state is not None:
            self.registry.register(_CrmCollector(crm_state))

    def observe(self, report: RepReport, seconds: float, errors: Iterable[ErrorEntry] = ()) -> None:
        """Count one cycle: its outcome, its writes, ``errors`` (the error-report rows it
        wrote) and, for a configured rep, its duration."""
        self.cycles.labels(outcome_of(report)).inc()
        if report.configured:
            self.duration.observe(seconds)
        if report.crm_calls is not None:
            self.crm_calls.observe(report.crm_calls)
        for kind, kind_report in report.kinds.items():
            for (_operation, side), n in kind_report.writes.items():
                if n:
                    self.items.labels(kind.value, DIRECTIONS[side]).inc(n)
        for entry in errors:
            self.errors.labels(entry.error_type.value).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every metric and its content type, for ``/metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _RepsCollector(Collector):
    def __init__(self, rep_statuses: RepStatuses) -> None:
        self._rep_statuses = rep_statuses

    def describe(self) -> Iterator[Metric]:
        # Describing must not read the store (it runs at registration).
        yield GaugeMetricFamily("crmsync_reps", _REPS_HELP, labels=["status"])
        yield GaugeMetricFamily("crmsync_reps_due", _DUE_HELP)
        yield GaugeMetricFamily("crmsync_oldest_due_age_seconds", _AGE_HELP)

    def collect(self) -> Iterator[Metric]:
        try:
            statuses = list(self._rep_statuses())
        except Exception:  # a scrape must answer even while the database does not
            log.warning("could not read the reps' statuses for the metrics", exc_info=True)
            return
        counts = dict.fromkeys(REP_STATES, 0)
        for status in statuses:
            counts[rep_state(status)] += 1
        family = GaugeMetricFamily("crmsync_reps", _REPS_HELP, labels=["status"])
        for state, n in counts.items():
            family.add_metric([state], n)
        yield family
        # The schedule's backlog: reps due and not claimed yet, and how long the one
        # waiting longest has been due (the claim lag).
        now = dt.datetime.now(dt.UTC)
        waiting = [since for s in statuses if (since := s.due_since(now)) is not None]
        oldest = min(waiting, default=now)
        yield GaugeMetricFamily("crmsync_reps_due", _DUE_HELP, value=len(waiting))
        yield GaugeMetricFamily(
            "crmsync_oldest_due_age_seconds", _AGE_HELP, value=(now - oldest).total_seconds()
        )


_REPS_HELP = "Reps the state store knows, by sync state."
_DUE_HELP = "Reps due for a cycle that no scheduler or worker has claimed yet."
_AGE_HELP = "Seconds the longest-waiting unclaimed due rep has been due (0: none waits)."


class _CrmCollector(Collector):
    def __init__(self, crm_state: CrmState) -> None:
        self._crm_state = crm_state

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        try:
            state = self._crm_state()
        except Exception:  # a scrape must answer whatever the CRM does
            log.warning("could not read the CRM's API numbers for the metrics", exc_info=True)
            return
        if state is not None:
            yield from self._families(state)

    @staticmethod
    def _families(state: CrmApiState | None) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "crmsync_crm_api_calls", "CRM API calls (Salesforce) this process made."
        )
        used = GaugeMetricFamily(
            "crmsync_crm_api_usage_used",
            "The org's API calls in the rolling 24 hours, all integrations (last answer).",
        )
        limit = GaugeMetricFamily(
            "crmsync_crm_api_usage_limit", "The org's daily API allocation (last answer)."
        )
        paused = GaugeMetricFamily(
            "crmsync_crm_writes_paused",
            "1 while writes to the CRM wait for the API usage to drop below the allocation.",
        )
        if state is not None:
            calls.add_metric([], state.calls_made)
            if state.used is not None and state.limit is not None:
                used.add_metric([], state.used)
                limit.add_metric([], state.limit)
            paused.add_metric([], 1 if state.writes_paused else 0)
        yield from (calls, used, limit, paused)
