"""A rep's status across one sync cycle: read once at the start, written once at the end.

A quiet cycle changes nothing but its own timestamps, so `open_cycle` reads, in one
transaction, everything of the rep's a cycle starts from: the row, flow statuses, change
cursors and unsettled write intents, and the org's settings version (the settings,
CRM section and configurations themselves only when it moved: `OrgSnapshot`). The cycle
notes its checks and statuses on the `RepCycleRecord` in memory, and `close_cycle`
writes, in one transaction, the timestamps and only what differs from what was read.
Under a lease the closing write is fenced and gives the lease up in the same statement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select, update

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import Direction
from crmsync.domain.sync import Side, WriteIntent
from crmsync.store import schema
from crmsync.store.activity import add_synced
from crmsync.store.configs import DEFAULT_ORG
from crmsync.store.database import Fence, StoreBase, ensure_rep
from crmsync.store.exceptions import LeaseLost
from crmsync.store.links import INTENT_FIELDS, write_intent
from crmsync.store.org_snapshot import OrgSnapshot, read_snapshot
from crmsync.store.settings_versions import settings_version
from crmsync.store.status import (
    CHECKS,
    MailPause,
    ResetStatus,
    SyncStatus,
    check_flow,
    pause_of,
    store_status,
)

_R = schema.reps
_S = schema.sync_statuses
_C = schema.cursors
_I = schema.write_intents

# Built once: the opening read runs every cycle of every rep.
_REP = bindparam("rep_id")
_ROW = select(_R).where(_R.c.rep_id == _REP)
_FLOWS = select(_S.c.kind, _S.c.direction, _S.c.status).where(_S.c.rep_id == _REP)
_CURSORS = select(_C.c.kind, _C.c.side, _C.c.cursor).where(_C.c.rep_id == _REP)
_INTENTS = (
    select(_I.c.kind, *(_I.c[f] for f in INTENT_FIELDS))
    .where(_I.c.rep_id == _REP)
    .order_by(_I.c.id)
)

Flow = tuple[ItemKind, Direction]


@dataclass
class RepCycleRecord:
    """The rep's status as the cycle found it, and what the cycle changed in it."""

    rep_id: str
    started_at: dt.datetime
    # When the cycle's work ended (default: at `close_cycle`).
    finished_at: dt.datetime | None = None
    checks: dict[str, bool | None] = field(default_factory=dict)
    reset_status: ResetStatus | None = None
    deletes_confirmed: bool = False
    consecutive_failures: int = 0
    last_error: str | None = None
    # The pause the mail server asked for, as stored when the cycle opened.
    paused: MailPause | None = None
    sync: dict[Flow, SyncStatus] = field(default_factory=dict)
    # The rep's change cursors and unsettled write intents as the cycle found them.
    cursors: dict[tuple[ItemKind, Side], str] = field(default_factory=dict)
    intents: dict[ItemKind, list[WriteIntent]] = field(default_factory=dict)
    # The org's settings, CRM section and configurations the cycle runs under.
    org: OrgSnapshot | None = None
    # Records the cycle synced per kind, counted in the org's activity at the close.
    synced: dict[ItemKind, int] = field(default_factory=dict)
    # Column → new value, and flow → new status: only what differs from the row read.
    changed: dict[str, object] = field(default_factory=dict)
    changed_sync: dict[Flow, SyncStatus] = field(default_factory=dict)

    def set_checks(self, **checks: bool | None) -> None:
        """Record setup checks by name (see `CHECKS`); an unchanged value is no change."""
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise TypeError(f"unknown rep checks: {sorted(unknown)}")
        for name, value in checks.items():
            self._set(name, value, self.checks.get(name))

    def status(self, kind: ItemKind, direction: Direction) -> SyncStatus:
        flow = (kind, direction)
        return self.changed_sync.get(flow, self.sync.get(flow, SyncStatus.NOT_STARTED))

    def set_status(self, kind: ItemKind, direction: Direction, status: SyncStatus) -> None:
        check_flow(direction)
        flow = (kind, direction)
        if self.sync.get(flow) == status:
            self.changed_sync.pop(flow, None)
        else:
            self.changed_sync[flow] = status

    def set_reset_status(self, status: ResetStatus | None) -> None:
        self._set("reset_status", status.value if status else None, _value(self.reset_status))

    def clear_deletes_confirmation(self) -> None:
        """A confirmation covers one cycle: the guard is armed again afterwards."""
        if self.deletes_confirmed:
            self.changed["deletes_confirmed_at"] = None

    def set_pause(self, pause: MailPause | None) -> None:
        """Keep (or, with ``None``, forget) the mail server's pause; unchanged is no change."""
        stored = self.paused
        for column, value, before in (
            ("paused_until", pause and pause.until, stored and stored.until),
            ("paused_by", pause and pause.by, stored and stored.by),
            ("paused_because", pause and pause.because, stored and stored.because),
        ):
            self._set(column, value, before)

    def add_synced(self, kind: ItemKind, count: int) -> None:
        """Count ``count`` records of ``kind`` synced (`StateStore.record_synced`, written
        with the cycle's closing write)."""
        if count < 0:
            raise ValueError("count must not be negative")
        self.synced[kind] = self.synced.get(kind, 0) + count

    def failures_after(self, error: str | None) -> int:
        """The consecutive failures once the cycle ends with ``error`` (or none)."""
        return 0 if error is None else self.consecutive_failures + 1

    def _set(self, column: str, value: object, stored: object) -> None:
        if value == stored:
            self.changed.pop(column, None)
        else:
            self.changed[column] = value


