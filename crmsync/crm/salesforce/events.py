"""One rep's Salesforce events as a sync side (`ItemSide`): single events and series.

An item is either one Event row (its id) or a Lightning series (a `series_key`: all its
occurrence rows). Invitees' child copies (``IsChild``) and Classic recurring events
(``IsRecurrence``, which Lightning Sync does not sync either) are left out. A series is
created by posting its first occurrence with the pattern; Salesforce generates the other
occurrences, then cancelled ones are deleted and changed ones updated. A series whose
pattern changes is deleted and created again, with a new item id (Salesforce would
regenerate its rows anyway). Single events are written up to 200 per collection call
(`create_many` ...). With ``auto_relate``, events written from the mail server are
related to their people (`crmsync.crm.salesforce.relations`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.batched_side import BatchedSide
from crmsync.crm.salesforce.errors import EntityIsDeleted
from crmsync.crm.salesforce.event_map import event_fields, row_event
from crmsync.crm.salesforce.feed import owned_rows
from crmsync.crm.salesforce.markers import marker_of, marker_value
from crmsync.crm.salesforce.query import (
    datetime_literal,
    in_groups,
    plain,
    query,
    quote,
    quote_list,
)
from crmsync.crm.salesforce.relations import relate
from crmsync.crm.salesforce.series import (
    parse_series_key,
    row_updates,
    same_pattern,
    same_value,
    series_key,
    series_view,
)
from crmsync.crm.salesforce.versions import (
    cursor_watermark,
    older_than,
    parse_instant,
    row_version,
    rows_version,
)
from crmsync.domain.records import Event, Record
from crmsync.domain.sync import (
    Changes,
    ErrorType,
    ItemProblem,
    RejectedWrite,
    Seen,
    SyncError,
    VersionConflict,
    Written,
)

if TYPE_CHECKING:
    from crmsync.crm.salesforce.crm import SalesforceCrm

Row = Mapping[str, Any]
# Invitees' copies are the organiser's event seen from elsewhere: never read.
SYNCED_EVENTS = "IsChild = false"
CLASSIC_SERIES = (
    "Event series created in Salesforce Classic don't sync (as in Lightning Sync); "
    "recreate the series in Lightning Experience to sync it"
)


class EventSide(BatchedSide):
    """The events ``rep_id`` owns. Satisfies `crmsync.engine.ports.ItemSide`."""

    def __init__(self, crm: SalesforceCrm, rep_id: str, *, auto_relate: bool = False) -> None:
        self.crm = crm
        self.conn = crm.conn
        self.rep_id = rep_id
        self.auto_relate = auto_relate

    def __repr__(self) -> str:
        return f"EventSide({self.conn.config.base_url}, rep={self.rep_id!r})"

    @property
    def _zone(self) -> str:
        return self.crm.time_zone_of(self.rep_id)

    def _fields(self) -> list[str]:
        return self.crm.event_fields()

    # ---------------------------------------------------------------- reading

    def _synced(self, row: Row) -> bool:
        """The rep's live rows, less the occurrences of Classic series (their master
        stands for them, left out with the reason)."""
        return (
            not row.get("IsDeleted")
            and not row.get("IsChild")
            and (bool(row.get("IsRecurrence")) or not row.get("RecurrenceActivityId"))
            and row.get("OwnerId") == self.rep_id
        )

    def _seen_items(self, rows: Iterable[Row]) -> list[Seen]:
        singles, series = [], defaultdict(list)
        for row in rows:
            key = series_key(row)
            if row.get("IsRecurrence"):
                singles.append(Seen(str(row["Id"]), row_version(row), None, note=CLASSIC_SERIES))
            elif key is None:
                singles.append(self._seen_single(row))
            else:
                series[key].append(row)
        return singles + [self._seen_series(key, group) for key, group in series.items()]

    def _marker(self, rows: Iterable[Row]) -> str | None:
        for row in rows:
            found = marker_of(self.rep_id, row.get(self.crm.marker_field))
            if found is not None:
                return found
        return None

    def _problem(self, item_id: str, exc: Exception) -> ItemProblem:
        return ItemProblem(
            ErrorType.MALFORMED_ITEM,
            f"event {item_id} cannot be read: {exc}",
            "Check the event's dates (and its series pattern) in Salesforce.",
        )

    def _seen_single(self, row: Row) -> Seen:
        item_id, version = str(row["Id"]), row_version(row)
        marker = self._marker([row])
        try:
            return Seen(item_id, version, row_event(row, self._zone), marker)
        except (ValueError, TypeError, KeyError) as exc:
            return Seen(item_id, version, None, marker, self._problem(item_id, exc))

    def _seen_series(self, key: str, rows: Sequence[Row]) -> Seen:
        version, marker = rows_version(rows), self._marker(rows)
        try:
            return Seen(key, version, series_view(rows, self._zone).event, marker)
        except (ValueError, TypeError, KeyError) as exc:
            return Seen(key, version, None, marker, self._problem(key, exc))

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        feed = self.crm.feed("Event")
        since = cursor_watermark(cursor)
        if since is None or self.crm.too_old(feed, since):
            return self._full(known)
        piece = feed.since(since)
        singles: list[Row] = []
        touched: set[str] = set()
        deleted: list[str] = []
        for row in piece.rows:
            key = series_key(row)
            if key is not None:
                if row.get("OwnerId") == self.rep_id or key in known:
                    touched.add(key)
            elif older_than(row, known.get(str(row["Id"]))):
                continue  # polled before our own write of it
            elif self._synced(row):
                singles.append(row)
            elif str(row["Id"]) in known:
                deleted.append(str(row["Id"]))
        items = [s for s in self._seen_items(singles) if known.get(s.id) != s.version]
        for key in sorted(touched):
            rows = self._series_rows(key)
            if rows:
                seen = self._seen_series(key, rows)
                if known.get(key) != seen.version:
                    items.append(seen)
            elif key in known:
                deleted.append(key)
        return Changes(tuple(items), tuple(deleted), cursor=piece.cursor)

    def _full(self, known: Mapping[str, str]) -> Changes:
        cursor = self.crm.feed("Event").head()
        where = f"OwnerId = {quote(self.rep_id)} AND {SYNCED_EVENTS}"
        rows = owned_rows(self.conn, "Event", self._fields(), where)
        seen = self._seen_items(r for r in rows if self._synced(r))
        present = {s.id for s in seen}
        items = tuple(s for s in seen if known.get(s.id) != s.version)
        deleted = tuple(sorted(i for i in known if i not in present))
        return Changes(items, deleted, cursor=cursor, full=True)

    def _rows(self, condition: str) -> list[Row]:
        where = f"{condition} AND OwnerId = {quote(self.rep_id)} AND {SYNCED_EVENTS}"
        soql = f"SELECT {', '.join(self._fields())} FROM Event WHERE {where} ORDER BY Id"
        return [r for r in (plain(x) for x in query(self.conn, soql)) if self._synced(r)]

    def _series_rows(self, key: str) -> list[Row]:
        parsed = parse_series_key(key)
        if parsed is None or parsed[0] != self.rep_id:
            return []
        start = parsed[1]
        instant = parse_instant(start) if "T" in start else None
        literal = datetime_literal(instant) if instant is not None else start
        rows = self._rows(f"IsRecurrence2 = true AND Recurrence2PatternStartDate = {literal}")
        return [r for r in rows if series_key(r) == key]

    def _item_rows(self, item_id: str) -> list[Row]:
        if parse_series_key(item_id) is not None:
            return self._series_rows(item_id)
        rows = self._rows(f"Id = {quote(item_id)}")
        # An occurrence id is not an item of ours: its series is.
        return [r for r in rows if series_key(r) is None]

    def _seen_of(self, item_id: str, rows: Sequence[Row]) -> Seen:
        if parse_series_key(item_id) is not None:
            return self._seen_series(item_id, rows)
        return self._seen_single(rows[0])

    def fetch(self, item_id: str) -> Seen | None:
        rows = self._item_rows(item_id)
        return self._seen_of(item_id, rows) if rows else None

    # ---------------------------------------------------------------- writing

    def _written(self, seen: Seen) -> Written:
        if seen.record is None:
            assert seen.problem is not None
            raise RejectedWrite(seen.problem.message, seen.problem.suggestion)
        return Written(seen.id, seen.version, seen.record)

    def _by_marker(self, key: str) -> Seen | None:
        rows = self._rows(f"{self.crm.marker_field} = {quote(key)}")
        if not rows:
            return None
        items = self._seen_items(rows)
        return items[0]

    def _create_series(self, event: Event, key: str) -> Written:
        """Post the first occurrence with the pattern; Salesforce makes the others, then
        cancelled ones are deleted and changed ones updated."""
        assert event.recurrence is not None
        if event.recurrence.rdates:
            raise RejectedWrite(
                "the series has extra dates (RDATE), which a Salesforce series cannot hold",
                "Turn the extra dates into events of their own on the mail server.",
            )
        fields = {**event_fields(event), "OwnerId": self.rep_id, self.crm.marker_field: key}
        fields["Recurrence2PatternText"] = "RRULE:" + event.recurrence.rule
        (result,) = collections.create(self.conn, "Event", [fields])
        if result.error is not None:
            raise result.error
        created = self._by_marker(key)
        if created is None:
            raise VersionConflict("the new series vanished", "The next cycle decides again.")
        self._edit_series(created.id, event)
        self._relate(created.id, event)
        return self._reread(created.id)

    def _reread(self, item_id: str) -> Written:
        seen = self.fetch(item_id)
        if seen is None:
            raise VersionConflict(
                f"event {item_id} vanished right after it was written",
                "Someone deleted it in Salesforce; the next cycle decides again.",
            )
        return self._written(seen)

    def _edit_series(self, key: str, event: Event) -> None:
        rows = self._series_rows(key)
        view = series_view(rows, self._zone)
        first = view.rows_by_slot.get(view.slots[0].isoformat()) if view.slots else None
        updates, deletions = row_updates(view, event)
        if first is not None and str(first["Id"]) in deletions:
            raise RejectedWrite(
                "the series' first occurrence is cancelled; deleting it deletes the whole "
                "series in Salesforce",
                "Start the series on the mail server at its first occurrence that takes place.",
            )
        self._apply(updates, deletions)

    def _apply(self, updates: list[dict[str, Any]], deletions: list[str]) -> None:
        failures: list[SyncError] = []
        if deletions:
            for result in collections.delete(self.conn, deletions):
                if result.error is not None and not isinstance(result.error, EntityIsDeleted):
                    failures.append(result.error)
        if updates:
            failures += [
                r.error for r in collections.update(self.conn, "Event", updates) if r.error
            ]
        if failures:
            raise failures[0]

    def _current(self, item_id: str, version: str) -> list[Row]:
        return self._checked(item_id, version, self._item_rows(item_id))

    def _checked(self, item_id: str, version: str, rows: Sequence[Row]) -> Sequence[Row]:
        """``rows`` (the item's) when they are still at ``version``."""
        if not rows:
            raise VersionConflict(
                f"event {item_id} is gone from Salesforce (or now someone else's)",
                "The next cycle decides again.",
            )
        if self._seen_of(item_id, rows).version != version:
            raise VersionConflict(
                f"event {item_id} changed in Salesforce since it was read",
                "The event changed in the CRM; the next cycle merges it.",
            )
        return rows

    def _update_series(self, item_id: str, version: str, event: Event) -> Written:
        """A series edited in place when its pattern stays; otherwise (a new pattern, a
        single event turned series, or back) deleted and created anew."""
        rows = self._current(item_id, version)
        if parse_series_key(item_id) is None or not same_pattern(
            series_view(rows, self._zone), event
        ):
            return self._recreate(rows, event)
        self._edit_series(item_id, event)
        self._relate(item_id, event)
        return self._reread(item_id)

    def _recreate(self, rows: Sequence[Row], record: Event) -> Written:
        """A new pattern (or a single event turned series, or back): delete, create anew."""
        marker = self._marker(rows) or f"recreated-{rows[0]['Id']}"
        self._delete_rows(rows)
        return self.create(record, marker)

    def _delete_rows(self, rows: Sequence[Row]) -> None:
        self._apply([], [str(r["Id"]) for r in rows])

    def _relate(self, item_id: str, record: Event) -> None:
        if self.auto_relate:
            relate(self.crm, [([str(r["Id"]) for r in self._item_rows(item_id)], record)])

    # ---------------------------------------------------------------- many at once

    # `crmsync.engine.ports.BatchWrites`: single events take a few queries and one
    # collection call per 200, whatever their number; series (a handful of rows each,
    # regenerated by Salesforce) are written one at a time.

    def _rows_in(self, field: str, values: Sequence[str]) -> dict[str, list[Row]]:
        """The rep's synced rows whose ``field`` is one of ``values``, by that value."""
        found: dict[str, list[Row]] = defaultdict(list)
        for group in in_groups(list(dict.fromkeys(values))):
            for row in self._rows(f"{field} IN {quote_list(group)}"):
                found[str(row.get(field))].append(row)
        return found

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        """Create each event stamped with its marker: one query finds those a crashed
        create already made, one collection call per 200 creates the single ones, one
        query reads them back."""
        outcomes: list[Written | SyncError | None] = [None] * len(items)
        keys = [marker_value(self.rep_id, marker) for _, marker in items]
        existing = self._rows_in(self.crm.marker_field, keys)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, (record, _) in enumerate(items):
            event = _event(record)
            rows = existing.get(keys[index])
            try:
                if rows:
                    outcomes[index] = self._written(self._seen_items(rows)[0])
                elif event.recurrence is not None:
                    outcomes[index] = self._create_series(event, keys[index])
                else:
                    fields = {**event_fields(event), "OwnerId": self.rep_id}
                    pending.append((index, {**fields, self.crm.marker_field: keys[index]}))
            except SyncError as failure:
                outcomes[index] = failure
        results = collections.create(self.conn, "Event", [fields for _, fields in pending])
        written = {}
        for (index, _), result in zip(pending, results, strict=True):
            if result.error is not None:
                outcomes[index] = result.error
            else:
                written[index] = str(result.id)
        return self._read_back([record for record, _ in items], written, outcomes)

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        """Update each single event whose version is still the one given (one query), the
        fields that changed only: one collection call per 200, one query reads them back."""
        outcomes: list[Written | SyncError | None] = [None] * len(items)
        singles = [i for i, _, _ in items if parse_series_key(i) is None]
        rows = self._rows_in("Id", singles)
        pending: list[tuple[int, dict[str, Any]]] = []
        written = {}
        for index, (item_id, version, record) in enumerate(items):
            event = _event(record)
            found = [r for r in rows.get(item_id, []) if series_key(r) is None]
            try:
                if parse_series_key(item_id) is not None or event.recurrence is not None:
                    outcomes[index] = self._update_series(item_id, version, event)
                    continue
                (row,) = self._checked(item_id, version, found)
                wanted = event_fields(event)
                changed = {k: v for k, v in wanted.items() if not same_value(k, row.get(k), v)}
            except SyncError as failure:
                outcomes[index] = failure
                continue
            written[index] = item_id
            if changed:  # what Salesforce cannot hold (attendees ...) costs no write
                pending.append((index, {"Id": item_id, **changed}))
        results = collections.update(self.conn, "Event", [fields for _, fields in pending])
        for (index, _), result in zip(pending, results, strict=True):
            if result.error is not None:
                outcomes[index] = result.error
                del written[index]
        return self._read_back([record for _, _, record in items], written, outcomes)

    def delete_many(self, items: Sequence[tuple[str, str]]) -> list[SyncError | None]:
        """Delete each event (a series: all its rows) whose version is still the one
        given: one query for the single ones, one collection call per 200 rows."""
        outcomes: list[SyncError | None] = [None] * len(items)
        rows = self._rows_in("Id", [i for i, _ in items if parse_series_key(i) is None])
        doomed: dict[str, int] = {}
        for index, (item_id, version) in enumerate(items):
            if parse_series_key(item_id) is not None:
                found = self._series_rows(item_id)
            else:
                found = [r for r in rows.get(item_id, []) if series_key(r) is None]
            if not found:
                continue  # already gone
            try:
                self._checked(item_id, version, found)
            except SyncError as failure:
                outcomes[index] = failure
                continue
            doomed.update((str(r["Id"]), index) for r in found)
        for row_id, result in zip(doomed, collections.delete(self.conn, list(doomed)), strict=True):
            if result.error is not None and not isinstance(result.error, EntityIsDeleted):
                outcomes[doomed[row_id]] = result.error
        return outcomes

    def _read_back(
        self,
        records: Sequence[Record],
        written: dict[int, str],
        outcomes: list[Written | SyncError | None],
    ) -> list[Written | SyncError]:
        """``outcomes`` completed with the single events written (index → row id): related
        to their people (with auto-relate), then read as they are now."""
        if self.auto_relate:
            relate(self.crm, [([written[i]], _event(records[i])) for i in written])
        rows = self._rows_in("Id", list(written.values()))
        for index, row_id in written.items():
            found = rows.get(row_id)
            if not found:
                outcomes[index] = VersionConflict(
                    f"event {row_id} vanished right after it was written",
                    "Someone deleted it in Salesforce; the next cycle decides again.",
                )
                continue
            try:
                outcomes[index] = self._written(self._seen_single(found[0]))
            except SyncError as failure:
                outcomes[index] = failure
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]


def _event(record: Record) -> Event:
    if not isinstance(record, Event):
        raise TypeError(f"an event side cannot store a {type(record).__name__}")
    return record


def without_relations(event: Event) -> Event:
    """What Salesforce keeps of an event written to it: no attendees, organiser or
    categories (they live elsewhere in Salesforce, or nowhere)."""
    return dataclasses.replace(event, attendees=(), organizer="", categories=())
