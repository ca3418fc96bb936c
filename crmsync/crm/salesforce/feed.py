"""The org's change feed: one watermark query per object per interval, shared by all reps.

Salesforce counts API calls per org per day, so reps are not polled one by one (DESIGN:
Metered CRMs). `ObjectFeed` asks ``/queryAll`` for every row of one object whose
``SystemModstamp`` (never ``LastModifiedDate``, which users with "Set Audit Fields" can
write) is at or after its watermark; ``queryAll`` returns deleted rows too, flagged
``IsDeleted``, so one call per interval finds both edits and deletions. The rows are kept
for `retention` and handed to each rep's cycle, which keeps the ones it owns.

Cursors name a watermark. Rows are re-read from ``overlap`` before it, because a row's
``SystemModstamp`` is taken when its transaction starts and a long transaction commits
after rows stamped later; reading a row twice is harmless (versions tell). A cursor older
than the kept rows makes the feed read the missing stretch once, for everyone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import email.utils
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.query import datetime_literal, plain, query, query_all
from crmsync.crm.salesforce.versions import cursor_text, parse_instant

Row = dict[str, Any]


@dataclass(frozen=True)
class FeedSlice:
    """Rows changed (or deleted) at or after a cursor, the latest state of each, and the
    cursor to ask from next time."""

    rows: tuple[Row, ...]
    cursor: str


class ObjectFeed:
    """One object's changes across the org.

    ``fields`` is called for the field list at each query (describe decides it);
    ``where`` is an extra SOQL condition (e.g. leave out invitees' child events).
    ``interval`` is how long one poll's answer serves every rep; ``clock`` is monotonic.
    """

    def __init__(
        self,
        conn: SalesforceConnection,
        sobject: str,
        fields: Callable[[], list[str]],
        *,
        where: str = "",
        interval: float = 60.0,
        overlap: dt.timedelta = dt.timedelta(minutes=5),
        retention: dt.timedelta = dt.timedelta(days=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.sobject = sobject
        self.fields = fields
        self.where = where
        self.interval = interval
        self.overlap = overlap
        self.retention = retention
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, Row] = {}
        self._order: list[tuple[dt.datetime, str]] = []  # (modstamp, id), may hold stale pairs
        self._start: dt.datetime | None = None  # rows at or after this are all kept
        self._end: dt.datetime | None = None  # the watermark: newest modstamp seen
        self._polled_at: float | None = None
        self.polls = 0

    def __repr__(self) -> str:
        return f"ObjectFeed({self.sobject}, watermark={self._end})"

    # ---------------------------------------------------------------- reading

    def head(self) -> str:
        """The cursor a full listing taken now starts from (it starts the feed if new)."""
        with self._lock:
            self._ensure_started()
            assert self._end is not None
            return cursor_text(self._end)

    def watermark(self) -> dt.datetime | None:
        return self._end

    def since(self, since: dt.datetime) -> FeedSlice:
        """Rows changed at or after ``since`` (less the overlap), polling Salesforce first
        if the last poll is older than the interval."""
        with self._lock:
            self._ensure_started()
            due = self._polled_at is None or self.clock() - self._polled_at >= self.interval
            if due:
                self._poll()
            assert self._start is not None and self._end is not None
            floor = since - self.overlap
            if floor < self._start:
                self._backfill(floor)
            at = bisect.bisect_left(self._order, (floor, ""))
            seen: dict[str, Row] = {}
            for stamp, row_id in self._order[at:]:
                row = self._rows.get(row_id)
                if row is not None and _stamp(row) == stamp:
                    seen[row_id] = row
            return FeedSlice(tuple(seen.values()), cursor_text(self._end))

    # ---------------------------------------------------------------- polling

    def _select(self) -> str:
        return ", ".join(dict.fromkeys(self.fields()))

    def _condition(self, extra: str) -> str:
        parts = [p for p in (self.where, extra) if p]
        return " AND ".join(parts)

    def _ensure_started(self) -> None:
        if self._end is not None:
            return
        # The newest stamp of the object is where the feed starts; a full listing taken
        # after this sees everything older. An object without rows starts at the
        # server's clock (its Date header), never at ours.
        where = self._condition("")
        soql = (
            f"SELECT Id, SystemModstamp FROM {self.sobject}"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY SystemModstamp DESC LIMIT 1"
        )
        answer = self.conn.get("queryAll/", params={"q": soql}, what=f"the head of {self.sobject}")
        records = answer.body.get("records") if isinstance(answer.body, dict) else None
        newest = parse_instant(records[0].get("SystemModstamp")) if records else None
        head = newest or _server_time(answer.headers.get("Date"))
        self._start = self._end = head
        self._polled_at = self.clock()
        self.polls += 1

    def _read(self, condition: str) -> list[Row]:
        where = self._condition(condition)
        soql = (
            f"SELECT {self._select()} FROM {self.sobject} WHERE {where} ORDER BY SystemModstamp, Id"
        )
        return [plain(r) for r in query_all(self.conn, soql)]

    def _poll(self) -> None:
        assert self._end is not None and self._start is not None
        floor = self._end - self.overlap
        rows = self._read(f"SystemModstamp >= {datetime_literal(floor)}")
        self._polled_at = self.clock()
        self.polls += 1
        # Everything stamped since the floor is now kept.
        self._start = min(self._start, floor)
        self._keep(rows)
        self._prune()

    def _backfill(self, floor: dt.datetime) -> None:
        assert self._start is not None
        rows = self._read(
            f"SystemModstamp >= {datetime_literal(floor)} AND "
            f"SystemModstamp <= {datetime_literal(self._start + self.overlap)}"
        )
        self.polls += 1
        self._keep(rows)
        self._start = floor

    def _keep(self, rows: list[Row]) -> None:
        added = False
        for row in rows:
            stamp = _stamp(row)
            have = self._rows.get(row["Id"])
            if have is not None and _stamp(have) > stamp:
                continue
            self._rows[row["Id"]] = row
            self._order.append((stamp, row["Id"]))
            added = True
            if self._end is None or stamp > self._end:
                self._end = stamp
        if added:
            self._order.sort()

    def _prune(self) -> None:
        assert self._end is not None and self._start is not None
        horizon = self._end - self.retention
        if self._start >= horizon:
            return
        cut = bisect.bisect_left(self._order, (horizon, ""))
        for stamp, row_id in self._order[:cut]:
            row = self._rows.get(row_id)
            if row is not None and _stamp(row) == stamp:
                del self._rows[row_id]
        del self._order[:cut]
        self._start = horizon


def _server_time(header: str | None) -> dt.datetime:
    try:
        return email.utils.parsedate_to_datetime(header or "").astimezone(dt.UTC)
    except (TypeError, ValueError):
        return dt.datetime.now(dt.UTC)  # no usable Date header: ours, less the overlap


def _stamp(row: Row) -> dt.datetime:
    value = parse_instant(row.get("SystemModstamp"))
    assert value is not None
    return value


def owned_rows(
    conn: SalesforceConnection, sobject: str, fields: list[str], where: str
) -> list[Row]:
    """Every row of ``sobject`` matching ``where`` (a full listing, for one rep)."""
    soql = f"SELECT {', '.join(dict.fromkeys(fields))} FROM {sobject} WHERE {where} ORDER BY Id"
    return [plain(r) for r in query(conn, soql)]
