"""The error report (the spec's Lightning Sync Error object): one row per failure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, Select, and_, case, delete, func, insert, select, update

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorEntry, ErrorType
from crmsync.store import schema
from crmsync.store.database import Fence, StoreBase

_E = schema.errors
_R = schema.reps


class ErrorSort(StrEnum):
    """What the error report can be sorted by; ties fall back to the time, then insertion."""

    TIME = "at"
    REP = "rep_id"
    KIND = "kind"
    ERROR_TYPE = "error_type"
    OPERATION = "operation"


@dataclass(frozen=True)
class RepErrors:
    """A rep's rows in the error report, and what its latest cycle left failing."""

    total: int = 0
    # Items that failed in the rep's latest cycle (rows about one item, that cycle's).
    failing_items: int = 0
    # Deletions the mass-delete guard held back in the latest cycle (0: none).
    held_deletes: bool = False
    # An admin confirmed the held-back deletions; the next cycle carries them out.
    deletes_confirmed: bool = False


class ErrorReportMixin(StoreBase):
    """Recording, querying and pruning error report rows."""

    def record_error(self, entry: ErrorEntry) -> None:
        """Append ``entry`` to the error report."""
        self._record_error(entry, None)

    def errors(
        self,
        *,
        rep_id: str | None = None,
        kind: ItemKind | None = None,
        error_type: ErrorType | None = None,
        since: dt.datetime | None = None,
        sort: ErrorSort = ErrorSort.TIME,
        descending: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ErrorEntry]:
        """Rows matching every given filter (``since`` inclusive), sorted, paged."""
        stmt = _sorted(_filtered(select(_E), rep_id, kind, error_type, since), sort, descending)
        with self._read() as conn:
            rows = conn.execute(stmt.limit(limit).offset(offset)).all()
        return [_entry(r) for r in rows]

    def each_error(
        self,
        *,
        rep_id: str | None = None,
        kind: ItemKind | None = None,
        error_type: ErrorType | None = None,
        since: dt.datetime | None = None,
        sort: ErrorSort = ErrorSort.TIME,
        descending: bool = True,
        chunk: int = 500,
    ) -> Iterator[ErrorEntry]:
        """Every row `errors` would return without a limit, read ``chunk`` rows at a time:
        an export of any size holds only the matching rows' ids at once. The order is
        fixed when the ids are read; a row deleted since (retention) is left out."""
        stmt = _sorted(
            _filtered(select(_E.c.id), rep_id, kind, error_type, since), sort, descending
        )
        with self._read() as conn:
            ids = list(conn.execute(stmt).scalars())
        for start in range(0, len(ids), chunk):
            wanted = ids[start : start + chunk]
            with self._read() as conn:
                rows = {r.id: r for r in conn.execute(select(_E).where(_E.c.id.in_(wanted)))}
            yield from (_entry(rows[i]) for i in wanted if i in rows)

    def error_totals(
        self,
        *,
        rep_id: str | None = None,
        kind: ItemKind | None = None,
        error_type: ErrorType | None = None,
        since: dt.datetime | None = None,
    ) -> tuple[int, dict[str, int], dict[ErrorType, int]]:
        """How many rows match the filters: in all, by rep id and by error type."""
        by: dict[str, Any] = {"rep_id": {}, "error_type": {}}
        with self._read() as conn:
            for column in by:
                stmt = select(_E.c[column], func.count()).group_by(_E.c[column])
                for key, count in conn.execute(_filtered(stmt, rep_id, kind, error_type, since)):
                    by[column][key] = count
        by_type = {ErrorType(key): count for key, count in by["error_type"].items()}
        return sum(by["rep_id"].values()), by["rep_id"], by_type

    def rep_errors(self, rep_id: str | None = None) -> dict[str, RepErrors]:
        """Per rep id (reps with rows only; only ``rep_id``'s if given): its rows, and
        what its latest cycle left failing (rows recorded since that cycle started)."""
        latest = _E.c.at >= _R.c.last_cycle_started
        held = and_(latest, _E.c.error_type == ErrorType.MASS_DELETE.value)
        failing = and_(
            latest, _E.c.item_id.is_not(None), _E.c.error_type != ErrorType.MASS_DELETE.value
        )
        stmt = (
            select(
                _E.c.rep_id,
                func.count(),
                func.sum(case((failing, 1), else_=0)),
                func.max(case((held, _E.c.at), else_=None)),
                func.max(_R.c.deletes_confirmed_at),
            )
            .select_from(_E.outerjoin(_R, _R.c.rep_id == _E.c.rep_id))
            .group_by(_E.c.rep_id)
        )
        if rep_id is not None:
            stmt = stmt.where(_E.c.rep_id == rep_id)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return {
            rep_id: RepErrors(
                total=total,
                failing_items=int(failing_count or 0),
                held_deletes=held_at is not None,
                deletes_confirmed=held_at is not None and confirmed is not None,
            )
            for rep_id, total, failing_count, held_at, confirmed in rows
        }

    def prune_errors(self, older_than: dt.datetime) -> int:
        """Delete rows recorded before ``older_than`` (retention); returns how many."""
        with self._write() as conn:
            return conn.execute(delete(_E).where(_E.c.at < older_than)).rowcount

    def _record_error(self, entry: ErrorEntry, fence: Fence | None) -> None:
        """Insert the row, or count one more occurrence of the same failure (same rep,
        kind, item, operation, type and message) and move its time to the latest."""
        kind = entry.kind.value if entry.kind is not None else None
        same = [
            _E.c.rep_id == entry.rep_id,
            _E.c.kind.is_(None) if kind is None else _E.c.kind == kind,
            _E.c.item_id.is_(None) if entry.item_id is None else _E.c.item_id == entry.item_id,
            _E.c.operation == entry.operation,
            _E.c.error_type == entry.error_type.value,
            _E.c.message == entry.message,
        ]
        with self._write(fence) as conn:
            existing = conn.execute(
                select(_E.c.id, _E.c.at, _E.c.first_at).where(*same).order_by(_E.c.id.desc())
            ).first()
            if existing is not None:
                conn.execute(
                    update(_E)
                    .where(_E.c.id == existing.id)
                    .values(
                        at=entry.at,
                        first_at=existing.first_at or existing.at,
                        occurrences=_E.c.occurrences + 1,
                        suggestion=entry.suggestion,
                    )
                )
                return
            conn.execute(
                insert(_E).values(
                    rep_id=entry.rep_id,
                    kind=kind,
                    item_id=entry.item_id,
                    operation=entry.operation,
                    error_type=entry.error_type.value,
                    message=entry.message,
                    suggestion=entry.suggestion,
                    at=entry.at,
                    first_at=entry.at,
                    occurrences=1,
                )
            )


