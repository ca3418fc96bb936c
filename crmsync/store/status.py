"""Per-rep sync status (DESIGN rule 8; the spec's user status tables 4-6).

Per rep, item kind and direction one `SyncStatus`; per rep the setup checks (each ``True``,
``False`` or ``None`` for not checked yet), cycle times, last error, reset status, and the
scheduler's consecutive failures and next due time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    case,
    func,
    literal,
    select,
    update,
)

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import Direction
from crmsync.store import schema
from crmsync.store.database import Fence, StoreBase, ensure_rep, insert_for

_R = schema.reps
_S = schema.sync_statuses

# The two directions a status is kept for; `Direction.BOTH` / `NONE` describe settings.
FLOWS = (Direction.CRM_TO_MAIL, Direction.MAIL_TO_CRM)


class SyncStatus(StrEnum):
    """One direction's sync status; ``display`` is the spec's wording for the admin."""

    NOT_STARTED = "not_started"
    INITIAL_SYNC_IN_PROGRESS = "initial_sync_in_progress"
    INITIAL_SYNC_COMPLETED = "initial_sync_completed"
    SYNC_IN_PROGRESS = "sync_in_progress"
    IN_SYNC = "in_sync"
    NOT_CONFIGURED = "not_configured"

    @property
    def display(self) -> str:
        return _SYNC_DISPLAY[self]

    def started(self) -> SyncStatus:
        """The status once a sync in this direction starts.

        Until one sync has completed, every run counts as the initial sync.
        """
        if self in (
            SyncStatus.INITIAL_SYNC_COMPLETED,
            SyncStatus.IN_SYNC,
            SyncStatus.SYNC_IN_PROGRESS,
        ):
            return SyncStatus.SYNC_IN_PROGRESS
        return SyncStatus.INITIAL_SYNC_IN_PROGRESS

    def finished(self) -> SyncStatus:
        """The status once a sync in this direction completes."""
        if self is SyncStatus.SYNC_IN_PROGRESS or self is SyncStatus.IN_SYNC:
            return SyncStatus.IN_SYNC
        return SyncStatus.INITIAL_SYNC_COMPLETED


_SYNC_DISPLAY = {
    SyncStatus.NOT_STARTED: "Not started",
    SyncStatus.INITIAL_SYNC_IN_PROGRESS: "Initial sync in progress",
    SyncStatus.INITIAL_SYNC_COMPLETED: "Initial sync completed",
    SyncStatus.SYNC_IN_PROGRESS: "Sync in progress",
    SyncStatus.IN_SYNC: "In sync",
    # The spec's "Exchange configuration not set to sync", with our glossary applied.
    SyncStatus.NOT_CONFIGURED: "Configuration not set to sync",
}


class ResetStatus(StrEnum):
    """The spec's "User's reset sync status"; no status (``None``) is shown as nothing."""

    MARKED = "marked_for_reset"
    IN_PROGRESS = "reset_in_progress"

    @property
    def display(self) -> str:
        return "Marked for reset" if self is ResetStatus.MARKED else "Reset in progress"


# The setup checks of tables 4-6, as `set_rep_checks` keywords.
CHECKS = (
    "mailbox_supported",
    "recognized",
    "contacts_folder_found",
    "calendar_found",
    "addresses_linked",
)


@dataclass(frozen=True)
class MailPause:
    """The mail server told crmsync to leave a rep alone until ``until`` (Google's usage
    limits): ``by`` names the server ("Google"), ``because`` says why."""

    until: dt.datetime
    by: str
    because: str

    def active(self, now: dt.datetime) -> bool:
        return self.until > now


