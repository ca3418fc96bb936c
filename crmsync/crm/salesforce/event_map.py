"""Salesforce Event rows to crmsync events and back (one row = one event or occurrence).

Pure functions, property-tested. Field facts from the Event object reference
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_event.htm):
instants are UTC; an all-day event's date is ``ActivityDate`` and its last day is
``EndDateTime``'s date (inclusive, so crmsync's exclusive end is one day later [verify in
a dev org]); ``ShowAs`` is Busy / OutOfOffice / Free (no tentative: it is written as Busy);
an event lasts at most 14 days. Salesforce keeps no time zone per event: a single event
reads in its owner's zone, a series in ``Recurrence2PatternTimeZone``. Attendees,
categories and the organiser are not stored on the Event row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from crmsync.crm.salesforce.versions import parse_instant, wire_instant
from crmsync.domain.records import Event, EventTiming, ShowAs
from crmsync.domain.sync import RejectedWrite

MAX_DURATION = dt.timedelta(days=14)
DAY = dt.timedelta(days=1)

SHOW_AS_TO_SF = {
    ShowAs.BUSY: "Busy",
    ShowAs.TENTATIVE: "Busy",
    ShowAs.FREE: "Free",
    ShowAs.OUT_OF_OFFICE: "OutOfOffice",
}
SHOW_AS_FROM_SF = {"Busy": ShowAs.BUSY, "Free": ShowAs.FREE, "OutOfOffice": ShowAs.OUT_OF_OFFICE}

SERIES_FIELDS = [
    "IsRecurrence2",
    "IsRecurrence2Exception",
    "Recurrence2PatternText",
    "Recurrence2PatternStartDate",
    "Recurrence2PatternTimeZone",
]


def event_select(marker: str) -> list[str]:
    return [
        "Id",
        "OwnerId",
        "SystemModstamp",
        "IsDeleted",
        "Subject",
        "Location",
        "Description",
        "StartDateTime",
        "EndDateTime",
        "IsAllDayEvent",
        "ActivityDate",
        "IsPrivate",
        "ShowAs",
        "IsChild",
        "IsRecurrence",
        "RecurrenceActivityId",
        *SERIES_FIELDS,
        marker,
    ]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def row_timing(row: Mapping[str, Any], tzid: str | None) -> EventTiming:
    """When the row happens; raises `ValueError` for a row without its times."""
    if row.get("IsAllDayEvent"):
        start = dt.date.fromisoformat(str(row["ActivityDate"]))
        last = parse_instant(row.get("EndDateTime"))
        end = (last.date() if last else start) + DAY
        return EventTiming(start, max(end, start + DAY))
    start_at = parse_instant(row.get("StartDateTime"))
    end_at = parse_instant(row.get("EndDateTime"))
    if start_at is None or end_at is None:
        raise ValueError("a timed event without StartDateTime or EndDateTime")
    return EventTiming(start_at, end_at, tzid)


def row_event(row: Mapping[str, Any], tzid: str | None) -> Event:
    """A single (non-series) event row as a crmsync event."""
    return Event(
        subject=_text(row.get("Subject")),
        timing=row_timing(row, tzid),
        location=_text(row.get("Location")),
        description=_text(row.get("Description")),
        is_private=bool(row.get("IsPrivate")),
        show_as=SHOW_AS_FROM_SF.get(_text(row.get("ShowAs")), ShowAs.BUSY),
    )


def timing_fields(timing: EventTiming) -> dict[str, Any]:
    """The time fields of a row; raises `RejectedWrite` beyond Salesforce's 14 days."""
    start, end = timing.start, timing.end
    if end - start > MAX_DURATION:
        raise RejectedWrite(
            f"the event lasts {end - start}, longer than Salesforce's 14-day maximum",
            "Shorten the event on the mail server, or keep it out of the CRM "
            "(e.g. with a category the configuration does not sync).",
        )
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return {
            "IsAllDayEvent": False,
            "StartDateTime": wire_instant(start),
            "EndDateTime": wire_instant(end),
        }
    assert isinstance(start, dt.date) and isinstance(end, dt.date)
    last = max(end - DAY, start)
    return {
        "IsAllDayEvent": True,
        "ActivityDate": start.isoformat(),
        "StartDateTime": wire_instant(dt.datetime.combine(start, dt.time(), dt.UTC)),
        "EndDateTime": wire_instant(dt.datetime.combine(last, dt.time(), dt.UTC)),
    }


def content_fields(event: Event) -> dict[str, Any]:
    """The non-time fields an event sets on a row (empty text clears the field)."""
    return {
        "Subject": event.subject or None,
        "Location": event.location or None,
        "Description": event.description or None,
        "IsPrivate": event.is_private,
        "ShowAs": SHOW_AS_TO_SF[event.show_as],
    }


def event_fields(event: Event) -> dict[str, Any]:
    return {**content_fields(event), **timing_fields(event.timing)}
