"""Event ↔ exchangelib `CalendarItem` (the master's own fields; exceptions live in folder.py).

Mapped: subject, start/end with their time zone or all-day dates, location, text body,
sensitivity (Private/Confidential ↔ private), LegacyFreeBusyStatus ↔ show as, categories,
required/optional attendees (at most ``MAX_ATTENDEES``), organizer (read only: Exchange
makes the mailbox owner the organizer; an item without attendees reads as having none, as
iCalendar's ORGANIZER belongs to group-scheduled events only) and the recurrence rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from exchangelib import CalendarItem, EWSDate, EWSDateTime, EWSTimeZone
from exchangelib.properties import Attendee as EwsAttendee
from exchangelib.properties import Mailbox

from crmsync.domain.records import (
    MAX_ATTENDEES,
    Attendee,
    AttendeeStatus,
    Event,
    EventTiming,
    Recurrence,
    ShowAs,
)
from crmsync.groupware.ews import recurrence as rr
from crmsync.groupware.ews.text import body_text

log = logging.getLogger(__name__)

SHOW_AS = {
    ShowAs.BUSY: "Busy",
    ShowAs.FREE: "Free",
    ShowAs.TENTATIVE: "Tentative",
    ShowAs.OUT_OF_OFFICE: "OOF",
}
_SHOW_AS_BACK = {v: k for k, v in SHOW_AS.items()}
RESPONSES = {
    AttendeeStatus.ACCEPTED: "Accept",
    AttendeeStatus.DECLINED: "Decline",
    AttendeeStatus.TENTATIVE: "Tentative",
    AttendeeStatus.NEEDS_ACTION: "NoResponseReceived",
    # EWS's ResponseType has no delegation; read back, "Unknown" is needs-action.
    AttendeeStatus.DELEGATED: "Unknown",
}
_RESPONSES_BACK = {v: k for k, v in RESPONSES.items() if k is not AttendeeStatus.DELEGATED}
UTC_IDS = {"UTC", "Etc/UTC", "GMT", "Etc/GMT"}


class UnreadableEvent(ValueError):
    """The item cannot be mapped (e.g. no start); the message says why."""


def zone_id(tz: Any) -> str | None:
    """The IANA zone of an exchangelib time zone, ``None`` for UTC or unknown."""
    key = getattr(tz, "key", None)
    return None if not key or key in UTC_IDS else key


def timing_of(item: CalendarItem) -> EventTiming:
    start, end = item.start, item.end
    if start is None or end is None:
        raise UnreadableEvent("the event has no start or end")
    if item.is_all_day:
        s = dt.date(start.year, start.month, start.day)
        e = dt.date(end.year, end.month, end.day) + dt.timedelta(days=1)
        if e <= s:
            raise UnreadableEvent("the all-day event ends before it starts")
        return EventTiming(s, e)
    s_utc = dt.datetime.fromtimestamp(start.timestamp(), dt.UTC)
    e_utc = dt.datetime.fromtimestamp(end.timestamp(), dt.UTC)
    if e_utc < s_utc:
        raise UnreadableEvent("the event ends before it starts")
    end_zone = getattr(item, "_end_timezone", None)
    return EventTiming(
        s_utc,
        e_utc,
        zone_id(item._start_timezone),
        # An end in another zone (a flight); absent or equal, the start's zone applies.
        zone_id(end_zone) if end_zone is not None else None,
    )


def to_event(item: CalendarItem) -> tuple[Event, str | None]:
    """The master's event (without exceptions) and, when its pattern cannot be read, a note."""
    timing = timing_of(item)
    attendees: list[Attendee] = []
    for required, group in ((True, item.required_attendees), (False, item.optional_attendees)):
        for a in group or ():
            if a.mailbox is None or not a.mailbox.email_address:
                continue
            status = _RESPONSES_BACK.get(a.response_type or "", AttendeeStatus.NEEDS_ACTION)
            attendees.append(
                Attendee(a.mailbox.email_address, a.mailbox.name or "", status, required)
            )
    attendees = attendees[:MAX_ATTENDEES]
    organizer = ""
    if attendees and item.organizer is not None:
        organizer = item.organizer.email_address or ""
    recurrence = None
    note = None
    if item.recurrence is not None:
        rule = rr.from_ews(item.recurrence, rr.local(timing.start, timing.tzid))
        if rule is None:
            note = (
                f"the recurrence pattern {type(item.recurrence.pattern).__name__} has no RRULE "
                "equivalent; only the first occurrence syncs"
            )
        else:
            recurrence = Recurrence(rule)
    event = Event(
        subject=item.subject or "",
        timing=timing,
        location=item.location or "",
        description=body_text(item.body),
        is_private=item.sensitivity in ("Private", "Confidential"),
        show_as=_SHOW_AS_BACK.get(item.legacy_free_busy_status or "Busy", ShowAs.BUSY),
        categories=tuple(item.categories or ()),
        attendees=tuple(attendees),
        organizer=organizer,
        recurrence=recurrence,
    )
    return event, note


