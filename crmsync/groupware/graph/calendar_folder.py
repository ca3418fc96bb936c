"""`GraphEvents`: the rep's default calendar as an ``ItemSide``, on ``/calendarView/delta``
over a window (event: delta; v1.0 has no unbounded events delta), whose occurrence and
exception rows are folded into their series master; what it shares with the contacts
folder is in `item_folder`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from crmsync.domain.records import Event, Occurrence, Record
from crmsync.domain.sync import RejectedWrite, VersionConflict, Written
from crmsync.groupware.graph import events as event_map
from crmsync.groupware.graph.connection import READ_PREFER, BatchItem, GraphConnection
from crmsync.groupware.graph.item_folder import GraphItems, etag_of


class WouldNotifyAttendees(RejectedWrite):
    """A meeting edit crmsync skipped because Graph would mail every attendee."""

    def __init__(self, item_id: str, what: str) -> None:
        super().__init__(
            f"skipped: would notify attendees ({what} of meeting {item_id} with attendees)",
            "Make the change in Outlook, or turn on 'notify attendees on CRM edits' in the "
            "Microsoft 365 settings if attendees should get an update from each CRM edit.",
        )


class GraphEvents(GraphItems):
    """The rep's default calendar."""

    items_segment = "events"
    expanded = event_map.EXPANDED

    def __init__(
        self,
        connection: GraphConnection,
        email: str,
        *,
        notify_attendees: bool = False,
        window: tuple[int, int] = (365, 730),
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        super().__init__(connection, email)
        self.collection = f"{self.user}/calendar/events"
        self.notify_attendees = notify_attendees
        self.window = window
        self.now = now

    def __repr__(self) -> str:
        return f"GraphEvents({self.email!r})"

    def _delta_start(self) -> str:
        now = self.now().replace(microsecond=0)
        start = (now - dt.timedelta(days=self.window[0])).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (now + dt.timedelta(days=self.window[1])).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.user}/calendarView/delta?startDateTime={start}&endDateTime={end}"

    def _listing(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
        listing: dict[str, str | None] = {}
        for row in rows:
            master = row.get("seriesMasterId")
            if master and row.get("type") in ("occurrence", "exception"):
                listing[str(master)] = None  # the master's own version is not in the row
            elif listing.get(str(row["id"]), "") is not None:
                listing[str(row["id"])] = etag_of(row)
        return listing

    def _confirm_gone(self, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        answers = self.connection.batch(
            [BatchItem("GET", f"{self.item_path(i)}?$select=id") for i in ids]
        )
        return [i for i, a in zip(ids, answers, strict=True) if a.status in (404, 410)]

    def _extras(self, items: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """The instances of each series master among ``items`` (one batch)."""
        masters = [i for i, j in items.items() if j.get("recurrence") and not j.get("isAllDay")]
        if not masters:
            return {}
        requests = []
        for item_id in masters:
            try:
                timing = event_map.read_timing(items[item_id])
            except (ValueError, KeyError):
                continue
            start = timing.start - dt.timedelta(days=1)  # type: ignore[operator]
            end = event_map.instances_limit(timing, "")
            query = urlencode(
                {
                    "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "$select": "id,type,originalStart,start,end,subject,location,body",
                    "$top": "1000",
                }
            )
            requests.append((item_id, f"{self.item_path(item_id)}/instances?{query}"))
        answers = self.connection.batch(
            [BatchItem("GET", url, headers={"Prefer": READ_PREFER}) for _, url in requests]
        )
        found: dict[str, Any] = {}
        for (item_id, _), answer in zip(requests, answers, strict=True):
            if answer.status == 200 and isinstance(answer.body, dict):
                values = list(answer.body.get("value") or ())
                link = answer.body.get("@odata.nextLink")
                while link:
                    page = self.connection.request("GET", link, headers={"Prefer": READ_PREFER})
                    if page.status_code != 200:
                        self._unexpected(page, "list a series' occurrences")
                    values += page.json().get("value") or []
                    link = page.json().get("@odata.nextLink")
                found[item_id] = values
        return found

    def _read(self, json: Mapping[str, Any], extra: Any = None) -> tuple[Record, str | None]:
        return event_map.read_event(json, extra)

    def _slots(self, record: Record) -> dict[str, Any]:
        assert isinstance(record, Event)
        return event_map.event_slots(record)

    def _body(self, slots: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
        return event_map.event_body(slots, current)

    # -------------------------------------------------------- attendee safety

    def _guard(
        self,
        item_id: str,
        current: Mapping[str, Any],
        changed: Mapping[str, Any],
        old: Record,
        new: Record,
    ) -> None:
        if self.notify_attendees:
            return
        if not _has_attendees(current):
            # Adding attendees to an appointment makes it a meeting: invitations go out.
            if isinstance(new, Event) and new.attendees:
                raise WouldNotifyAttendees(item_id, "invitation")
            return
        if set(changed) - event_map.PRIVATE_SLOTS or self._extra_changes(old, new):
            raise WouldNotifyAttendees(item_id, "update")

    def _guard_create(self, record: Record, marker: str) -> None:
        # Creating a meeting with attendees sends them invitations.
        if not self.notify_attendees and isinstance(record, Event) and record.attendees:
            raise WouldNotifyAttendees(f"for CRM event {marker}", "invitation")

    def _guard_delete(self, item_id: str, version: str) -> None:
        if self.notify_attendees:
            return
        current = self._cache.get(item_id)
        if current is None or etag_of(current) != version:
            response = self.connection.request(
                "GET", f"{self.item_path(item_id)}?$select=id,attendees"
            )
            if response.status_code != 200:
                return  # gone (fine) or unreadable: the DELETE answers for itself
            current = response.json()
        if _has_attendees(current):
            raise WouldNotifyAttendees(item_id, "deletion")

    # -------------------------------------------------------- series exceptions

    def _extra_changes(self, old: Record, new: Record) -> bool:
        assert isinstance(old, Event) and isinstance(new, Event)
        return _exceptions(old) != _exceptions(new)

    def _after_write(
        self, item_id: str, json: dict[str, Any], record: Record, old: Record | None
    ) -> Written:
        assert isinstance(record, Event)
        if record.recurrence and (
            _exceptions(record) != (_exceptions(old) if isinstance(old, Event) else ((), ()))
        ):
            self._apply_exceptions(item_id, json, record, old)
            seen = self.fetch(item_id)
            if seen is None or seen.record is None:
                raise VersionConflict(
                    f"{item_id} vanished while crmsync wrote its occurrences",
                    "Nothing to do: retried next cycle.",
                )
            return Written(item_id, seen.version, seen.record)
        return super()._after_write(item_id, json, record, old)

    def _apply_exceptions(
        self, item_id: str, json: dict[str, Any], record: Event, old: Record | None
    ) -> None:
        """Cancel (DELETE) and override (PATCH) instances so the series matches ``record``."""
        assert record.recurrence is not None
        old_ex, old_over = _exceptions(old) if isinstance(old, Event) else ((), ())
        instances = self._extras({item_id: json}).get(item_id) or []
        by_start = {
            event_map.parse_instant(str(i["originalStart"])): i
            for i in instances
            if i.get("originalStart")
        }
        if set(old_ex) - set(record.recurrence.exdates):
            raise RejectedWrite(
                f"cannot restore a cancelled occurrence of {item_id} through Microsoft Graph",
                "Recreate the occurrence in Outlook, or remove the series and sync it again.",
            )
        writes: list[BatchItem] = []
        for when in record.recurrence.exdates:
            inst = by_start.get(_instant(when))
            if inst is not None and when not in old_ex:
                writes.append(BatchItem("DELETE", self.item_path(str(inst["id"]))))
        wanted = {_instant(o.recurrence_id): o for o in record.recurrence.overrides}
        for when, override in wanted.items():
            inst = by_start.get(when)
            if inst is not None and override not in old_over:
                writes.append(self._override_write(str(inst["id"]), override, record))
        for override in old_over:
            when = _instant(override.recurrence_id)
            inst = by_start.get(when)
            if when not in wanted and inst is not None:
                length = record.timing.end - record.timing.start  # type: ignore[operator]
                plain = Occurrence(
                    when, type(record.timing)(when, when + length, record.timing.tzid)
                )
                writes.append(self._override_write(str(inst["id"]), plain, record))
        for answer in self.connection.batch(writes):
            if answer.status not in (200, 204, 404):
                raise RejectedWrite(
                    f"Microsoft 365 refused to change an occurrence of {item_id}: HTTP "
                    f"{answer.status}",
                    "Check the series in Outlook; retried when it changes.",
                )

    def _override_write(self, instance_id: str, override: Occurrence, series: Event) -> BatchItem:
        body = event_map.timing_json(override.timing)
        body.pop("isAllDay")
        body["subject"] = override.subject or series.subject
        body["location"] = {"displayName": override.location or series.location}
        body["body"] = {
            "contentType": "text",
            "content": override.description or series.description,
        }
        return BatchItem("PATCH", self.item_path(instance_id), body)


def _instant(when: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when.astimezone(dt.UTC)
    return dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)


def _exceptions(event: Event | None) -> tuple[tuple[Any, ...], tuple[Occurrence, ...]]:
    if event is None or event.recurrence is None:
        return (), ()
    return tuple(event.recurrence.exdates), tuple(event.recurrence.overrides)


def _has_attendees(json: Mapping[str, Any]) -> bool:
    return any(a.get("type") != "resource" for a in json.get("attendees") or ())