@dataclass(frozen=True)
class RepStatus:
    """Everything the status page shows for one rep.

    A rep the store has never heard of reads as all checks unknown and "Not started".
    ``records_in_sync`` counts links per kind (absent kinds: 0).
    """

    rep_id: str
    mailbox_supported: bool | None = None
    recognized: bool | None = None
    contacts_folder_found: bool | None = None
    calendar_found: bool | None = None
    addresses_linked: bool | None = None
    last_cycle_started: dt.datetime | None = None
    last_cycle_finished: dt.datetime | None = None
    last_error: str | None = None
    reset_status: ResetStatus | None = None
    consecutive_failures: int = 0
    next_due: dt.datetime | None = None
    lease_owner: str | None = None
    lease_expires: dt.datetime | None = None
    paused: MailPause | None = None
    sync: dict[tuple[ItemKind, Direction], SyncStatus] = field(default_factory=dict)
    records_in_sync: dict[ItemKind, int] = field(default_factory=dict)

    def sync_status(self, kind: ItemKind, direction: Direction) -> SyncStatus:
        return self.sync.get((kind, direction), SyncStatus.NOT_STARTED)

    def running_on(self, now: dt.datetime) -> str | None:
        """The worker whose lease on the rep is live at ``now`` (its cycle runs), if any."""
        return self.lease_owner if self._leased(now) else None

    def due_since(self, now: dt.datetime) -> dt.datetime | None:
        """Since when the rep waits for a claim, if the store's `claim_due` would take it at
        ``now``: due (``next_due`` passed, or none: never scheduled, which counts as due
        since ``now``) and no live lease. ``None``: not due, or leased. A rep made due at
        once (`StatusMixin.make_due`) waits since that instant."""
        if self._leased(now):
            return None
        if self.next_due is None:
            return now
        return self.next_due if self.next_due <= now else None

    def _leased(self, now: dt.datetime) -> bool:
        # As the claim's SQL reads it: a lease without an expiry never lapses.
        return self.lease_owner is not None and (
            self.lease_expires is None or self.lease_expires > now
        )


