"""Leases with fence numbers, so a stalled worker's late writes are refused.

A worker claims a rep and gets a fence number; every claim, by anyone, increases it. Its
writes go through `FencedState`, which checks the number in the same transaction as the
write and raises `LeaseLost` once another worker has claimed the rep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, text, update

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, ErrorEntry, Link, Side, WriteIntent
from crmsync.store import schema
from crmsync.store.cycles import RepCycleRecord
from crmsync.store.database import Fence, StoreBase, ensure_rep, insert_for
from crmsync.store.exceptions import LeaseLost

if TYPE_CHECKING:
    from crmsync.store.state import StateStore

_R = schema.reps

# Reps leased per claim: measured ~1,500 claims/s on 2 cores with 20 claimers at 25 on
# PostgreSQL, against ~150/s one rep per claim (../shared research, scale-out §3.3).
CLAIM_BATCH = 25
# Any constant works; the same in every crmsync process (see `claim_due`).
_CAPPED_CLAIM_LOCK = 0x63726D636C61696D


class LeaseMixin(StoreBase):
    """Claiming and releasing reps."""

    def claim_rep(
        self, rep_id: str, worker: str, ttl: dt.timedelta, now: dt.datetime | None = None
    ) -> int | None:
        """Take the rep's lease for ``ttl``; returns the new fence, or ``None`` if held.

        Succeeds when the rep is free, its lease expired, or ``worker`` holds it already
        (a re-claim still moves the fence, retiring the worker's older `FencedState`).
        """
        now = now or self._clock()
        with self._write() as conn:
            ensure_rep(conn, rep_id)
            claimed = conn.execute(
                update(_R)
                .where(
                    _R.c.rep_id == rep_id,
                    or_(
                        _R.c.lease_owner.is_(None),
                        _R.c.lease_owner == worker,
                        _R.c.lease_expires <= now,
                    ),
                )
                .values(lease_owner=worker, lease_expires=now + ttl, fence=_R.c.fence + 1)
            ).rowcount
            if claimed != 1:
                return None
            return int(conn.execute(select(_R.c.fence).where(_R.c.rep_id == rep_id)).scalar_one())

    def claim_due(
        self,
        worker: str,
        ttl: dt.timedelta,
        *,
        limit: int = CLAIM_BATCH,
        max_in_flight: int | None = None,
        now: dt.datetime | None = None,
    ) -> list[tuple[str, int]]:
        """Lease up to ``limit`` due reps at once, earliest due first; returns each rep id
        with its new fence.

        Due: never scheduled or due by now, and not leased (or the lease expired). On
        PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
        take disjoint batches without waiting for each other; on SQLite the write lock
        serialises claimers. ``max_in_flight`` caps the reps leased at once in this
        database, i.e. for the org (its CRM org and mail server), across all claimers.
        """
        now = now or self._clock()
        free = or_(_R.c.lease_owner.is_(None), _R.c.lease_expires <= now)
        due = or_(_R.c.next_due.is_(None), _R.c.next_due <= now)
        with self._write() as conn:
            if max_in_flight is not None:
                if conn.dialect.name == "postgresql":
                    # Counting and claiming must not interleave between capped claimers.
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CAPPED_CLAIM_LOCK}
                    )
                live = conn.execute(
                    select(func.count()).where(
                        _R.c.lease_owner.is_not(None), _R.c.lease_expires > now
                    )
                ).scalar_one()
                limit = min(limit, max_in_flight - live)
            if limit <= 0:
                return []
            picked = (
                select(_R.c.rep_id)
                .where(due, free)
                .order_by(_R.c.next_due.asc().nulls_first(), _R.c.rep_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = conn.execute(
                update(_R)
                .where(_R.c.rep_id.in_(picked.scalar_subquery()))
                .values(lease_owner=worker, lease_expires=now + ttl, fence=_R.c.fence + 1)
                .returning(_R.c.rep_id, _R.c.fence)
            ).all()
        return [(rep_id, fence) for rep_id, fence in rows]

    def schedule_reps(self, rep_ids: Sequence[str]) -> None:
        """Give reps the store has no row for yet one, due at once (`claim_due` finds
        only reps with a row)."""
        with self._write() as conn:
            for start in range(0, len(rep_ids), 500):
                ins = insert_for(conn)(_R)
                conn.execute(
                    ins.on_conflict_do_nothing(index_elements=["rep_id"]),
                    [{"rep_id": rep_id} for rep_id in rep_ids[start : start + 500]],
                )

    def renew_lease(
        self, rep_id: str, fence: int, ttl: dt.timedelta, now: dt.datetime | None = None
    ) -> bool:
        """Extend the lease ``fence`` holds by ``ttl`` from now, keeping the fence (the
        holder's `FencedState` stays valid); ``False`` once another claim moved it."""
        now = now or self._clock()
        with self._write() as conn:
            stmt = (
                update(_R)
                .where(_R.c.rep_id == rep_id, _R.c.fence == fence, _R.c.lease_owner.is_not(None))
                .values(lease_expires=now + ttl)
            )
            return conn.execute(stmt).rowcount == 1

    def release_rep(self, rep_id: str, fence: int) -> bool:
        """Give the lease up if ``fence`` still holds it; returns whether it did."""
        with self._write() as conn:
            stmt = (
                update(_R)
                .where(_R.c.rep_id == rep_id, _R.c.fence == fence)
                .values(lease_owner=None, lease_expires=None)
            )
            return conn.execute(stmt).rowcount == 1


class FencedState:
    """One rep's `SyncState` (and status writes) under a fence.

    Reads go straight to the store. Every write first checks, in its own transaction,
    that the rep's fence is still ``fence`` and raises `LeaseLost` otherwise; writes for
    another rep raise ``ValueError``.
    """

    def __init__(self, store: StateStore, rep_id: str, fence: int) -> None:
        self._store = store
        self._fence = Fence(rep_id, fence)

    def __repr__(self) -> str:
        return f"FencedState(rep_id={self._fence.rep_id!r}, fence={self._fence.number})"

    @property
    def rep_id(self) -> str:
        return self._fence.rep_id

    @property
    def fence(self) -> int:
        return self._fence.number

    def _own(self, rep_id: str) -> Fence:
        if rep_id != self._fence.rep_id:
            raise ValueError(f"this state is fenced for rep {self._fence.rep_id!r}, not {rep_id!r}")
        return self._fence

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]:
        return self._store.links(rep_id, kind)

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        self._store._apply_links(rep_id, kind, saves, drops, self._own(rep_id), settled)

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        return self._store.pending_intents(rep_id, kind)

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        self._store._record_intents(rep_id, kind, intents, self._own(rep_id))

    def save_link(self, link: Link) -> None:
        self.apply_links(link.rep_id, link.kind, [link], [])

    def drop_link(self, rep_id: str, kind: ItemKind, crm_id: str) -> None:
        self.apply_links(rep_id, kind, [], [crm_id])

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None:
        return self._store.cursor(rep_id, kind, side)

    def save_cursor(self, rep_id: str, kind: ItemKind, side: Side, cursor: str | None) -> None:
        self.save_cursors(rep_id, kind, {side: cursor})

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        for entry in audit:
            self._own(entry.rep_id)
        self._store._save_cursors(rep_id, kind, cursors, self._own(rep_id), audit)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            self._own(entry.rep_id)
        self._store.record_audit(entries)

    def record_error(self, entry: ErrorEntry) -> None:
        self._store._record_error(entry, self._own(entry.rep_id))

    def cycle_finished(
        self,
        rep_id: str,
        *,
        error: str | None = None,
        next_due: dt.datetime | None = None,
        at: dt.datetime | None = None,
    ) -> int:
        return self._store._cycle_finished(rep_id, error, next_due, at, self._own(rep_id))

    def write_statuses(self, record: RepCycleRecord) -> None:
        self._own(record.rep_id)
        self._store.write_statuses(record, fence=self.fence)

    def close_cycle(
        self,
        record: RepCycleRecord,
        *,
        error: str | None = None,
        next_due: dt.datetime | None = None,
        ran: bool = True,
    ) -> int:
        """`StateStore.close_cycle` under the fence: the lease is given up with it."""
        self._own(record.rep_id)
        return self._store.close_cycle(
            record, error=error, next_due=next_due, ran=ran, fence=self.fence
        )

    def clear_rep(self, rep_id: str) -> None:
        self._store.clear_rep(rep_id, self._own(rep_id))


__all__ = ["FencedState", "LeaseLost", "LeaseMixin"]
