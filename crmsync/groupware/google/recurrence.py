"""A series' ``recurrence`` lines ↔ crmsync's `Recurrence`.

Calendar v3 keeps RFC 5545 lines on the series master: ``RRULE``, ``EXRULE``, ``RDATE``
and ``EXDATE``, with no DTSTART or DTEND (the master's start and end say that)
(https://developers.google.com/workspace/calendar/api/concepts/events-calendars#recurring_events).
Its overridden and cancelled occurrences are separate *exception* events naming the
master in ``recurringEventId`` and the start they replace in ``originalStartTime``; a
cancelled one is, in Google's words, equivalent to an EXDATE. crmsync writes cancelled
occurrences as EXDATE lines (one request with the master) and reads both forms; lines it
does not map (EXRULE) are kept on write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from crmsync.domain.records import EventTiming, Recurrence
from crmsync.groupware.google.times import UTC, MalformedTime, zone

_MAPPED = ("RRULE", "EXDATE", "RDATE")


def _name(line: str) -> str:
    return line.split(":", 1)[0].split(";", 1)[0].strip().upper()


def unmapped(lines: Iterable[str]) -> list[str]:
    """The lines crmsync does not map (kept as they are on write)."""
    return [line for line in lines if _name(line) not in _MAPPED]


def _values(line: str, default_zone: str | None) -> list[dt.datetime | dt.date]:
    head, _, values = line.partition(":")
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    tz = zone(params.get("TZID") or default_zone)
    found: list[dt.datetime | dt.date] = []
    for value in values.split(","):
        value = value.strip()
        if not value:
            continue
        try:
            if params.get("VALUE", "").upper() == "DATE" or len(value) == 8:
                found.append(dt.datetime.strptime(value, "%Y%m%d").date())
            elif value.endswith("Z"):
                found.append(dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
            else:
                local = dt.datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
                found.append(local.astimezone(UTC))
        except ValueError as exc:
            raise MalformedTime(f"bad date in {line!r}") from exc
    return found


def read_lines(
    lines: Sequence[str], tzid: str | None
) -> tuple[str, list[dt.datetime | dt.date], list[dt.datetime | dt.date]]:
    """(rule text, EXDATE values, RDATE values) of a master's lines; times in UTC."""
    rule = ""
    exdates: list[dt.datetime | dt.date] = []
    rdates: list[dt.datetime | dt.date] = []
    for line in lines:
        name = _name(line)
        if name == "RRULE" and not rule:
            rule = line.split(":", 1)[1].strip()
        elif name == "EXDATE":
            exdates += _values(line, tzid)
        elif name == "RDATE":
            rdates += _values(line, tzid)
    return rule, exdates, rdates


def _format(name: str, values: Sequence[dt.datetime | dt.date], tzid: str | None) -> str:
    if not isinstance(values[0], dt.datetime):
        return f"{name};VALUE=DATE:" + ",".join(v.strftime("%Y%m%d") for v in values)
    if not tzid:
        return f"{name}:" + ",".join(
            v.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")  # type: ignore[union-attr]
            for v in values
        )
    tz = zone(tzid)
    return f"{name};TZID={tzid}:" + ",".join(
        v.astimezone(tz).strftime("%Y%m%dT%H%M%S")  # type: ignore[union-attr]
        for v in values
    )


def write_lines(recurrence: Recurrence, timing: EventTiming) -> list[str]:
    """The mapped lines of ``recurrence`` (cancelled occurrences as EXDATE)."""
    lines = [f"RRULE:{recurrence.rule}"] if recurrence.rule else []
    if recurrence.exdates:
        lines.append(_format("EXDATE", recurrence.exdates, timing.tzid))
    if recurrence.rdates:
        lines.append(_format("RDATE", recurrence.rdates, timing.tzid))
    return lines


def same_instant(a: dt.datetime | dt.date, b: dt.datetime | dt.date) -> bool:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.astimezone(UTC) == b.astimezone(UTC)
    return a == b