def _sorted(stmt: Select[Any], sort: ErrorSort, descending: bool) -> Select[Any]:
    keys = [_E.c[sort.value], _E.c.at, _E.c.id]
    # NULLS LAST on both databases (they disagree by default) for the nullable kind.
    return stmt.order_by(*((k.desc() if descending else k.asc()).nulls_last() for k in keys))


def _entry(r: Row[Any]) -> ErrorEntry:
    return ErrorEntry(
        rep_id=r.rep_id,
        kind=ItemKind(r.kind) if r.kind is not None else None,
        item_id=r.item_id,
        operation=r.operation,
        error_type=ErrorType(r.error_type),
        message=r.message,
        suggestion=r.suggestion,
        at=r.at,
        occurrences=r.occurrences,
        first_at=(r.first_at or r.at) if r.occurrences > 1 else None,
    )


def _filtered(
    stmt: Select[Any],
    rep_id: str | None,
    kind: ItemKind | None,
    error_type: ErrorType | None,
    since: dt.datetime | None,
) -> Select[Any]:
    if rep_id is not None:
        stmt = stmt.where(_E.c.rep_id == rep_id)
    if kind is not None:
        stmt = stmt.where(_E.c.kind == kind.value)
    if error_type is not None:
        stmt = stmt.where(_E.c.error_type == error_type.value)
    if since is not None:
        stmt = stmt.where(_E.c.at >= since)
    return stmt
