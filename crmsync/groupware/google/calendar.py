"""`GoogleEvents`: a rep's primary Google calendar as an ``ItemSide``.

Ids are event ids; a series is one item, its master's id, folding in its exception events
(moved, changed and cancelled occurrences). A version is the event's etag, and for a
series with exceptions the master's etag plus a digest of the exceptions' etags, so an
occurrence moved in Google Calendar changes its series' version. Cursors are sync tokens.

- Listing: ``events.list`` with ``singleEvents=false``; incrementally with the sync token,
  where a changed exception names its series (``recurringEventId``) and the series is read
  again (by ``iCalUID``). A 410 falls back to a full listing compared with ``known`` by
  version, so nothing is created again: the engine reconciles through its links.
- Creating: the id is chosen from the marker (`event_ids`), so a create repeated after a
  crash answers 409 and the event already there is returned; the marker also sits in
  ``extendedProperties.private``. A deleted event keeps its id: crmsync restores it, or
  moves to the next id generation if Google will not.
- Writing: PATCH with ``If-Match`` and only the changed slots; ``sendUpdates=none`` unless
  the admin turned on notifying attendees. A meeting someone else organises is changed
  only in the rep's private slots (colour, crmsync's properties), never deleted
  (`NotOrganizer`): Google would refuse, or tell the organiser the rep left.
- Occurrences: cancelled ones are written as EXDATE lines on the master; overridden ones
  as PATCHes of the instance found by ``originalStart``.

Left out (as a rule, not an error): working-location and birthday entries, which are not
meetings. An invitation to one occurrence of someone else's series (an exception whose
master is not in this calendar) is an event of its own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.domain.mail_text import without_control_characters
from crmsync.domain.records import Event, Occurrence, Record
from crmsync.domain.sync import (
    Changes,
    RejectedWrite,
    Seen,
    VersionConflict,
    Written,
)
from crmsync.groupware.google import event_api as api
from crmsync.groupware.google import markers
from crmsync.groupware.google.connection import Answer, GoogleConnection
from crmsync.groupware.google.errors import NotOrganizer
from crmsync.groupware.google.event_ids import GENERATIONS, event_id
from crmsync.groupware.google.event_map import (
    NO_CATEGORY_COLOR,
    PRIVATE_SLOTS,
    Categories,
    MalformedEvent,
    event_body,
    event_slots,
    instant_key,
    organizer_is_self,
    read_event,
)
from crmsync.groupware.google.times import rfc3339, when_json
from crmsync.groupware.recent_items import RecentItems

log = logging.getLogger(__name__)

LEFT_OUT_TYPES = {
    "workingLocation": "a working-location entry is not a meeting",
    "birthday": "a birthday from Google Contacts is not a meeting",
}
Series = tuple[dict[str, Any], list[dict[str, Any]]]  # master, its exception events


def series_version(master: Mapping[str, Any], exceptions: Sequence[Mapping[str, Any]]) -> str:
    etag = str(master.get("etag") or "")
    if not exceptions:
        return etag
    parts = sorted(f"{e.get('id')}={e.get('etag')}" for e in exceptions)
    return etag + "+" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class GoogleEvents:
    """The rep's primary calendar."""

    CACHE_SIZE = 2000

    def __init__(
        self,
        connection: GoogleConnection,
        email: str,
        *,
        notify_attendees: bool = False,
        categories: Categories = NO_CATEGORY_COLOR,
        id_salt: str = "",
    ) -> None:
        self.connection = connection
        self.email = email
        self.notify = notify_attendees
        self.cats = categories
        self.id_salt = id_salt
        self._cache: RecentItems[Series] = RecentItems(self.CACHE_SIZE)

    def __repr__(self) -> str:
        return f"GoogleEvents({self.email!r})"

    # ------------------------------------------------------------------ reading

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """See ``ItemSide.changes``: one request per page when nothing changed."""
        if cursor:
            try:
                rows, token = api.list_events(self.connection, self.email, cursor)
            except api.SyncTokenExpired:
                log.info("sync token of %s's calendar expired; listing everything", self.email)
            else:
                return self._incremental(rows, token, known)
        rows, token = api.list_events(self.connection, self.email)
        return self._full(rows, token, known)

    def _full(self, rows: list[dict[str, Any]], token: str, known: Mapping[str, str]) -> Changes:
        masters = {r["id"]: r for r in rows if not r.get("recurringEventId")}
        exceptions: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            parent = row.get("recurringEventId")
            if parent in masters:
                exceptions.setdefault(str(parent), []).append(row)
            elif parent:  # one occurrence of a series that is not in this calendar
                masters[row["id"]] = row
        items = []
        for item_id, master in masters.items():
            if master.get("status") == "cancelled":
                continue
            series = (master, exceptions.get(item_id, []))
            if known.get(item_id) != series_version(*series):
                items.append(self._seen(item_id, series))
        listed = {i for i, m in masters.items() if m.get("status") != "cancelled"}
        deleted = sorted(i for i in known if i not in listed)
        return Changes(tuple(items), tuple(deleted), token, full=True)

    def _incremental(
        self, rows: list[dict[str, Any]], token: str, known: Mapping[str, str]
    ) -> Changes:
        by_id = {r["id"]: r for r in rows}
        touched: dict[str, dict[str, Any] | None] = {}  # series id → its master row if listed
        singles: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        for row in rows:
            parent = row.get("recurringEventId")
            if parent:
                touched.setdefault(str(parent), by_id.get(str(parent)))
            elif row.get("status") == "cancelled":
                if row["id"] in known:
                    deleted.add(row["id"])
            elif row.get("recurrence"):
                touched[row["id"]] = row
            else:
                singles[row["id"]] = row
        items = [
            self._seen(i, (r, []))
            for i, r in singles.items()
            if known.get(i) != series_version(r, [])
        ]
        for series_id, master_row in touched.items():
            if series_id in deleted or (master_row or {}).get("status") == "cancelled":
                continue
            series = self._read_series(series_id, master_row)
            if series is None:
                # The series is gone, or it never was in this calendar: its rows are
                # invitations to single occurrences, each an event of its own.
                if series_id in known:
                    deleted.add(series_id)
                for row in rows:
                    if row.get("recurringEventId") == series_id:
                        if row.get("status") == "cancelled":
                            if row["id"] in known:
                                deleted.add(row["id"])
                        elif known.get(row["id"]) != series_version(row, []):
                            items.append(self._seen(row["id"], (row, [])))
                continue
            if known.get(series_id) != series_version(*series):
                items.append(self._seen(series_id, series))
        return Changes(tuple(items), tuple(sorted(deleted)), token, full=False)

    def _read_series(self, item_id: str, master: dict[str, Any] | None = None) -> Series | None:
        """The live event ``item_id`` with its exceptions, or ``None`` if it is gone."""
        if master is None:
            master = api.get_event(self.connection, self.email, item_id)
        if master is None or master.get("status") == "cancelled":
            self._cache.pop(item_id, None)
            return None
        exceptions: list[dict[str, Any]] = []
        if master.get("recurrence") and master.get("iCalUID"):
            rows = api.series_rows(self.connection, self.email, str(master["iCalUID"]))
            for row in rows:
                if row.get("id") == item_id and row.get("status") != "cancelled":
                    master = row
                elif row.get("recurringEventId") == item_id:
                    exceptions.append(row)
        return master, exceptions

    def _seen(self, item_id: str, series: Series) -> Seen:
        master, exceptions = series
        self._remember(item_id, series)
        version = series_version(master, exceptions)
        rule = LEFT_OUT_TYPES.get(str(master.get("eventType") or ""))
        if rule:
            return Seen(item_id, version, None, note=rule)
        try:
            record, marker = read_event(master, exceptions, self.cats)
        except (MalformedEvent, KeyError, TypeError) as exc:
            return Seen.malformed(
                item_id,
                version,
                f"the event cannot be read: {exc}",
                "Open the event in Google Calendar and correct it; it syncs once it changes.",
            )
        return Seen(item_id, version, record, marker)

    def _remember(self, item_id: str, series: Series) -> None:
        self._cache.remember(item_id, series)

    def fetch(self, item_id: str) -> Seen | None:
        series = self._read_series(item_id)
        return None if series is None else self._seen(item_id, series)

    # ------------------------------------------------------------------ writing

    def planned_id(self, marker: str) -> str:
        """The id `create` gives the event of ``marker`` (its first generation)."""
        return event_id(marker, self.id_salt)

    def create(self, record: Record, marker: str) -> Written:
        """Insert the event under its marker's id; an event already there with the marker
        is returned unchanged (the create went through before)."""
        record = without_control_characters(record)
        assert isinstance(record, Event)
        body = event_body(event_slots(record, self.cats), None, self.cats)
        body.setdefault("extendedProperties", {"private": {}})["private"][markers.MARKER] = marker
        for generation in range(GENERATIONS):
            item_id = event_id(marker, self.id_salt, generation)
            answer = api.insert(self.connection, self.email, {**body, "id": item_id}, self.notify)
            if answer.ok and isinstance(answer.body, dict):
                return self._finish(item_id, answer.body, record, None)
            if answer.status != 409:
                raise self._refused(answer, "create an event")
            existing = api.get_event(self.connection, self.email, item_id)
            if existing is None:
                continue  # "collisions may not be detected at creation time"
            ours = markers.private(existing).get(markers.MARKER) == marker
            if ours and existing.get("status") != "cancelled":
                seen = self.fetch(item_id)
                if seen is not None and seen.record is not None:
                    return Written(item_id, seen.version, seen.record)
                continue
            if existing.get("status") == "cancelled":
                # The rep deleted an event of this id; Google keeps deleted events
                # restorable on the organiser's calendar.
                restore = {**body, "status": "confirmed"}
                etag = str(existing.get("etag") or "")
                answer = api.patch(self.connection, self.email, item_id, restore, etag, self.notify)
                if answer.ok and isinstance(answer.body, dict):
                    log.info("restored deleted event %s for marker %s", item_id, marker)
                    return self._finish(item_id, answer.body, record, None)
            log.info("event id %s is taken; trying the next generation", item_id)
        raise RejectedWrite(
            f"no free event id for CRM item {marker} after {GENERATIONS} tries",
            "Events of this id were deleted and cannot be restored; report this with the row.",
        )

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """PATCH the changed slots with ``If-Match``; `VersionConflict` when stale."""
        record = without_control_characters(record)
        assert isinstance(record, Event)
        master, exceptions = self._current(item_id, version)
        old, _ = read_event(master, exceptions, self.cats)
        new_slots = event_slots(record, self.cats)
        old_slots = event_slots(old, self.cats)
        changed = {k: v for k, v in new_slots.items() if old_slots.get(k) != v}
        occurrences_changed = _occurrences(old) != _occurrences(record)
        if not organizer_is_self(master, self.email) and (
            set(changed) - PRIVATE_SLOTS or occurrences_changed
        ):
            raise NotOrganizer(item_id, _organizer(master), "change")
        if not changed and not occurrences_changed:
            return Written(item_id, version, old)
        json = master
        if changed:
            body = event_body(changed, master, self.cats)
            answer = api.patch(
                self.connection, self.email, item_id, body, str(master.get("etag")), self.notify
            )
            if answer.status in (404, 410, 412):
                self._cache.pop(item_id, None)
                raise VersionConflict(
                    f"{item_id} changed in Google Calendar since version {version}",
                    "Nothing to do: the newer version is synced next cycle.",
                )
            if not answer.ok or not isinstance(answer.body, dict):
                raise self._refused(answer, "change an event")
            json = answer.body
        return self._finish(item_id, json, record, old)

    def delete(self, item_id: str, version: str) -> None:
        """DELETE with ``If-Match``; gone already is fine, changed is a conflict."""
        series = self._read_series(item_id)
        if series is None:
            return
        master, exceptions = series
        if series_version(master, exceptions) != version:
            raise VersionConflict(
                f"{item_id} changed in Google Calendar since version {version}; not deleted",
                "Nothing to do: the newer version is synced next cycle.",
            )
        if not organizer_is_self(master, self.email):
            raise NotOrganizer(item_id, _organizer(master), "delete")
        answer = api.delete(
            self.connection, self.email, item_id, str(master.get("etag")), self.notify
        )
        self._cache.pop(item_id, None)
        if answer.ok or answer.status in (404, 410):
            return
        if answer.status == 412:
            raise VersionConflict(
                f"{item_id} changed in Google Calendar since version {version}; not deleted",
                "Nothing to do: the newer version is synced next cycle.",
            )
        raise self._refused(answer, "delete an event")

    def _current(self, item_id: str, version: str) -> Series:
        cached = self._cache.get(item_id)
        if cached is not None and series_version(*cached) == version:
            return cached
        series = self._read_series(item_id)
        if series is None:
            raise VersionConflict(
                f"{item_id} no longer exists in Google Calendar",
                "Nothing to do: the deletion is picked up next cycle.",
            )
        if series_version(*series) != version:
            raise VersionConflict(
                f"{item_id} changed in Google Calendar since version {version}",
                "Nothing to do: the newer version is synced next cycle.",
            )
        return series

    def _finish(
        self, item_id: str, json: dict[str, Any], record: Event, old: Event | None
    ) -> Written:
        """Write the occurrence overrides that changed, then read the series back."""
        if record.recurrence is not None and _occurrences(old) != _occurrences(record):
            self._write_occurrences(item_id, json, record, old)
            series = self._read_series(item_id)
        elif json.get("recurrence"):
            series = self._read_series(item_id, json)
        else:
            series = (json, [])
        if series is None:
            raise VersionConflict(
                f"{item_id} vanished while crmsync wrote it", "Nothing to do: retried next cycle."
            )
        seen = self._seen(item_id, series)
        if seen.record is None:
            raise RejectedWrite(
                f"crmsync wrote {item_id} but cannot read it back",
                "Report this as a crmsync bug, with the event attached.",
            )
        return Written(item_id, seen.version, seen.record)

    def _write_occurrences(
        self, item_id: str, master: Mapping[str, Any], record: Event, old: Event | None
    ) -> None:
        """PATCH the occurrences whose override changed; restore the ones no longer
        cancelled (the master's EXDATE lines are already written)."""
        assert record.recurrence is not None
        old_over = {instant_key(o.recurrence_id): o for o in _overrides(old)}
        new_over = {instant_key(o.recurrence_id): o for o in record.recurrence.overrides}
        old_ex = {
            instant_key(e) for e in (old.recurrence.exdates if old and old.recurrence else ())
        }
        new_ex = {instant_key(e) for e in record.recurrence.exdates}
        writes: dict[str, dict[str, Any]] = {}
        for key, override in new_over.items():
            if old_over.get(key) != override:
                writes[key] = self._override_body(override, record)
        for key, override in old_over.items():
            if key not in new_over and key not in new_ex:
                length = record.timing.end - record.timing.start  # type: ignore[operator]
                start = override.recurrence_id
                plain = Occurrence(
                    start, type(record.timing)(start, start + length, record.timing.tzid)
                )
                writes[key] = self._override_body(plain, record)
        for key in old_ex - new_ex:
            writes.setdefault(key, {})["status"] = "confirmed"
        starts = {
            instant_key(o.recurrence_id): o.recurrence_id for o in record.recurrence.overrides
        }
        starts.update({instant_key(o.recurrence_id): o.recurrence_id for o in _overrides(old)})
        starts.update(
            {instant_key(e): e for e in old.recurrence.exdates} if old and old.recurrence else {}
        )
        for key, body in writes.items():
            inst = api.instance(self.connection, self.email, item_id, rfc3339(starts[key]))
            if inst is None:
                raise RejectedWrite(
                    f"the series {item_id} has no occurrence at {key} to change",
                    "Check the series' pattern in the CRM; the occurrence is outside it.",
                )
            if inst.get("status") != "cancelled":
                body.pop("status", None)  # an EXDATE removed from the master restored it
            elif "status" not in body:
                continue  # cancelled in Google and still cancelled in the CRM
            if not body:
                continue
            answer = api.patch(
                self.connection,
                self.email,
                str(inst["id"]),
                body,
                str(inst.get("etag") or ""),
                self.notify,
            )
            if not answer.ok:
                raise self._refused(answer, "change an occurrence")

    def _override_body(self, override: Occurrence, series: Event) -> dict[str, Any]:
        timing = override.timing
        return {
            "start": when_json(timing.start, series.timing.tzid),
            "end": when_json(timing.end, series.timing.tzid),
            "summary": override.subject or series.subject,
            "location": override.location or series.location,
            "description": override.description or series.description,
        }

    def _refused(self, answer: Answer, what: str) -> Exception:
        if answer.status == 403 and "forbiddenfornonorganizer" in answer.reasons:
            return NotOrganizer("the event", "", what.split()[0])
        return self.connection.problem(answer, api.API, self.email, what)


def _organizer(master: Mapping[str, Any]) -> str:
    return str((master.get("organizer") or {}).get("email") or "")


def _overrides(event: Event | None) -> tuple[Occurrence, ...]:
    return event.recurrence.overrides if event and event.recurrence else ()


def _occurrences(event: Event | None) -> tuple[Any, ...]:
    if event is None or event.recurrence is None:
        return ((), ())
    return tuple(event.recurrence.exdates), tuple(event.recurrence.overrides)
