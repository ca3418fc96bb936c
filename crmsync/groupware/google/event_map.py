"""Event ↔ Calendar v3 event JSON (https://developers.google.com/workspace/calendar/api/v3/reference/events).

Like the Graph backend, the mapped content is a set of *slots* and an update PATCHes only
the slots that changed. Quirks carried across, each handled here:
- Google has only busy (``opaque``) and free (``transparent``): the CRM's show-as is also
  kept in a private extended property and used while it agrees with the transparency.
- Google has no categories: the CRM's are kept in a private extended property; with a
  category colour configured, that colour on an event *is* the org's event category
  (the rep selects an event for the CRM by colouring it).
- ``visibility`` ``private`` and ``confidential`` are private; writing keeps ``default``
  for a public event (``public`` is only ever read).
- Resources (rooms) and attendees beyond `MAX_ATTENDEES` are not synced and are kept.
- The organiser is read for meetings only (events with attendees), as in iCalendar.
- Exceptions: see `crmsync.groupware.google.recurrence`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from crmsync.groupware.google import markers
from crmsync.groupware.google import recurrence as lines
from crmsync.groupware.google.times import UTC, parse_when, when_json

_RESPONSES = {
    "accepted": AttendeeStatus.ACCEPTED,
    "declined": AttendeeStatus.DECLINED,
    "tentative": AttendeeStatus.TENTATIVE,
    "needsAction": AttendeeStatus.NEEDS_ACTION,
}
_RESPONSES_OUT = {v: k for k, v in _RESPONSES.items()}
_RESPONSES_OUT[AttendeeStatus.DELEGATED] = "needsAction"  # Google has no delegation
# Slots that stay in the rep's own copy: Google tells attendees nothing of them.
PRIVATE_SLOTS = frozenset({"colorId", f"ext:{markers.SHOW_AS}", f"ext:{markers.CATEGORIES}"})


class MalformedEvent(ValueError):
    """A Google event crmsync cannot read."""


@dataclass(frozen=True)
class Categories:
    """How the org's event category shows in Google: ``color`` ("" for none)."""

    color: str = ""
    name: str = "CRM"


NO_CATEGORY_COLOR = Categories()


def _text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n")


def _timing(item: Mapping[str, Any], fallback_zone: str | None = None) -> EventTiming:
    try:
        start, zone = parse_when(item.get("start"))
        end, end_zone = parse_when(item.get("end"))
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from exc
    if not isinstance(start, dt.datetime):
        if isinstance(end, dt.datetime) or end < start:
            raise MalformedEvent("the all-day event's dates are inconsistent")
        return EventTiming(start, end)
    if not isinstance(end, dt.datetime) or end < start:
        raise MalformedEvent("the event ends before it starts")
    # An end without a zone of its own (or the start's) is in the start's zone.
    return EventTiming(start, end, zone or fallback_zone, end_zone)


def _attendees(item: Mapping[str, Any]) -> tuple[Attendee, ...]:
    people = []
    for a in item.get("attendees") or ():
        if not isinstance(a, Mapping) or a.get("resource") or not a.get("email"):
            continue
        people.append(
            Attendee(
                _text(a["email"]),
                _text(a.get("displayName")),
                _RESPONSES.get(str(a.get("responseStatus")), AttendeeStatus.NEEDS_ACTION),
                not a.get("optional"),
            )
        )
    return tuple(people[:MAX_ATTENDEES])


def _show_as(item: Mapping[str, Any], ext: Mapping[str, str]) -> ShowAs:
    free = item.get("transparency") == "transparent"
    stored = ext.get(markers.SHOW_AS)
    if stored in ShowAs._value2member_map_ and (ShowAs(stored) is ShowAs.FREE) == free:
        return ShowAs(stored)
    if free:
        return ShowAs.FREE
    return ShowAs.OUT_OF_OFFICE if item.get("eventType") == "outOfOffice" else ShowAs.BUSY


def _categories(item: Mapping[str, Any], ext: Mapping[str, str], cats: Categories) -> tuple:
    try:
        stored = json.loads(ext.get(markers.CATEGORIES) or "[]")
    except ValueError:
        stored = []
    names = [str(c) for c in stored if isinstance(c, str)] if isinstance(stored, list) else []
    if cats.color:
        names = [c for c in names if c != cats.name]
        if str(item.get("colorId") or "") == cats.color:
            names.insert(0, cats.name)
    return tuple(names)


def organizer_is_self(item: Mapping[str, Any], rep: str) -> bool:
    """Whether the rep organises the event (an event without organiser is the rep's)."""
    organizer = item.get("organizer") or {}
    if not organizer:
        return True
    return bool(organizer.get("self")) or str(organizer.get("email", "")).lower() == rep.lower()


