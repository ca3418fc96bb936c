"""Activity counters for the org status tables (the spec's tables 2 and 3).

Records synced are counted per item kind in one-hour buckets (UTC), so the table stays
small: a window query counts every bucket the window touches, i.e. "the last 60 minutes"
may include up to one hour more activity. The latest sync instant is kept exactly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.sql.expression import Executable

from crmsync.domain.records import ItemKind
from crmsync.store import schema
from crmsync.store.database import StoreBase, upsert_once

_A = schema.activity


def hour_of(at: dt.datetime) -> dt.datetime:
    """The start of the UTC hour bucket holding ``at``."""
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def add_synced(conn: Connection, kind: ItemKind, count: int, at: dt.datetime) -> None:
    """`ActivityMixin.record_synced` in ``conn``'s transaction."""
    values = {"kind": kind.value, "hour": hour_of(at), "count": count, "last_at": at}
    conn.execute(upsert_once(conn, _A, _adding), values)


def _adding(ins: Any, dialect: str) -> Executable:
    """The activity upsert: a row's count adds to its hour's."""
    return ins.on_conflict_do_update(
        index_elements=["kind", "hour"],
        set_={
            "count": _A.c.count + ins.excluded.count,
            # Late reports (an ``at`` in the past) must not move it backwards.
            "last_at": func.max(_A.c.last_at, ins.excluded.last_at)
            if dialect == "sqlite"
            else func.greatest(_A.c.last_at, ins.excluded.last_at),
        },
    )


class ActivityMixin(StoreBase):
    """Counting synced records and reading them back per window."""

    def record_synced(self, kind: ItemKind, count: int = 1, at: dt.datetime | None = None) -> None:
        """Add ``count`` records of ``kind`` synced at ``at`` (default: now)."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._write() as conn:
            add_synced(conn, kind, count, at or self._clock())

    def synced_since(self, kind: ItemKind, since: dt.datetime) -> int:
        """Records of ``kind`` synced in the hour buckets from the one holding ``since``."""
        stmt = select(func.coalesce(func.sum(_A.c.count), 0)).where(
            _A.c.kind == kind.value, _A.c.hour >= hour_of(since)
        )
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def last_activity(self, kind: ItemKind) -> dt.datetime | None:
        """When records of ``kind`` were last synced, or ``None`` if never."""
        stmt = select(func.max(_A.c.last_at)).where(_A.c.kind == kind.value)
        with self._read() as conn:
            value = conn.execute(stmt).scalar_one()
        # Aggregates lose the column type on SQLite; normalise like `UTCDateTime` does.
        return _as_utc(value)

    def hourly_synced(
        self, kind: ItemKind, now: dt.datetime | None = None, hours: int = 24
    ) -> list[tuple[dt.datetime, int]]:
        """``hours`` buckets ending with the current one, oldest first, zeros included."""
        last = hour_of(now or self._clock())
        first = last - dt.timedelta(hours=hours - 1)
        stmt = select(_A.c.hour, _A.c.count).where(
            _A.c.kind == kind.value, _A.c.hour >= first, _A.c.hour <= last
        )
        with self._read() as conn:
            found = {hour: n for hour, n in conn.execute(stmt)}
        buckets = (first + dt.timedelta(hours=i) for i in range(hours))
        return [(b, found.get(b, 0)) for b in buckets]

    def prune_activity(self, older_than: dt.datetime) -> int:
        """Delete buckets that ended before ``older_than``; returns how many."""
        with self._write() as conn:
            stmt = delete(_A).where(_A.c.hour < hour_of(older_than))
            return conn.execute(stmt).rowcount


def _as_utc(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
