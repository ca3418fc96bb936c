"""RRULE text ↔ Graph's patternedRecurrence
(https://learn.microsoft.com/graph/api/resources/patternedrecurrence).

Graph can hold daily, weekly, absolute/relative monthly and absolute/relative yearly
patterns with an interval, ending on a date, after a count, or never. Rules beyond that
(BYHOUR, several BYMONTHDAY values, hourly ...) raise `Unsupported`. UNTIL becomes the end
date (Graph keeps dates only) and WKST is not carried, which is why the rule text crmsync
wrote is also kept in an extended property and preferred while the pattern still matches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil import rrule as du

_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_CODES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_INDEX_NUM = {v: k for k, v in _INDEX.items()}


class Unsupported(ValueError):
    """A rule Outlook cannot hold."""


def _parse(rule: str) -> dict[str, str]:
    parts = {}
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key:
            parts[key.strip().upper()] = value.strip()
    return parts


def _days(byday: str) -> tuple[list[str], int | None]:
    days, index = [], None
    for item in byday.split(","):
        code = item[-2:].upper()
        prefix = item[:-2]
        if code not in _CODES:
            raise Unsupported(f"BYDAY={byday} is not a weekday list")
        if prefix:
            index = int(prefix)
        days.append(_DAYS[_CODES.index(code)])
    return days, index


def to_graph(rule: str, start: dt.date, tzid: str | None) -> dict[str, Any]:
    """The patternedRecurrence for ``rule`` starting on the local date ``start``."""
    parts = _parse(rule)
    freq = parts.pop("FREQ", "")
    interval = int(parts.pop("INTERVAL", "1"))
    count = parts.pop("COUNT", None)
    until = parts.pop("UNTIL", None)
    parts.pop("WKST", None)
    byday, index = _days(parts.pop("BYDAY")) if "BYDAY" in parts else ([], None)
    setpos = parts.pop("BYSETPOS", None)
    if setpos is not None:
        index = int(setpos)
    monthday = parts.pop("BYMONTHDAY", None)
    month = parts.pop("BYMONTH", None)
    if parts:
        raise Unsupported(f"{';'.join(parts)} cannot be expressed in Outlook")
    if (monthday and "," in monthday) or (month and "," in month):
        raise Unsupported("several BYMONTHDAY/BYMONTH values cannot be expressed in Outlook")
    if index is not None and index not in _INDEX:
        raise Unsupported(f"occurrence index {index} cannot be expressed in Outlook")
    pattern: dict[str, Any] = {"interval": interval}
    if freq == "DAILY" and not byday:
        pattern["type"] = "daily"
    elif freq == "WEEKLY" or (freq == "DAILY" and byday):
        pattern.update(type="weekly", daysOfWeek=byday or [_DAYS[start.weekday()]])
        pattern["firstDayOfWeek"] = "sunday"
    elif freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        if yearly:
            pattern["month"] = int(month or start.month)
        if byday:
            pattern.update(type="relativeYearly" if yearly else "relativeMonthly")
            pattern.update(daysOfWeek=byday, index=_INDEX[index or 1])
        else:
            pattern.update(type="absoluteYearly" if yearly else "absoluteMonthly")
            pattern["dayOfMonth"] = int(monthday or start.day)
    else:
        raise Unsupported(f"FREQ={freq} cannot be expressed in Outlook")
    span: dict[str, Any] = {"startDate": start.isoformat(), "recurrenceTimeZone": tzid or "UTC"}
    if count:
        span.update(type="numbered", numberOfOccurrences=int(count))
    elif until:
        span.update(type="endDate", endDate=dt.date.fromisoformat(until[:8]).isoformat())
    else:
        span["type"] = "noEnd"
    return {"pattern": pattern, "range": span}


def from_graph(recurrence: dict[str, Any]) -> str:
    """The RRULE text of a patternedRecurrence."""
    pattern, span = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = pattern.get("type", "")
    freq = {"daily": "DAILY", "weekly": "WEEKLY"}.get(kind) or (
        "MONTHLY" if "Monthly" in kind else "YEARLY" if "Yearly" in kind else ""
    )
    if not freq:
        raise Unsupported(f"recurrence pattern {kind!r} is unknown")
    parts = [f"FREQ={freq}"]
    interval = int(pattern.get("interval") or 1)
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    if span.get("type") == "numbered":
        parts.append(f"COUNT={int(span.get('numberOfOccurrences') or 1)}")
    elif span.get("type") == "endDate" and span.get("endDate"):
        parts.append("UNTIL=" + str(span["endDate"]).replace("-", ""))
    days = [_CODES[_DAYS.index(d)] for d in pattern.get("daysOfWeek") or ()]
    if kind == "weekly":
        parts.append("BYDAY=" + ",".join(days))
    elif kind.startswith("relative"):
        index = _INDEX_NUM.get(pattern.get("index") or "first", 1)
        if len(days) == 1:
            parts.append(f"BYDAY={index}{days[0]}")
        else:
            parts += ["BYDAY=" + ",".join(days), f"BYSETPOS={index}"]
    if kind.endswith("Yearly"):
        parts.append(f"BYMONTH={int(pattern.get('month') or 1)}")
    if kind.startswith("absolute"):
        parts.append(f"BYMONTHDAY={int(pattern.get('dayOfMonth') or 1)}")
    return ";".join(parts)


def same_pattern(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two patternedRecurrence values describe the same series (ignoring
    defaults Graph fills in)."""

    def norm(value: dict[str, Any]) -> tuple[Any, ...]:
        p, r = value.get("pattern") or {}, value.get("range") or {}
        return (
            p.get("type"),
            int(p.get("interval") or 1),
            tuple(p.get("daysOfWeek") or ()),
            int(p.get("dayOfMonth") or 0) if p.get("type", "").startswith("absolute") else 0,
            int(p.get("month") or 0) if p.get("type", "").endswith("Yearly") else 0,
            p.get("index") or "first" if p.get("type", "").startswith("relative") else "",
            r.get("type"),
            str(r.get("startDate") or "")[:10],
            str(r.get("endDate") or "")[:10] if r.get("type") == "endDate" else "",
            int(r.get("numberOfOccurrences") or 0) if r.get("type") == "numbered" else 0,
        )

    return norm(a) == norm(b)


def occurrences(rule: str, start: dt.datetime, limit: dt.datetime) -> list[dt.datetime]:
    """The starts of the series (``start`` aware, local wall times kept across DST) up
    to ``limit``."""
    tz = start.tzinfo
    naive = start.replace(tzinfo=None)
    parsed = du.rrulestr(_without_tz_until(rule), dtstart=naive)
    result = []
    for when in parsed:
        aware = when.replace(tzinfo=tz)
        if aware > limit:
            break
        result.append(aware)
    return result


def _without_tz_until(rule: str) -> str:
    # dateutil wants a naive UNTIL with a naive DTSTART; Graph's end date is inclusive.
    parts = _parse(rule)
    if "UNTIL" in parts:
        parts["UNTIL"] = parts["UNTIL"][:8] + "T235959"
    return ";".join(f"{k}={v}" for k, v in parts.items())
