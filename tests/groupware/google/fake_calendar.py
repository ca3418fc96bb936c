"""`FakeCalendar`: each user's primary calendar as Calendar v3 serves it.

Refuses what Google refuses: an expired or unknown sync token (410 ``fullSyncRequired``),
a sync token together with ``iCalUID`` / ``timeMin`` / ``q`` (400), an insert whose
client id is taken, even by a deleted event (409 ``duplicate``), an id that is not
base32hex (400), a recurring event without a start time zone (400), a stale ``If-Match``
(412 ``conditionNotMet``), deleting a deleted event (410 ``deleted``), and an attendee's
change to a meeting's shared fields (403 ``forbiddenForNonOrganizer``). Simplifications:
instances are expanded for two years at most; ``timeMin`` / ``timeMax`` are ignored.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from dateutil import rrule

if TYPE_CHECKING:
    from tests.groupware.google.fake_google import FakeGoogle

UTC = dt.UTC
BASE32HEX = set("0123456789abcdefghijklmnopqrstuv")
_SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "timeMin",
    "timeMax",
    "updatedMin",
)
# Fields an attendee may change on their own copy of a meeting.
_ATTENDEE_FIELDS = {"colorId", "extendedProperties", "reminders", "transparency"}


def _err(status: int, reason: str, message: str, domain: str = "global") -> tuple:
    from tests.groupware.google.fake_google import legacy_error

    return status, {}, legacy_error(status, reason, message, domain)


@dataclass
class Calendar:
    owner: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    sync_tokens: dict[str, int] = field(default_factory=dict)


class FakeCalendar:
    def __init__(self, google: FakeGoogle, page_size: int) -> None:
        self.google = google
        self.page_size = page_size
        self.calendars: dict[str, Calendar] = {}
        self.pages: dict[str, tuple[list[dict[str, Any]], int, str | None, str]] = {}
        self.send_updates: list[str | None] = []  # sendUpdates of each write
        self.etags = 3181161784712000

    def calendar(self, user: str) -> Calendar:
        return self.calendars.setdefault(user, Calendar(user))

    def expire_sync_tokens(self, user: str) -> None:
        """Google invalidated every token of the calendar (expiry, an ACL change ...)."""
        self.calendar(user.lower()).sync_tokens.clear()

    # ---------------------------------------------------------------- state

    def _touch(self, cal: Calendar, event: dict[str, Any]) -> None:
        self.etags += 1000
        event["etag"] = f'"{self.etags}"'
        event["updated"] = self.google.now.isoformat().replace("+00:00", "Z")
        cal.log.append((self.google.next_seq(), event["id"]))

    def foreign_patch(self, user: str, event_id: str, changes: dict[str, Any]) -> None:
        """The rep edits the event in Google Calendar."""
        with self.google.lock:
            cal = self.calendar(user.lower())
            event = self._event_or_instance(cal, event_id, create=True)
            assert event is not None
            _merge(event, changes)
            self._touch(cal, event)

    def foreign_delete(self, user: str, event_id: str) -> None:
        with self.google.lock:
            cal = self.calendar(user.lower())
            event = self._event_or_instance(cal, event_id, create=True)
            assert event is not None
            self._cancel(cal, event)

    def put(self, user: str, event: dict[str, Any]) -> dict[str, Any]:
        """An event someone else made (an invitation, an entry Google made)."""
        with self.google.lock:
            cal = self.calendar(user.lower())
            event = {"kind": "calendar#event", "status": "confirmed", **copy.deepcopy(event)}
            event.setdefault("iCalUID", f"{event['id']}@google.com")
            cal.events[event["id"]] = event
            self._touch(cal, event)
            return event

    # ---------------------------------------------------------------- routing

    def route(
        self, user: str, method: str, path: str, query: dict, headers: dict, body: Any
    ) -> tuple:
        cal = self.calendar(user)
        q = {k: v[-1] for k, v in query.items()}
        headers = {k.lower(): v for k, v in headers.items()}
        parts = [unquote(p) for p in path.removeprefix("/calendar/v3/calendars/").split("/")]
        if parts[0] not in ("primary", user) or len(parts) < 2 or parts[1] != "events":
            return _err(404, "notFound", "Not Found")
        if len(parts) == 2 and method == "GET":
            return self._list(cal, q)
        if len(parts) == 2 and method == "POST":
            return self._insert(cal, q, body)
        if len(parts) == 4 and parts[3] == "instances" and method == "GET":
            return self._instances(cal, parts[2], q)
        if len(parts) == 3:
            if method == "GET":
                event = self._event_or_instance(cal, parts[2])
                return (200, {}, _public(event)) if event else _err(404, "notFound", "Not Found")
            if method == "PATCH":
                return self._patch(cal, parts[2], q, headers, body)
            if method == "DELETE":
                return self._delete(cal, parts[2], q, headers)
        return _err(400, "badRequest", f"Unsupported {method} {path}")

    # https://developers.google.com/workspace/calendar/api/v3/reference/events/list and
    # https://developers.google.com/workspace/calendar/api/guides/sync (nextPageToken pages,
    # nextSyncToken on the last one only, 410 fullSyncRequired, deleted events always
    # returned incrementally with only the id guaranteed).
    def _list(self, cal: Calendar, q: dict[str, str]) -> tuple:
        if "pageToken" in q:
            page = self.pages.get(q["pageToken"])
            if page is None or page[3] != q.get("syncToken", ""):
                return _err(400, "invalid", "Invalid page token value.")
            rows, offset, sync_seq, _ = page
        else:
            token = q.get("syncToken")
            if token:
                if any(k in q for k in _SYNC_FORBIDDEN) or q.get("showDeleted") == "false":
                    return _err(400, "invalid", "Sync token cannot be used with other filters.")
                since = cal.sync_tokens.get(token)
                if since is None:
                    return _err(
                        410,
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                    )
                changed = dict.fromkeys(i for s, i in cal.log if s > since)
                rows = [self._delta_row(cal, cal.events[i]) for i in changed]
            else:
                show_deleted = q.get("showDeleted") == "true"
                rows = [
                    _public(e)
                    for e in cal.events.values()
                    if (not q.get("iCalUID") or e.get("iCalUID") == q["iCalUID"])
                    and (show_deleted or e["status"] != "cancelled" or self._live_exception(cal, e))
                ]
            offset, sync_seq = 0, (cal.log[-1][0] if cal.log else 0)
            if q.get("iCalUID"):
                sync_seq = None
        size = min(int(q.get("maxResults", "250")), 2500, self.page_size)
        page, rest = rows[offset : offset + size], rows[offset + size :]
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": cal.owner,
            "timeZone": "Europe/Berlin",
            "items": page,
        }
        if rest:
            token = secrets.token_urlsafe(12)
            self.pages[token] = (rows, offset + size, sync_seq, q.get("syncToken", ""))
            answer["nextPageToken"] = token
        elif sync_seq is not None:
            token = "CPDAlvWDx70CEPDAlvWDx70CGAU=" + secrets.token_urlsafe(8)
            cal.sync_tokens[token] = sync_seq
            answer["nextSyncToken"] = token
        return 200, {}, answer

    def _live_exception(self, cal: Calendar, event: dict[str, Any]) -> bool:
        """A cancelled exception of a live series: listed even without showDeleted."""
        master = cal.events.get(str(event.get("recurringEventId")))
        return master is not None and master["status"] != "cancelled"

    def _delta_row(self, cal: Calendar, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] != "cancelled":
            return _public(event)
        row = {
            "kind": "calendar#event",
            "etag": event["etag"],
            "id": event["id"],
            "status": "cancelled",
        }
        if event.get("recurringEventId"):
            row["recurringEventId"] = event["recurringEventId"]
            row["originalStartTime"] = event["originalStartTime"]
        return row

    # https://developers.google.com/workspace/calendar/api/v3/reference/events/insert and
    # .../events#id (base32hex, 5-1024 characters, unique per calendar: 409 "The
    # requested identifier already exists.", deleted events included).
    def _insert(self, cal: Calendar, q: dict[str, str], body: dict[str, Any]) -> tuple:
        self.send_updates.append(q.get("sendUpdates"))
        event_id = body.get("id") or secrets.token_hex(13)
        if not (5 <= len(event_id) <= 1024 and set(event_id) <= BASE32HEX):
            return _err(400, "invalid", "Invalid resource id value.")
        if event_id in cal.events:
            return _err(409, "duplicate", "The requested identifier already exists.")
        if (
            body.get("recurrence")
            and not (body.get("start") or {}).get("timeZone")
            and "dateTime" in (body.get("start") or {})
        ):
            return _err(400, "invalid", "Missing time zone definition for start time.")
        event = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "iCalUID": f"{event_id}@google.com",
            "created": self.google.now.isoformat().replace("+00:00", "Z"),
            "organizer": {"email": cal.owner, "self": True},
            "creator": {"email": cal.owner, "self": True},
            "sequence": 0,
            **{k: copy.deepcopy(v) for k, v in body.items() if k != "id" and v is not None},
        }
        for attendee in event.get("attendees") or ():
            attendee.setdefault("responseStatus", "needsAction")
        cal.events[event_id] = event
        self._touch(cal, event)
        return 200, {}, _public(event)

    # https://developers.google.com/workspace/calendar/api/v3/reference/events/patch and
    # https://developers.google.com/workspace/calendar/api/guides/version-resources
    # (If-Match: 412 when the etag moved on); a deleted event on the organiser's calendar
    # is restorable (status: confirmed).
    def _patch(
        self, cal: Calendar, event_id: str, q: dict, headers: dict, body: dict[str, Any]
    ) -> tuple:
        self.send_updates.append(q.get("sendUpdates"))
        event = self._event_or_instance(cal, event_id, create=True)
        if event is None:
            return _err(404, "notFound", "Not Found")
        if headers.get("if-match") and headers["if-match"] != event["etag"]:
            return _err(412, "conditionNotMet", "Precondition Failed")
        if "id" in body and body["id"] != event_id:
            return _err(400, "invalid", "Invalid resource id value.")
        if not (event.get("organizer") or {}).get("self", True) and set(body) - _ATTENDEE_FIELDS:
            return _err(
                403,
                "forbiddenForNonOrganizer",
                "Shared properties can only be changed by the organizer of the event.",
                "calendar",
            )
        if event["status"] == "cancelled" and body.get("status") != "confirmed":
            return _err(404, "notFound", "Not Found")
        _merge(event, body)
        if body.get("status") == "confirmed" and event.get("recurringEventId") is None:
            for other in cal.events.values():  # a restored series gets its exceptions back
                if other.get("recurringEventId") == event_id and other.get("_with_master"):
                    other["status"] = "confirmed"
        self._touch(cal, event)
        return 200, {}, _public(event)

    # https://developers.google.com/workspace/calendar/api/v3/reference/events/delete (a
    # deleted event answers 410 "Resource has been deleted"; deleting an occurrence
    # leaves a cancelled exception).
    def _delete(self, cal: Calendar, event_id: str, q: dict, headers: dict) -> tuple:
        self.send_updates.append(q.get("sendUpdates"))
        event = self._event_or_instance(cal, event_id, create=True)
        if event is None:
            return _err(404, "notFound", "Not Found")
        if event["status"] == "cancelled":
            return _err(410, "deleted", "Resource has been deleted")
        if headers.get("if-match") and headers["if-match"] != event["etag"]:
            return _err(412, "conditionNotMet", "Precondition Failed")
        self._cancel(cal, event)
        return 204, {}, None

    def _cancel(self, cal: Calendar, event: dict[str, Any]) -> None:
        event["status"] = "cancelled"
        self._touch(cal, event)
        if event.get("recurrence"):
            for other in list(cal.events.values()):
                if other.get("recurringEventId") == event["id"] and other["status"] != "cancelled":
                    other["status"] = "cancelled"
                    other["_with_master"] = True
                    self._touch(cal, other)

    # ---------------------------------------------------------------- series

    def _starts(self, master: dict[str, Any]) -> list[dt.datetime | dt.date]:
        """The pattern's starts (RRULE and RDATE less EXDATE), two years at most."""
        start = master["start"]
        lines = master.get("recurrence") or []
        if "date" in start:
            first: dt.datetime = dt.datetime.fromisoformat(start["date"])
        else:
            first = dt.datetime.fromisoformat(start["dateTime"]).astimezone(
                zoneinfo.ZoneInfo(start.get("timeZone") or "UTC")
            )
        text = "\n".join(
            line
            for line in lines
            if line.split(":")[0].split(";")[0] in ("RRULE", "EXDATE", "RDATE")
        )
        rules = rrule.rrulestr(text, dtstart=first, forceset=True, unfold=True)
        limit = first + dt.timedelta(days=730)
        found: list[dt.datetime | dt.date] = []
        for when in rules:
            if when > limit or len(found) >= 1000:
                break
            found.append(when.date() if "date" in start else when.astimezone(UTC))
        return found

    def _instance_id(self, master_id: str, when: dt.datetime | dt.date) -> str:
        if isinstance(when, dt.datetime):
            return f"{master_id}_{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{master_id}_{when:%Y%m%d}"

    def _expand(
        self, cal: Calendar, master: dict[str, Any], when: dt.datetime | dt.date
    ) -> dict[str, Any]:
        """The occurrence of ``master`` originally at ``when``, as an instance resource."""
        instance_id = self._instance_id(master["id"], when)
        if instance_id in cal.events:
            return cal.events[instance_id]
        start, end = master["start"], master["end"]
        instance = {k: copy.deepcopy(v) for k, v in master.items() if k not in ("recurrence", "id")}
        instance.update(id=instance_id, recurringEventId=master["id"])
        if isinstance(when, dt.datetime):
            zone = zoneinfo.ZoneInfo(start.get("timeZone") or "UTC")
            length = dt.datetime.fromisoformat(end["dateTime"]) - dt.datetime.fromisoformat(
                start["dateTime"]
            )
            local = when.astimezone(zone)
            instance["originalStartTime"] = {"dateTime": local.isoformat(), "timeZone": str(zone)}
            instance["start"] = {"dateTime": local.isoformat(), "timeZone": str(zone)}
            instance["end"] = {
                "dateTime": (local + length).astimezone(zone).isoformat(),
                "timeZone": end.get("timeZone") or str(zone),
            }
        else:
            days = dt.date.fromisoformat(end["date"]) - dt.date.fromisoformat(start["date"])
            instance["originalStartTime"] = {"date": when.isoformat()}
            instance["start"] = {"date": when.isoformat()}
            instance["end"] = {"date": (when + days).isoformat()}
        return instance

    def _event_or_instance(
        self, cal: Calendar, event_id: str, create: bool = False
    ) -> dict[str, Any] | None:
        """An event, or an occurrence by its instance id (made an exception on ``create``)."""
        if event_id in cal.events:
            return cal.events[event_id]
        master_id = event_id.rpartition("_")[0]
        master = cal.events.get(master_id)
        if master is None or not master.get("recurrence") or master["status"] == "cancelled":
            return None
        for when in self._starts(master):
            if self._instance_id(master_id, when) == event_id:
                instance = self._expand(cal, master, when)
                if create and event_id not in cal.events:
                    cal.events[event_id] = instance
                return instance
        return None

    # https://developers.google.com/workspace/calendar/api/v3/reference/events/instances
    # (originalStart picks one occurrence; cancelled ones only with showDeleted).
    def _instances(self, cal: Calendar, master_id: str, q: dict[str, str]) -> tuple:
        master = cal.events.get(master_id)
        if master is None or master["status"] == "cancelled":
            return _err(410 if master else 404, "deleted" if master else "notFound", "Not Found")
        if not master.get("recurrence"):
            return 200, {}, {"kind": "calendar#events", "items": []}
        wanted = q.get("originalStart")
        items = []
        for when in self._starts(master):
            instance = self._expand(cal, master, when)
            if instance["status"] == "cancelled" and q.get("showDeleted") != "true":
                continue
            if wanted and _instant(wanted) != (
                when if not isinstance(when, dt.datetime) else when.astimezone(UTC)
            ):
                continue
            items.append(_public(instance))
        return 200, {}, {"kind": "calendar#events", "items": items}


def _instant(text: str) -> dt.datetime | dt.date:
    if "T" not in text:
        return dt.date.fromisoformat(text)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _merge(event: dict[str, Any], body: dict[str, Any]) -> None:
    """Patch semantics: given fields replace, objects merge key by key, null clears."""
    for key, value in body.items():
        if value is None:
            event.pop(key, None)
        elif key == "extendedProperties":
            props = event.setdefault("extendedProperties", {})
            for scope, values in value.items():
                props.setdefault(scope, {}).update(values or {})
                props[scope] = {k: v for k, v in props[scope].items() if v is not None}
        elif key == "attendees":
            event["attendees"] = [
                {"responseStatus": "needsAction", **copy.deepcopy(a)} for a in value
            ]
        else:
            event[key] = copy.deepcopy(value)


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}