def ews_zone(tzid: str | None) -> EWSTimeZone:
    return EWSTimeZone(tzid or "UTC")


def set_timing(item: CalendarItem, timing: EventTiming, default_zone: EWSTimeZone) -> None:
    if timing.all_day:
        item.is_all_day = True
        item._start_timezone = default_zone
        item._end_timezone = default_zone
        item.start = EWSDate.from_date(timing.start)  # type: ignore[arg-type]
        item.end = EWSDate.from_date(timing.end - dt.timedelta(days=1))  # type: ignore[arg-type,operator]
        return
    zone, end_zone = ews_zone(timing.tzid), ews_zone(timing.end_zone)
    item.is_all_day = False
    item._start_timezone = zone
    item._end_timezone = end_zone
    item.start = EWSDateTime.from_datetime(timing.start).astimezone(zone)  # type: ignore[arg-type]
    item.end = EWSDateTime.from_datetime(timing.end).astimezone(end_zone)  # type: ignore[arg-type]


def _attendees(attendees: tuple[Attendee, ...], required: bool) -> list[EwsAttendee] | None:
    chosen = [a for a in attendees[:MAX_ATTENDEES] if a.required is required]
    return [
        EwsAttendee(
            mailbox=Mailbox(email_address=a.email, name=a.name or None),
            response_type=RESPONSES[a.status],
        )
        for a in chosen
    ] or None


def apply_event(
    item: CalendarItem, old: Event | None, new: Event, default_zone: EWSTimeZone
) -> list[str]:
    """Set on ``item`` the master fields of ``new`` that differ from ``old`` (``None``: all);
    returns the exchangelib field names changed. Raises `rr.Inexpressible`."""
    changed: list[str] = []

    def differs(name: str) -> bool:
        return old is None or getattr(old, name) != getattr(new, name)

    if differs("subject"):
        item.subject = new.subject
        changed.append("subject")
    if differs("timing"):
        set_timing(item, new.timing, default_zone)
        changed += ["start", "end", "is_all_day"]
    if differs("location"):
        item.location = new.location or None
        changed.append("location")
    if differs("description"):
        item.body = new.description or None
        changed.append("body")
    if differs("is_private"):
        item.sensitivity = "Private" if new.is_private else "Normal"
        changed.append("sensitivity")
    if differs("show_as"):
        item.legacy_free_busy_status = SHOW_AS[new.show_as]
        changed.append("legacy_free_busy_status")
    if differs("categories"):
        item.categories = list(new.categories) or None
        changed.append("categories")
    if differs("attendees"):
        item.required_attendees = _attendees(new.attendees, True)
        item.optional_attendees = _attendees(new.attendees, False)
        changed += ["required_attendees", "optional_attendees"]
    old_rule = old.recurrence.rule if old and old.recurrence else None
    new_rule = new.recurrence.rule if new.recurrence else None
    if old is None or old_rule != new_rule or (new_rule and differs("timing")):
        if new_rule:
            local_start = rr.local(new.timing.start, new.timing.tzid)
            item.recurrence = rr.to_ews(new_rule, local_start)
        else:
            item.recurrence = None
        if old is not None or new_rule:
            changed.append("recurrence")
    return changed


def written_event(record: Event, owner: str) -> Event:
    """What reading back an event written from ``record`` gives (organizer, rule text)."""

    organizer = owner if record.attendees[:MAX_ATTENDEES] else ""
    recurrence = record.recurrence
    if recurrence is not None and recurrence.rule:
        rule = rr.canonical(recurrence.rule, rr.local(record.timing.start, record.timing.tzid))
        recurrence = dataclasses.replace(recurrence, rule=rule, rdates=())
    return dataclasses.replace(
        record,
        attendees=record.attendees[:MAX_ATTENDEES],
        organizer=organizer,
        recurrence=recurrence,
    )