def read_event(
    item: Mapping[str, Any],
    exceptions: Sequence[Mapping[str, Any]] = (),
    cats: Categories = NO_CATEGORY_COLOR,
) -> tuple[Event, str | None]:
    """The event and crmsync's marker of a Google event; ``exceptions`` are a series
    master's exception events (moved, changed or cancelled instances). Raises
    `MalformedEvent`."""
    ext = markers.private(item)
    timing = _timing(item)
    attendees = _attendees(item)
    organizer = _text((item.get("organizer") or {}).get("email")) if attendees else ""
    recurrence = None
    if item.get("recurrence"):
        recurrence = _read_series(item, timing, exceptions)
    event = Event(
        subject=_text(item.get("summary")),
        timing=timing,
        location=_text(item.get("location")),
        description=_text(item.get("description")),
        is_private=item.get("visibility") in ("private", "confidential"),
        show_as=_show_as(item, ext),
        categories=_categories(item, ext, cats),
        attendees=attendees,
        organizer=organizer,
        recurrence=recurrence,
    )
    return event, ext.get(markers.MARKER) or None


def _read_series(
    item: Mapping[str, Any], timing: EventTiming, exceptions: Sequence[Mapping[str, Any]]
) -> Recurrence:
    try:
        rule, exdates, rdates = lines.read_lines(list(item["recurrence"]), timing.tzid)
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from exc
    length = timing.end - timing.start  # type: ignore[operator]
    defaults = (
        _text(item.get("summary")),
        _text(item.get("location")),
        _text(item.get("description")),
    )
    overrides = []
    for inst in exceptions:
        try:
            original, _ = parse_when(inst.get("originalStartTime"))
        except ValueError:
            continue
        if inst.get("status") == "cancelled":
            if not any(lines.same_instant(original, e) for e in exdates):
                exdates.append(original)
            continue
        inst_timing = _timing(inst, timing.tzid)
        content = (
            _text(inst.get("summary")),
            _text(inst.get("location")),
            _text(inst.get("description")),
        )
        moved = inst_timing.start != original or inst_timing.end - inst_timing.start != length  # type: ignore[operator]
        if moved or content != defaults:
            overrides.append(
                Occurrence(
                    original,
                    EventTiming(inst_timing.start, inst_timing.end, timing.tzid),
                    *(c if c != d else "" for c, d in zip(content, defaults, strict=True)),
                )
            )
    return Recurrence(rule, tuple(exdates), tuple(overrides), tuple(rdates))


def event_slots(event: Event, cats: Categories = NO_CATEGORY_COLOR) -> dict[str, Any]:
    """The mapped content of ``event`` as slot → JSON value."""
    timing = event.timing
    categories = [c for c in event.categories if not (cats.color and c == cats.name)]
    slots: dict[str, Any] = {
        "summary": event.subject,
        "description": event.description,
        "location": event.location,
        "when": {
            "start": when_json(timing.start, timing.tzid),
            "end": when_json(timing.end, timing.end_zone),
        },
        "visibility": "private" if event.is_private else "default",
        "transparency": "transparent" if event.show_as is ShowAs.FREE else "opaque",
        f"ext:{markers.SHOW_AS}": event.show_as.value,
        f"ext:{markers.CATEGORIES}": json.dumps(categories, ensure_ascii=False),
        "attendees": [
            {
                "email": a.email,
                **({"displayName": a.name} if a.name else {}),
                "optional": not a.required,
                "responseStatus": _RESPONSES_OUT[a.status],
            }
            for a in event.attendees[:MAX_ATTENDEES]
        ],
        "recurrence": lines.write_lines(event.recurrence, timing) if event.recurrence else None,
    }
    if cats.color:
        slots["colorId"] = cats.color if cats.name in event.categories else ""
    return slots


def event_body(
    slots: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    cats: Categories = NO_CATEGORY_COLOR,
) -> dict[str, Any]:
    """The JSON to insert (``current`` None) or PATCH for ``slots``; attendees and
    recurrence lines crmsync does not carry, and other private properties, are kept."""
    body: dict[str, Any] = {}
    ext = dict(markers.private(current or {}))
    touched_ext = False
    for slot, value in slots.items():
        if slot.startswith("ext:"):
            ext[slot[4:]] = value
            touched_ext = True
        elif slot == "when":
            body.update(value)
        elif slot == "attendees":
            present = list((current or {}).get("attendees") or ())
            people = [a for a in present if not a.get("resource")]
            kept = [a for a in present if a.get("resource")] + people[MAX_ATTENDEES:]
            carried = {str(a["email"]).lower() for a in value}
            body["attendees"] = value + [
                a for a in kept if str(a.get("email", "")).lower() not in carried
            ]
        elif slot == "recurrence":
            extra = lines.unmapped((current or {}).get("recurrence") or ())
            body["recurrence"] = (value or []) + extra if (value or extra) else None
        elif slot == "colorId":
            if value:
                body["colorId"] = value
            elif current is not None and str(current.get("colorId") or "") == cats.color:
                body["colorId"] = None  # the rep's other colours are theirs to keep
        else:
            body[slot] = value
    if touched_ext:
        # The whole private map: right whether Google merges or replaces it on PATCH.
        body["extendedProperties"] = {"private": ext}
    if current is None and body.get("recurrence") is None:
        body.pop("recurrence", None)
    return body


def original_start(item: Mapping[str, Any]) -> dt.datetime | dt.date | None:
    """The start an exception event replaces (``originalStartTime``), in UTC."""
    try:
        return parse_when(item.get("originalStartTime"))[0]
    except ValueError:
        return None


def instant_key(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()
