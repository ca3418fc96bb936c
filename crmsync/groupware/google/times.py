"""Calendar v3's ``EventDateTime`` (``{date}`` or ``{dateTime, timeZone}``) ↔ crmsync's
instants and dates (https://developers.google.com/workspace/calendar/api/v3/reference/events#start).

``dateTime`` is RFC 3339 with an offset; ``timeZone`` is an IANA name, required for the
start of a recurring event and otherwise optional (Google then shows the calendar's
zone). crmsync writes the wall time in the event's zone with that zone's name, and reads
instants in UTC with the zone name kept; UTC (named or not) is ``None``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any

UTC = dt.UTC
_UTC_NAMES = {"utc", "etc/utc", "gmt", "etc/gmt", "z"}


class MalformedTime(ValueError):
    """A date or time Google sent that crmsync cannot read."""


def zone_name(name: Any) -> str | None:
    """The IANA zone of a ``timeZone`` value; ``None`` for UTC, absent or unknown."""
    if not name or str(name).strip().lower() in _UTC_NAMES:
        return None
    try:
        zoneinfo.ZoneInfo(str(name).strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return str(name).strip()


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name or "UTC")


def parse_when(value: Mapping[str, Any] | None) -> tuple[dt.datetime | dt.date, str | None]:
    """An ``EventDateTime`` as (UTC instant or date, zone name)."""
    if not isinstance(value, Mapping):
        raise MalformedTime("the event has no start or end")
    if value.get("date"):
        try:
            return dt.date.fromisoformat(str(value["date"])), None
        except ValueError as exc:
            raise MalformedTime(f"bad date {value['date']!r}") from exc
    text = str(value.get("dateTime") or "")
    if not text:
        raise MalformedTime("the event has no start or end time")
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedTime(f"bad time {text!r}") from exc
    name = zone_name(value.get("timeZone"))
    if when.tzinfo is None:  # Google always sends an offset; a bare time is in its zone
        when = when.replace(tzinfo=zone(name))
    return when.astimezone(UTC), name


def when_json(value: dt.datetime | dt.date, tzid: str | None) -> dict[str, str]:
    """The ``EventDateTime`` for an instant (written in ``tzid``) or a date."""
    if not isinstance(value, dt.datetime):
        return {"date": value.isoformat()}
    local = value.astimezone(zone(tzid))
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": tzid or "UTC"}


def rfc3339(value: dt.datetime | dt.date) -> str:
    """An instant as RFC 3339 in UTC (query parameters such as ``originalStart``)."""
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
