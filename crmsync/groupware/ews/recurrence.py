"""RRULE text ↔ EWS recurrence patterns, for the patterns both can express.

EWS knows daily, weekly (days of week), absolute/relative monthly and yearly patterns,
ending after a count, on a date or never. An RRULE outside that (BYHOUR, BYSETPOS lists,
HOURLY, several month days ...) raises `Inexpressible` on write; a pattern EWS holds that
we cannot express (task regeneration patterns) reads as no recurrence (the caller notes it).
Occurrences are addressed by 1-based instance index in the pattern, which `instance_index`
computes from an original start with dateutil.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# exchangelib numbers weekdays 1 (Monday) .. 7 (Sunday) and week numbers 1..4, 5 = last.
_ORDINALS = {1: 1, 2: 2, 3: 3, 4: 4, -1: 5}


class Inexpressible(ValueError):
    """An RRULE that EWS cannot hold."""


def parse_rule(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in rule.strip().removeprefix("RRULE:").split(";"):
        if part:
            key, _, value = part.partition("=")
            parts[key.upper()] = value.upper()
    return parts


def _weekday(code: str) -> tuple[int, int]:
    """(ordinal or 0, exchangelib weekday) of a BYDAY entry like ``MO`` or ``-1FR``."""
    day = code[-2:]
    if day not in DAYS:
        raise Inexpressible(f"BYDAY {code!r}")
    ordinal = int(code[:-2]) if code[:-2] else 0
    return ordinal, DAYS.index(day) + 1


def _until_date(value: str, zone: dt.tzinfo) -> dt.date:
    if "T" not in value:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    instant = dt.datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        return instant.replace(tzinfo=dt.UTC).astimezone(zone).date()
    return instant.date()


def to_ews(rule: str, local_start: dt.datetime | dt.date) -> Recurrence:
    """The EWS recurrence for ``rule`` starting at ``local_start`` (in the event's zone)."""
    parts = parse_rule(rule)
    supported = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST"}
    if unknown := set(parts) - supported:
        raise Inexpressible(f"Exchange cannot hold the recurrence parts {sorted(unknown)}")
    start = local_start.date() if isinstance(local_start, dt.datetime) else local_start
    zone = local_start.tzinfo if isinstance(local_start, dt.datetime) else dt.UTC
    interval = int(parts.get("INTERVAL", "1"))
    days = [_weekday(d) for d in parts["BYDAY"].split(",")] if "BYDAY" in parts else []
    monthday = parts.get("BYMONTHDAY")
    if monthday and ("," in monthday or int(monthday) < 1):
        raise Inexpressible(f"BYMONTHDAY={monthday}")
    month = parts.get("BYMONTH")
    if month and "," in month:
        raise Inexpressible(f"BYMONTH={month}")
    freq = parts.get("FREQ")
    pattern: object
    if freq == "DAILY" and not days and not monthday and not month:
        pattern = DailyPattern(interval=interval)
    elif freq == "WEEKLY" and not monthday and not month and all(o == 0 for o, _ in days):
        weekdays = [w for _, w in days] or [start.isoweekday()]
        pattern = WeeklyPattern(interval=interval, weekdays=weekdays, first_day_of_week=1)
    elif freq in ("MONTHLY", "YEARLY") and days:
        if len(days) != 1 or days[0][0] not in _ORDINALS or monthday:
            raise Inexpressible(f"BYDAY={parts['BYDAY']} in a {freq.lower()} rule")
        ordinal, weekday = days[0]
        if freq == "MONTHLY":
            pattern = RelativeMonthlyPattern(
                interval=interval, weekday=weekday, week_number=_ORDINALS[ordinal]
            )
        elif interval == 1:
            pattern = RelativeYearlyPattern(
                weekday=weekday,
                week_number=_ORDINALS[ordinal],
                month=int(month or start.month),
            )
        else:
            raise Inexpressible("a yearly rule with an interval")
    elif freq == "MONTHLY" and not month:
        pattern = AbsoluteMonthlyPattern(interval=interval, day_of_month=int(monthday or start.day))
    elif freq == "YEARLY" and interval == 1:
        pattern = AbsoluteYearlyPattern(
            day_of_month=int(monthday or start.day), month=int(month or start.month)
        )
    else:
        raise Inexpressible(f"the rule {rule!r}")
    if "COUNT" in parts:
        boundary: object = NumberedPattern(start=start, number=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        boundary = EndDatePattern(start=start, end=_until_date(parts["UNTIL"], zone))
    else:
        boundary = NoEndPattern(start=start)
    return Recurrence(pattern=pattern, boundary=boundary)


def _ordinal_text(week_number: int) -> str:
    return "-1" if week_number == 5 else str(week_number)


def _weekday_codes(value: object) -> list[str]:
    days = value if isinstance(value, list | tuple) else [value]
    return [DAYS[int(d) - 1] for d in days]  # type: ignore[call-overload]


def from_ews(recurrence: Recurrence, local_start: dt.datetime | dt.date) -> str | None:
    """The RRULE text of an EWS recurrence; ``None`` when it has no RRULE equivalent."""
    p = recurrence.pattern
    parts: list[str] = []
    by: list[str] = []
    if isinstance(p, DailyPattern):
        parts.append("FREQ=DAILY")
    elif isinstance(p, WeeklyPattern):
        parts.append("FREQ=WEEKLY")
        by.append("BYDAY=" + ",".join(_weekday_codes(p.weekdays)))
    elif isinstance(p, AbsoluteMonthlyPattern):
        parts.append("FREQ=MONTHLY")
        by.append(f"BYMONTHDAY={p.day_of_month}")
    elif isinstance(p, RelativeMonthlyPattern):
        parts.append("FREQ=MONTHLY")
        day = _weekday_codes(p.weekday)[0]
        by.append(f"BYDAY={_ordinal_text(p.week_number)}{day}")
    elif isinstance(p, AbsoluteYearlyPattern):
        parts.append("FREQ=YEARLY")
        by.extend((f"BYMONTH={p.month}", f"BYMONTHDAY={p.day_of_month}"))
    elif isinstance(p, RelativeYearlyPattern):
        parts.append("FREQ=YEARLY")
        day = _weekday_codes(p.weekday)[0]
        by.extend((f"BYMONTH={p.month}", f"BYDAY={_ordinal_text(p.week_number)}{day}"))
    else:
        return None
    b = recurrence.boundary
    if isinstance(b, NumberedPattern):
        parts.append(f"COUNT={b.number}")
    elif isinstance(b, EndDatePattern):
        end = dt.date(b.end.year, b.end.month, b.end.day)
        if isinstance(local_start, dt.datetime):
            last = dt.datetime.combine(end, local_start.timetz())
            parts.append("UNTIL=" + last.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
        else:
            parts.append("UNTIL=" + end.strftime("%Y%m%d"))
    interval = getattr(p, "interval", 1) or 1
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    return ";".join(parts + by)


def canonical(rule: str, local_start: dt.datetime | dt.date) -> str:
    """How ``rule`` reads back after a round trip through Exchange."""
    text = from_ews(to_ews(rule, local_start), local_start)
    assert text is not None
    return rule if parse_rule(rule) == parse_rule(text) else text


def local(instant: dt.datetime | dt.date, tzid: str | None) -> dt.datetime | dt.date:
    if isinstance(instant, dt.datetime):
        return instant.astimezone(ZoneInfo(tzid or "UTC"))
    return instant


def instance_index(
    rule: str, start: dt.datetime | dt.date, tzid: str | None, original: dt.datetime | dt.date
) -> int | None:
    """The 1-based position of ``original`` in the series, ``None`` if it is not in it."""
    if isinstance(start, dt.datetime):
        first = local(start, tzid)
        assert isinstance(first, dt.datetime)
        target = original if isinstance(original, dt.datetime) else None
        naive_first = first.replace(tzinfo=None)
    else:
        naive_first = dt.datetime.combine(start, dt.time())
        target = None
    rules = rrulestr(rule, dtstart=naive_first)
    for n, occurrence in enumerate(rules, start=1):
        if target is not None:
            at = occurrence.replace(tzinfo=first.tzinfo)  # type: ignore[union-attr]
            if at == target:
                return n
            if at > target:
                return None
        else:
            day = occurrence.date()
            if day == original:
                return n
            if day > original:  # type: ignore[operator]
                return None
        if n > 10000:
            return None
    return None
