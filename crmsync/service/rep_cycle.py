"""One rep's sync cycle: checks, the mailbox, both kinds, and the rep's status.

The rep's status, cursors and write intents are read once, with the org's settings
version (`StateStore.open_cycle`; the settings and configurations themselves are kept in
memory while that version stands), kept in memory while the cycle runs and written once
at its end (`StateStore.close_cycle`): a cycle that finds nothing to do costs one read
transaction and one commit. Under a lease (``fence``) every write of
the cycle is fenced, and the closing write gives the lease up; a cycle whose lease moved
to another worker stops writing at once (`LeaseLost`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import Direction, OrgSettings, SyncConfig
from crmsync.domain.sync import BUG_SUGGESTION, ErrorEntry, ErrorType, FolderMissing, SyncError
from crmsync.engine.cycle import sync_kind
from crmsync.engine.executor import ActionListener, KindReport
from crmsync.service.domains import NotInDomains, mailbox_in_domains
from crmsync.service.mailboxes import pause_note
from crmsync.service.policies import direction_of
from crmsync.service.rep_sign_in import note_failure, parked_because
from crmsync.store import (
    FLOWS,
    FencedState,
    LeaseLost,
    MailPause,
    ReadAhead,
    RepCycleRecord,
    ResetStatus,
    StateStore,
    SyncStatus,
)

if TYPE_CHECKING:
    from crmsync.service.runner import SyncService

log = logging.getLogger(__name__)

KINDS = (ItemKind.CONTACT, ItemKind.EVENT)

RepActionListener = Callable[[User], ActionListener]
# Where a cycle writes: the store, or the store under the rep's lease.
CycleState = StateStore | FencedState
# When the rep's next cycle is due, given its consecutive failures after this one.
NextDue = Callable[[int], dt.datetime]

# Which status check a missing folder fails (the spec's Tables 4-6).
_FOLDER_CHECKS = {
    "principal": "recognized",
    "calendar": "calendar_found",
    "contacts": "contacts_folder_found",
}


@dataclass
class RepReport:
    """What one cycle did for one rep; ``error`` is set when the rep could not sync."""

    rep: User
    kinds: dict[ItemKind, KindReport] = field(default_factory=dict)
    error: str | None = None
    configured: bool = True
    # API calls the org's metered CRM (Salesforce) answered while the cycle ran (with
    # several workers, their overlapping cycles' calls too); None for the built-in CRM.
    crm_calls: int | None = None
    # The rep's consecutive failed cycles after this one.
    failures: int = 0
    # When the rep's next cycle is due, if the cycle was told how to set it.
    next_due: dt.datetime | None = None
    # The cycle's lease moved to another worker mid-cycle: it stopped writing.
    lease_lost: bool = False

    @property
    def writes(self) -> int:
        return sum(report.total_writes for report in self.kinds.values())


class InvalidConfiguration(SyncError):
    error_type = ErrorType.CONFIGURATION


def run_cycle(
    service: SyncService,
    user: User,
    on_action: RepActionListener | None = None,
    *,
    fence: int | None = None,
    next_due: NextDue | None = None,
    opened: RepCycleRecord | None = None,
) -> RepReport:
    """Run one cycle for ``user``; failures end up in the error report, not raised.

    ``fence``: the rep's lease, which the cycle's writes require and its end gives up.
    ``next_due``: sets the rep's next-due time in the closing write. ``opened``: the
    rep's record, if the caller opened the cycle (`SyncService.open_cycle`) already.
    """
    store = service.store
    state = store if fence is None else store.fenced(user.id, fence)
    report = RepReport(user)
    try:
        record = opened or service.open_cycle(user.id, fence)
        _cycle(service, user, record, report, state, on_action)
        record.finished_at = service.clock()  # the next due time counts from here
        if report.configured:
            report.failures = record.failures_after(report.error)
        pause = _kept_pause(service, user, record)
        if next_due is not None:
            report.next_due = next_due(report.failures)
            # A pause the mail server named (Google's usage limits) is waited out.
            if pause is not None:
                report.next_due = max(report.next_due, pause.until)
        if fence is None and not report.configured and report.next_due is None:
            state.write_statuses(record)  # nothing ran: no cycle to stamp
        else:
            state.close_cycle(
                record, error=report.error, next_due=report.next_due, ran=report.configured
            )
    except LeaseLost as lost:
        log.warning("cycle of rep %s stopped: %s", user.id, lost, extra={"rep_id": user.id})
        report.error = f"the cycle stopped: another worker took the rep over ({lost})"
        report.lease_lost = True
    return report


def _kept_pause(service: SyncService, user: User, record: RepCycleRecord) -> MailPause | None:
    """The mail server's pause for the rep, stored with the cycle's status so that a
    restart, the other workers and `crmsync sync` honour it too; an ended one goes."""
    pause, stored = service.mail_pause(user.email), record.paused
    # Asked of another process or before a restart, or the same pause again (its end,
    # counted from a clock of the connection's, moves by a few ms each time).
    same = pause is None or (stored and abs(pause.until - stored.until) < dt.timedelta(minutes=1))
    if stored and stored.active(service.clock()) and same:
        return stored
    record.set_pause(pause)
    return pause


def _cycle(
    service: SyncService,
    user: User,
    record: RepCycleRecord,
    report: RepReport,
    state: CycleState,
    on_action: RepActionListener | None,
) -> None:
    store = service.store
    assert record.org is not None  # read by open_cycle
    config = record.org.config_of(user)
    if config is None:
        report.configured = False
        for kind in KINDS:
            _set_flows(record, kind, Direction.NONE)
        return
    settings = record.org.settings
    parked = parked_because(store, settings, user.email, service.clock())
    if parked is not None:
        report.error = parked  # no request to the server, no new error row
        return
    if record.paused and record.paused.active(service.clock()):
        report.error = pause_note(record.paused)  # likewise
        return
    calls_before = service.crm_api_state()
    try:
        service.check_settings()
        _sync(service, user, config, settings, record, report, state, on_action)
    except LeaseLost:
        raise
    except SyncError as failure:
        report.error = failure.message
        note_failure(store, settings, user.email, failure)
        _record(service, state, user, failure.error_type, failure.message, failure.suggestion)
    except Exception as bug:  # one rep's bug must not stop the others
        log.exception("sync of rep %s failed", user.id)
        report.error = f"{type(bug).__name__}: {bug}"
        _record(
            service,
            state,
            user,
            ErrorType.INTERNAL,
            report.error,
            BUG_SUGGESTION,
        )
    calls_after = service.crm_api_state()
    if calls_after is not None:
        report.crm_calls = calls_after.calls_made - (calls_before.calls_made if calls_before else 0)
        service.count_crm_cycles(1)


def _sync(
    service: SyncService,
    user: User,
    config: SyncConfig,
    settings: OrgSettings,
    record: RepCycleRecord,
    report: RepReport,
    state: CycleState,
    on_action: RepActionListener | None,
) -> None:
    linked = mailbox_in_domains(user.email, settings)
    record.set_checks(addresses_linked=linked)
    if not linked:
        raise NotInDomains(user.email, settings)
    engine_state = ReadAhead(state, record)
    if record.reset_status is not None:
        _start_reset(engine_state, record)
    elsewhere = service.claimed_elsewhere().get(user.email.casefold())
    if elsewhere is not None:
        org, other = elsewhere
        raise InvalidConfiguration(
            f"{user.email} is also in the active configuration {other!r} of org {org!r}; "
            "it does not sync here until it is in only one",
            "Remove the rep from one of the two configurations (or deactivate one).",
        )
    fields = service.contact_fields(config)
    kinds = mailbox_kinds(config)
    try:
        mailbox = service.mail_server().open(user.email, fields, user.time_zone, kinds)
    except FolderMissing as missing:
        check = _FOLDER_CHECKS.get(missing.folder)
        if check:
            record.set_checks(**{check: False})
        raise
    except SyncError as failure:
        record.set_checks(recognized=failure.error_type is not ErrorType.AUTHENTICATION)
        raise
    # A folder a kind that does not sync was not looked for: its check stays unknown.
    record.set_checks(
        recognized=True,
        mailbox_supported=True,
        contacts_folder_found=True if "contacts" in kinds else None,
        calendar_found=True if "events" in kinds else None,
    )
    listener = on_action(user) if on_action else None
    guard = service.delete_guard(settings, confirmed=record.deletes_confirmed)
    directions = {kind: direction_of(config, kind) for kind in KINDS}
    for kind, direction in directions.items():
        _set_flows(record, kind, direction)
        for flow in flows_of(direction):
            record.set_status(kind, flow, record.status(kind, flow).started())
    if SyncStatus.INITIAL_SYNC_IN_PROGRESS in record.changed_sync.values():
        # An initial sync may take long: the status page shows it in progress meanwhile.
        state.write_statuses(record)
    for kind, direction in directions.items():
        if direction is Direction.NONE:
            continue
        kind_report = sync_kind(
            user.id,
            kind,
            *service.sides(user, kind, config, fields, mailbox),
            engine_state,
            service.policy(config, kind, user, settings, guard, fields),
            service.clock,
            listener,
        )
        report.kinds[kind] = kind_report
        if kind_report.held_deletes and report.error is None:
            report.error = (
                f"{kind_report.held_deletes} {kind.value} deletions held back "
                "by the mass-delete guard (see the error report)"
            )
        record.add_synced(kind, kind_report.total_writes)
        if kind_report.transient_failures:
            # Not synced yet: the flows stay "in progress" and the rep shows the error.
            report.error = (
                f"{kind_report.transient_failures} {kind.value} change(s) could not be "
                "written for a passing reason (see the error report); they are retried "
                "next cycle."
            )
            continue
        for flow in flows_of(direction):
            record.set_status(kind, flow, record.status(kind, flow).finished())
    record.set_reset_status(None)
    record.clear_deletes_confirmation()


def _start_reset(state: ReadAhead, record: RepCycleRecord) -> None:
    """Forget the rep's links and cursors; the cycle then re-pairs by marker and content."""
    record.set_reset_status(ResetStatus.IN_PROGRESS)
    state.clear_rep(record.rep_id)
    for kind in KINDS:
        for flow in FLOWS:
            record.set_status(kind, flow, SyncStatus.NOT_STARTED)


def _set_flows(record: RepCycleRecord, kind: ItemKind, direction: Direction) -> None:
    for flow in FLOWS:
        if flow not in flows_of(direction):
            record.set_status(kind, flow, SyncStatus.NOT_CONFIGURED)


def _record(
    service: SyncService,
    state: CycleState,
    user: User,
    error_type: ErrorType,
    message: str,
    suggestion: str,
) -> None:
    state.record_error(
        ErrorEntry(user.id, None, None, "sync", error_type, message, suggestion, service.clock())
    )


def mailbox_kinds(config: SyncConfig) -> frozenset[str]:
    """The mail folders a configuration syncs: "contacts", "events" (DAV opens no other)."""
    return frozenset(
        name
        for kind, name in ((ItemKind.CONTACT, "contacts"), (ItemKind.EVENT, "events"))
        if direction_of(config, kind) is not Direction.NONE
    )


def flows_of(direction: Direction) -> tuple[Direction, ...]:
    """The flows (`FLOWS`) a kind's direction setting syncs."""
    return tuple(
        flow
        for flow, on in (
            (Direction.CRM_TO_MAIL, direction.to_mail),
            (Direction.MAIL_TO_CRM, direction.to_crm),
        )
        if on
    )
