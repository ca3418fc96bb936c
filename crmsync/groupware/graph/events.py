"""Event ↔ Graph event JSON (https://learn.microsoft.com/graph/api/resources/event).

Reads ask for UTC (``Prefer: outlook.timezone="UTC"``) and plain-text bodies; the zone
the event was written in comes from ``originalStartTimeZone`` (IANA or Windows name).
Writes send local wall times in the event's IANA zone. Like contacts, the mapped content
is a set of *slots* and an update PATCHes only changed ones.

Quirks carried across, each documented where handled:
- Graph sets attendees' responses itself; the response the CRM recorded is kept in a
  crmsync extended property and used while Graph says ``none`` / ``notResponded``.
- The organizer is the mailbox owner and cannot be written; it is read only for meetings
  (events with attendees), an appointment has none, as in iCalendar.
- Resources (rooms) and attendees beyond `MAX_ATTENDEES` are not synced and are kept.
- A series' cancelled occurrences are the rule's starts missing from its instances;
  its overrides are instances of type ``exception`` that differ from the pattern.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.domain.records import (
    MAX_ATTENDEES,
    Attendee,
    AttendeeStatus,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
    ShowAs,
)
from crmsync.groupware.graph import properties as props
from crmsync.groupware.graph import recurrence as rrule
from crmsync.groupware.graph.zones import iana_zone, zone

UTC = dt.UTC
EXPANDED = (props.MARKER, props.ATTENDEE_STATUS, props.RULE_TEXT)
_SHOW_AS = {
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OUT_OF_OFFICE,
    "workingElsewhere": ShowAs.BUSY,
}
_SHOW_AS_OUT = {ShowAs.FREE: "free", ShowAs.TENTATIVE: "tentative", ShowAs.BUSY: "busy"}
_SHOW_AS_OUT[ShowAs.OUT_OF_OFFICE] = "oof"
_RESPONSES = {
    "accepted": AttendeeStatus.ACCEPTED,
    "declined": AttendeeStatus.DECLINED,
    "tentativelyAccepted": AttendeeStatus.TENTATIVE,
}


class MalformedEvent(ValueError):
    """A Graph event crmsync cannot read."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n")


def parse_time(value: Mapping[str, Any] | None) -> dt.datetime:
    """A dateTimeTimeZone as an aware UTC datetime."""
    if not value or not value.get("dateTime"):
        raise MalformedEvent("the event has no start or end time")
    text = str(value["dateTime"]).split(".")[0].rstrip("Z")
    local = dt.datetime.fromisoformat(text)
    return local.replace(tzinfo=zone(value.get("timeZone"))).astimezone(UTC)


