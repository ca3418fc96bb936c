"""VTIMEZONE components generated from the system's IANA zone data (zoneinfo / tzdata).

icalendar 7's ``Timezone.from_tzid`` exists, but reading its source shows it dates each
DAYLIGHT onset at the wall-clock time *after* the change (03:00 for a 02:00 spring-forward
in New York), while RFC 5545 3.6.5 wants the onset in TZOFFSETFROM local time: an hour
off. This module finds the transitions itself and writes them as RDATEs, exact to the
second, for a window of years around the event (older and later instants use the nearest
observance, as every RDATE-style VTIMEZONE does).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmsync.groupware.dav import contentlines as cl

YEARS_BEFORE = 1
YEARS_AFTER = 30
_UTC = dt.UTC


def known_zone(tzid: str) -> ZoneInfo | None:
    """The IANA zone called ``tzid``, or ``None`` when the system has no such zone."""
    if not tzid or tzid.startswith("/") or ".." in tzid:
        return None
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _state(zone: ZoneInfo, instant: dt.datetime) -> tuple[dt.timedelta, str, bool]:
    local = instant.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta()
    return offset, local.tzname() or "", bool(local.dst())


def _transitions(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """UTC instants in [start, end) at which the zone's offset, name or DST flag changes."""
    found: list[dt.datetime] = []
    step = dt.timedelta(days=7)
    t = start
    state = _state(zone, t)
    while t < end:
        nxt = min(t + step, end)
        nxt_state = _state(zone, nxt)
        if nxt_state != state:
            lo, hi = t, nxt  # state(lo) == state, state(hi) differs: bisect to the second
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if _state(zone, mid) == state:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
            state = _state(zone, hi)
            t = hi
            continue
        t = nxt
    return found


def _offset_text(offset: dt.timedelta) -> str:
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    text = f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"
    return text + (f"{seconds % 60:02d}" if seconds % 60 else "")


def _local(instant: dt.datetime, offset: dt.timedelta) -> str:
    return (instant + offset).replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")


@lru_cache(maxsize=256)
def _lines(tzid: str, year: int) -> tuple[str, ...]:
    zone = known_zone(tzid)
    if zone is None:
        raise ValueError(f"unknown time zone {tzid!r}")
    start = dt.datetime(year - YEARS_BEFORE, 1, 1, tzinfo=_UTC)
    end = dt.datetime(year + YEARS_AFTER, 1, 1, tzinfo=_UTC)
    # Observances keyed by (from, to, name, dst), each with its onsets in UTC.
    observances: dict[tuple[dt.timedelta, dt.timedelta, str, bool], list[dt.datetime]] = {}
    offset, name, dst = _state(zone, start)
    observances[(offset, offset, name, dst)] = [start]
    for instant in _transitions(zone, start, end):
        before = _state(zone, instant - dt.timedelta(seconds=1))
        after = _state(zone, instant)
        observances.setdefault((before[0], after[0], after[1], after[2]), []).append(instant)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{cl.escape_text(tzid)}"]
    for (offset_from, offset_to, name, dst), onsets in observances.items():
        kind = "DAYLIGHT" if dst else "STANDARD"
        lines.append(f"BEGIN:{kind}")
        lines.append(f"DTSTART:{_local(onsets[0], offset_from)}")
        for chunk in range(1, len(onsets), 8):
            dates = ",".join(_local(o, offset_from) for o in onsets[chunk : chunk + 8])
            lines.extend(cl.fold(f"RDATE:{dates}"))
        lines.append(f"TZOFFSETFROM:{_offset_text(offset_from)}")
        lines.append(f"TZOFFSETTO:{_offset_text(offset_to)}")
        if name:
            lines.append(f"TZNAME:{cl.escape_text(name)}")
        lines.append(f"END:{kind}")
    lines.append("END:VTIMEZONE")
    return tuple(lines)


def vtimezone(tzid: str, around: dt.date) -> cl.Component:
    """A VTIMEZONE for IANA zone ``tzid`` valid from the year before ``around`` to 30 years
    after; raises `ValueError` for an unknown zone."""
    return cl.parse("\r\n".join(_lines(tzid, around.year)))