class CycleMixin(StoreBase):
    """Opening and closing a rep's cycle record."""

    # The org and snapshot last read by this store (this process): see `org_snapshot`.
    _org_snapshot: tuple[str, OrgSnapshot] | None = None

    def open_cycle(
        self, rep_id: str, org_id: str = DEFAULT_ORG, *, fence: int | None = None
    ) -> RepCycleRecord:
        """What the rep's cycle starts from, read in one transaction (defaults for a new
        rep): its row, flow statuses, cursors and write intents, and the org's settings
        (from memory while the org's settings version has not moved).

        With ``fence``, raises `LeaseLost` unless that fence still holds the rep's lease
        (read with the row: a cycle whose lease moved on stops before any request)."""
        record = RepCycleRecord(rep_id, self._clock())
        key = {"rep_id": rep_id}
        with self._read() as conn:
            row = conn.execute(_ROW, key).one_or_none()
            if fence is not None and (row is None or row.fence != fence or row.lease_owner is None):
                raise LeaseLost(f"lease of rep {rep_id!r} moved past fence {fence}")
            flows = conn.execute(_FLOWS, key).all()
            cursors = conn.execute(_CURSORS, key).all()
            intents = conn.execute(_INTENTS, key).mappings().all()
            record.org = self._org_snapshot_in(conn, org_id)
        if row is not None:
            record.checks = {c: row._mapping[c] for c in CHECKS}
            record.reset_status = ResetStatus(row.reset_status) if row.reset_status else None
            record.deletes_confirmed = row.deletes_confirmed_at is not None
            record.consecutive_failures = row.consecutive_failures
            record.last_error = row.last_error
            record.paused = pause_of(row)
        record.sync = {
            (ItemKind(kind), Direction(direction)): SyncStatus(status)
            for kind, direction, status in flows
        }
        record.cursors = {(ItemKind(kind), Side(side)): cursor for kind, side, cursor in cursors}
        for found in intents:
            kind = ItemKind(found["kind"])
            record.intents.setdefault(kind, []).append(write_intent(rep_id, kind, found))
        return record

    def org_snapshot(self, org_id: str = DEFAULT_ORG) -> OrgSnapshot:
        """The org's settings, CRM section and configurations as `open_cycle` reads them:
        one read of the settings version while it has not moved."""
        with self._read() as conn:
            return self._org_snapshot_in(conn, org_id)

    def _org_snapshot_in(self, conn: Connection, org_id: str) -> OrgSnapshot:
        version = settings_version(conn, org_id)
        kept = self._org_snapshot
        if kept is not None and kept[0] == org_id and kept[1].version == version:
            return kept[1]
        snapshot = read_snapshot(conn, org_id, version)
        self._org_snapshot = (org_id, snapshot)  # one reference swap: safe between threads
        return snapshot

    def close_cycle(
        self,
        record: RepCycleRecord,
        *,
        error: str | None = None,
        next_due: dt.datetime | None = None,
        ran: bool = True,
        fence: int | None = None,
    ) -> int:
        """Stamp the cycle and write what it changed, in one transaction; returns the
        consecutive failures after it.

        ``next_due``, when given, is when the scheduler should run the rep again.
        ``ran=False``: no cycle ran (no configuration covers the rep): no stamps, failures
        untouched. With ``fence`` the write requires the rep's lease to be still that
        fence (`LeaseLost` otherwise, nothing written) and gives the lease up.
        """
        failures = record.failures_after(error) if ran else record.consecutive_failures
        values: dict[str, object] = dict(record.changed)
        if ran:
            values["last_cycle_started"] = record.started_at
            values["last_cycle_finished"] = record.finished_at or self._clock()
            if failures != record.consecutive_failures:
                values["consecutive_failures"] = failures
            if error != record.last_error:
                values["last_error"] = error
        if next_due is not None:
            values["next_due"] = next_due
        if fence is not None:
            values |= {"lease_owner": None, "lease_expires": None}
        synced = {kind: count for kind, count in record.synced.items() if count}
        if not values and not record.changed_sync and not synced:
            return failures
        with self._write() as conn:
            if not _update_row(conn, record.rep_id, values, fence):
                if fence is not None:
                    raise LeaseLost(f"lease of rep {record.rep_id!r} moved past fence {fence}")
                ensure_rep(conn, record.rep_id)
                _update_row(conn, record.rep_id, values, None)
            for (kind, direction), status in record.changed_sync.items():
                store_status(conn, record.rep_id, kind, direction, status)
            at = record.finished_at or self._clock()
            for kind, count in synced.items():
                add_synced(conn, kind, count, at)
        record.synced.clear()
        return failures

    def write_statuses(self, record: RepCycleRecord, *, fence: int | None = None) -> None:
        """Write the flow statuses changed so far now, not at the close (an initial sync
        shows as in progress while it runs); under ``fence`` like `close_cycle`."""
        if not record.changed_sync:
            return
        with self._write(Fence(record.rep_id, fence) if fence is not None else None) as conn:
            ensure_rep(conn, record.rep_id)
            for (kind, direction), status in record.changed_sync.items():
                store_status(conn, record.rep_id, kind, direction, status)
        record.sync |= record.changed_sync
        record.changed_sync.clear()


def _update_row(
    conn: Connection, rep_id: str, values: dict[str, object], fence: int | None
) -> bool:
    stmt = update(_R).where(_R.c.rep_id == rep_id)
    if fence is not None:
        stmt = stmt.where(_R.c.fence == fence)
    return conn.execute(stmt.values(values)).rowcount == 1


def _value(status: ResetStatus | None) -> str | None:
    return status.value if status is not None else None