def parse_instant(value: str) -> dt.datetime:
    """An Edm.DateTimeOffset (``originalStart``) as an aware UTC datetime."""
    text = value.split(".")[0].replace("Z", "+00:00")
    when = dt.datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def read_timing(item: Mapping[str, Any]) -> EventTiming:
    if item.get("isAllDay"):
        start = str((item.get("start") or {}).get("dateTime", ""))[:10]
        end = str((item.get("end") or {}).get("dateTime", ""))[:10]
        if not start or not end:
            raise MalformedEvent("the all-day event has no dates")
        return EventTiming(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    start_at, end_at = parse_time(item.get("start")), parse_time(item.get("end"))
    if end_at < start_at:
        raise MalformedEvent("the event ends before it starts")
    return EventTiming(
        start_at,
        end_at,
        iana_zone(item.get("originalStartTimeZone")),
        iana_zone(item.get("originalEndTimeZone") or item.get("originalStartTimeZone")),
    )


def timing_json(timing: EventTiming) -> dict[str, Any]:
    if timing.all_day:
        return {
            "isAllDay": True,
            "start": {"dateTime": f"{timing.start.isoformat()}T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{timing.end.isoformat()}T00:00:00", "timeZone": "UTC"},
        }

    def local(when: dt.datetime | dt.date, tzid: str | None) -> dict[str, str]:
        assert isinstance(when, dt.datetime)
        text = when.astimezone(zone(tzid)).replace(tzinfo=None).isoformat(timespec="seconds")
        return {"dateTime": text, "timeZone": tzid or "UTC"}

    return {
        "isAllDay": False,
        "start": local(timing.start, timing.tzid),
        "end": local(timing.end, timing.end_zone),  # a flight ends in another zone
    }


def _attendees(item: Mapping[str, Any], recorded: Mapping[str, str]) -> tuple[Attendee, ...]:
    people = []
    for a in item.get("attendees") or ():
        if a.get("type") == "resource":
            continue
        address = _text((a.get("emailAddress") or {}).get("address"))
        if not address:
            continue
        name = _text((a.get("emailAddress") or {}).get("name"))
        response = str((a.get("status") or {}).get("response") or "none")
        status = _RESPONSES.get(response) or AttendeeStatus(
            recorded.get(address.lower(), AttendeeStatus.NEEDS_ACTION.value)
        )
        people.append(
            Attendee(address, "" if name == address else name, status, a.get("type") != "optional")
        )
    return tuple(people[:MAX_ATTENDEES])


def read_event(
    item: Mapping[str, Any], instances: Sequence[Mapping[str, Any]] | None = None
) -> tuple[Event, str | None]:
    """The event and crmsync's marker of a Graph event; ``instances`` are a series
    master's occurrences and exceptions (from ``/instances``). Raises `MalformedEvent`."""
    ext = props.read(item)
    try:
        recorded = jsonlib.loads(props.value(ext, props.ATTENDEE_STATUS) or "{}")
    except ValueError:
        recorded = {}
    attendees = _attendees(item, recorded)
    organizer = ""
    if attendees:
        organizer = _text(((item.get("organizer") or {}).get("emailAddress") or {}).get("address"))
    timing = read_timing(item)
    recurrence = None
    if item.get("recurrence"):
        recurrence = _read_recurrence(
            item, timing, instances or (), props.value(ext, props.RULE_TEXT)
        )
    event = Event(
        subject=_text(item.get("subject")),
        timing=timing,
        location=_text((item.get("location") or {}).get("displayName")),
        description=_text((item.get("body") or {}).get("content")).strip("\n"),
        is_private=item.get("sensitivity") in ("private", "confidential"),
        show_as=_SHOW_AS.get(str(item.get("showAs")), ShowAs.BUSY),
        categories=tuple(item.get("categories") or ()),
        attendees=attendees,
        organizer=organizer,
        recurrence=recurrence,
    )
    return event, props.value(ext, props.MARKER) or None


def _read_recurrence(
    item: Mapping[str, Any],
    timing: EventTiming,
    instances: Sequence[Mapping[str, Any]],
    written_rule: str,
) -> Recurrence:
    graph = item["recurrence"]
    try:
        rule = rrule.from_graph(graph)
    except rrule.Unsupported as exc:
        raise MalformedEvent(str(exc)) from exc
    if written_rule:
        try:
            start_date = range_start(timing)
            if rrule.same_pattern(rrule.to_graph(written_rule, start_date, timing.tzid), graph):
                rule = written_rule
        except (rrule.Unsupported, ValueError):
            pass
    if timing.all_day:
        return Recurrence(rule)  # instances of all-day series: not read (see README)
    seen_starts = set()
    overrides = []
    defaults = {
        "subject": _text(item.get("subject")),
        "location": _text((item.get("location") or {}).get("displayName")),
        "description": _text((item.get("body") or {}).get("content")).strip("\n"),
    }
    length = timing.end - timing.start  # type: ignore[operator]
    for inst in instances:
        if not inst.get("originalStart"):
            continue
        original = parse_instant(str(inst["originalStart"]))
        seen_starts.add(original)
        if inst.get("type") != "exception":
            continue
        inst_timing = read_timing(inst)
        content = {
            "subject": _text(inst.get("subject")),
            "location": _text((inst.get("location") or {}).get("displayName")),
            "description": _text((inst.get("body") or {}).get("content")).strip("\n"),
        }
        moved = inst_timing.start != original or inst_timing.end - inst_timing.start != length  # type: ignore[operator]
        if moved or content != defaults:
            overrides.append(
                Occurrence(
                    original,
                    EventTiming(inst_timing.start, inst_timing.end, timing.tzid),
                    content["subject"] if content["subject"] != defaults["subject"] else "",
                    content["location"] if content["location"] != defaults["location"] else "",
                    content["description"]
                    if content["description"] != defaults["description"]
                    else "",
                )
            )
    exdates: tuple[dt.datetime, ...] = ()
    if instances:
        expected = series_starts(rule, timing, instances_limit(timing, rule))
        exdates = tuple(s for s in expected if s not in seen_starts)
    overrides.sort(key=lambda o: o.recurrence_id)
    return Recurrence(rule, exdates, tuple(overrides))


def range_start(timing: EventTiming) -> dt.date:
    if timing.all_day:
        return timing.start  # type: ignore[return-value]
    assert isinstance(timing.start, dt.datetime)
    return timing.start.astimezone(zone(timing.tzid)).date()


def instances_limit(timing: EventTiming, rule: str, days: int = 730) -> dt.datetime:
    """Where to stop listing a series' instances: its end, or ``days`` after its start."""
    assert isinstance(timing.start, dt.datetime)
    return timing.start + dt.timedelta(days=days)


def series_starts(rule: str, timing: EventTiming, limit: dt.datetime) -> list[dt.datetime]:
    assert isinstance(timing.start, dt.datetime)
    local = timing.start.astimezone(zone(timing.tzid))
    return [s.astimezone(UTC) for s in rrule.occurrences(rule, local, limit)]


def event_slots(event: Event) -> dict[str, Any]:
    """The mapped content of ``event`` as slot → JSON value. Raises `rrule.Unsupported`."""
    slots: dict[str, Any] = {
        "subject": event.subject,
        "body": {"contentType": "text", "content": event.description},
        "location": {"displayName": event.location},
        "sensitivity": "private" if event.is_private else "normal",
        "showAs": _SHOW_AS_OUT[event.show_as],
        "categories": list(event.categories),
        "attendees": [
            {
                "emailAddress": {"address": a.email, "name": a.name or a.email},
                "type": "required" if a.required else "optional",
            }
            for a in event.attendees[:MAX_ATTENDEES]
        ],
        "ext:" + props.ATTENDEE_STATUS: jsonlib.dumps(
            {a.email.lower(): a.status.value for a in event.attendees[:MAX_ATTENDEES]},
            sort_keys=True,
        ),
    }
    slots.update(timing_json(event.timing))
    rule = event.recurrence.rule if event.recurrence else ""
    slots["recurrence"] = (
        rrule.to_graph(rule, range_start(event.timing), event.timing.tzid) if rule else None
    )
    slots["ext:" + props.RULE_TEXT] = rule
    return slots


# Slots whose change Graph does not mail to attendees (they live in this mailbox only).
PRIVATE_SLOTS = frozenset({"categories", "ext:" + props.ATTENDEE_STATUS, "ext:" + props.RULE_TEXT})


def event_body(slots: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON to POST (``current`` None) or PATCH for ``slots``; attendees crmsync does
    not carry (resources, those beyond `MAX_ATTENDEES`) are kept."""
    body: dict[str, Any] = {}
    ext: dict[str, str] = {}
    for slot, value in slots.items():
        if slot.startswith("ext:"):
            ext[slot[4:]] = value
        elif slot == "attendees" and current:
            carried = {a["emailAddress"]["address"].lower() for a in value}
            kept = [
                a
                for i, a in enumerate(current.get("attendees") or ())
                if a.get("type") == "resource" or i >= MAX_ATTENDEES
            ]
            body[slot] = value + [
                a
                for a in kept
                if str((a.get("emailAddress") or {}).get("address", "")).lower() not in carried
            ]
        elif slot in ("start", "end", "isAllDay"):
            body.update({k: slots[k] for k in ("start", "end", "isAllDay")})
        else:
            body[slot] = value
    if ext:
        body["singleValueExtendedProperties"] = props.body(ext)
    return body