class StatusMixin(StoreBase):
    """Reading and writing per-rep statuses."""

    def rep_status(self, rep_id: str) -> RepStatus:
        """The rep's full status (a default one for an unknown rep)."""
        found = self._rep_statuses(_R.c.rep_id == rep_id)
        return found[0] if found else RepStatus(rep_id)

    def rep_statuses(self) -> list[RepStatus]:
        """The status of every rep the store knows, ordered by rep id."""
        return self._rep_statuses(None)

    def set_rep_checks(self, rep_id: str, **checks: bool | None) -> None:
        """Record setup checks by name (see `CHECKS`); checks not named stay as they are."""
        self._set_rep_checks(rep_id, checks, None)

    def cycle_finished(
        self,
        rep_id: str,
        *,
        error: str | None = None,
        next_due: dt.datetime | None = None,
        at: dt.datetime | None = None,
    ) -> int:
        """Stamp the end of a cycle; returns the consecutive failures after it.

        With ``error`` the failure count grows and ``last_error`` is set; without, both
        reset. ``next_due``, when given, is when the scheduler should run the rep again.
        """
        return self._cycle_finished(rep_id, error, next_due, at, None)

    def set_next_due(self, rep_id: str, next_due: dt.datetime | None) -> None:
        """When the scheduler should run the rep next (``None``: at once, with no instant
        it became due, as for a rep never scheduled; `make_due` keeps that instant)."""
        self._update_rep(rep_id, {"next_due": next_due}, None)

    def make_due(self, rep_id: str, at: dt.datetime) -> None:
        """Have the scheduler take the rep at once: its next-due time becomes ``at`` (now,
        by the caller's clock) unless it was due earlier already. The instant, not
        ``None``, so that a rep nobody claims shows how long it waits (`RepStatus.due_since`:
        Overdue, the claim lag); `claim_due` takes reps earliest due first."""
        due_earlier = and_(_R.c.next_due.is_not(None), _R.c.next_due <= at)
        now = literal(at, _R.c.next_due.type)  # stored as the column stores it (UTC)
        self._update_rep(rep_id, {"next_due": case((due_earlier, _R.c.next_due), else_=now)}, None)

    def set_reset_status(self, rep_id: str, status: ResetStatus | None) -> None:
        """The reset request's progress; ``None`` once the reset is done."""
        value = status.value if status is not None else None
        self._update_rep(rep_id, {"reset_status": value}, None)

    def confirm_deletes(self, rep_id: str) -> None:
        """Let the rep's next cycle carry out deletions the mass-delete guard held back."""
        self._update_rep(rep_id, {"deletes_confirmed_at": self._clock()}, None)

    def deletes_confirmed(self, rep_id: str) -> bool:
        with self._read() as conn:
            value = conn.execute(
                select(_R.c.deletes_confirmed_at).where(_R.c.rep_id == rep_id)
            ).scalar_one_or_none()
        return value is not None

    # -- implementation, optionally under a rep's fence --

    def _rep_statuses(self, where: ColumnElement[bool] | None) -> list[RepStatus]:
        reps_q = select(_R).order_by(_R.c.rep_id)
        statuses_q = select(_S)
        counts_q = (
            select(schema.links.c.rep_id, schema.links.c.kind, func.count())
            .where(schema.links.c.detached.is_(None))
            .group_by(schema.links.c.rep_id, schema.links.c.kind)
        )
        if where is not None:
            reps_q = reps_q.where(where)
            statuses_q = statuses_q.where(_S.c.rep_id.in_(select(_R.c.rep_id).where(where)))
            counts_q = counts_q.where(schema.links.c.rep_id.in_(select(_R.c.rep_id).where(where)))
        with self._read() as conn:
            rep_rows = conn.execute(reps_q).all()
            status_rows = conn.execute(statuses_q).all()
            count_rows = conn.execute(counts_q).all()
        now = self._clock()
        running = {
            r.rep_id for r in rep_rows if r.lease_owner is not None and r.lease_expires > now
        }
        sync: dict[str, dict[tuple[ItemKind, Direction], SyncStatus]] = {}
        for s in status_rows:
            status = SyncStatus(s.status)
            if s.rep_id in running and status is not SyncStatus.NOT_CONFIGURED:
                # A cycle writes its flows' statuses once, at its end: while it runs (the
                # rep's lease is held) each shows as started.
                status = status.started()
            sync.setdefault(s.rep_id, {})[ItemKind(s.kind), Direction(s.direction)] = status
        counts: dict[str, dict[ItemKind, int]] = {}
        for rep_id, kind, n in count_rows:
            counts.setdefault(rep_id, {})[ItemKind(kind)] = n
        return [
            RepStatus(
                rep_id=r.rep_id,
                **{c: r._mapping[c] for c in CHECKS},
                last_cycle_started=r.last_cycle_started,
                last_cycle_finished=r.last_cycle_finished,
                last_error=r.last_error,
                reset_status=ResetStatus(r.reset_status) if r.reset_status else None,
                consecutive_failures=r.consecutive_failures,
                next_due=r.next_due,
                lease_owner=r.lease_owner,
                lease_expires=r.lease_expires,
                paused=pause_of(r),
                sync=sync.get(r.rep_id, {}),
                records_in_sync=counts.get(r.rep_id, {}),
            )
            for r in rep_rows
        ]

    def _set_rep_checks(
        self, rep_id: str, checks: dict[str, bool | None], fence: Fence | None
    ) -> None:
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise TypeError(f"unknown rep checks: {sorted(unknown)}")
        self._update_rep(rep_id, checks, fence)

    def _update_rep(self, rep_id: str, values: dict[str, object], fence: Fence | None) -> None:
        with self._write(fence) as conn:
            ensure_rep(conn, rep_id)
            if values:
                conn.execute(update(_R).where(_R.c.rep_id == rep_id).values(values))

    def _cycle_finished(
        self,
        rep_id: str,
        error: str | None,
        next_due: dt.datetime | None,
        at: dt.datetime | None,
        fence: Fence | None,
    ) -> int:
        values: dict[str, object] = {"last_cycle_finished": at or self._clock()}
        if error is None:
            values |= {"consecutive_failures": 0, "last_error": None}
        else:
            values |= {"consecutive_failures": _R.c.consecutive_failures + 1, "last_error": error}
        if next_due is not None:
            values["next_due"] = next_due
        with self._write(fence) as conn:
            ensure_rep(conn, rep_id)
            conn.execute(update(_R).where(_R.c.rep_id == rep_id).values(values))
            return int(
                conn.execute(
                    select(_R.c.consecutive_failures).where(_R.c.rep_id == rep_id)
                ).scalar_one()
            )


def pause_of(row: Row[Any]) -> MailPause | None:
    """The pause stored on a ``reps`` row, if any."""
    if row.paused_until is None:
        return None
    return MailPause(row.paused_until, row.paused_by or "", row.paused_because or "")


def check_flow(direction: Direction) -> None:
    if direction not in FLOWS:
        raise ValueError(f"a status is kept per direction, not for {direction!r}")


def store_status(
    conn: Connection,
    rep_id: str,
    kind: ItemKind,
    direction: Direction,
    status: SyncStatus,
) -> None:
    """Upsert one flow's status (the rep's row exists)."""
    stmt = insert_for(conn)(_S).values(
        rep_id=rep_id, kind=kind.value, direction=direction.value, status=status.value
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["rep_id", "kind", "direction"], set_={"status": stmt.excluded.status}
        )
    )
