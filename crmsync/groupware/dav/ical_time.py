"""The times of iCalendar items: TZIDs, DATE / DATE-TIME values and an event's timing.

What a caller may rely on: a TZID resolves to an IANA zone (IANA names, Windows names
through the CLDR table icalendar ships, vendor-prefixed names, Windows display names: see
`zone_names`) or, failing that, to the item's own VTIMEZONE (reported as no IANA id);
values become UTC instants or dates; floating times are read in the rep's zone. A
DURATION's weeks and days are calendar days in the start's zone, its time exact. A DTEND
with a TZID of its own keeps it (``EventTiming.end_tzid``). Instants are written in their
zone with a TZID, or in UTC where the local time cannot name them.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from icalendar import Timezone as IcalTimezone

from crmsync.domain.records import EventTiming
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MalformedItem
from crmsync.groupware.dav.vtimezone import known_zone
from crmsync.groupware.dav.zone_names import iana_candidates, named_zone

_UTC = dt.UTC


class Zones:
    """Resolves the TZIDs of one resource: IANA names, Windows names, or its VTIMEZONEs."""

    def __init__(self, calendar: cl.Component, floating_zone: str = "UTC") -> None:
        # Floating times (no zone) mean "wherever I am": read in the rep's own zone.
        self.floating_zone = floating_zone
        self.floating = _UTC if floating_zone == "UTC" else ZoneInfo(floating_zone)
        self._defined = {
            cl.unescape_text(c.value("TZID") or ""): c for c in calendar.sub("VTIMEZONE")
        }
        self._cache: dict[str, tuple[dt.tzinfo, str | None]] = {}

    def resolve(self, tzid: str) -> tuple[dt.tzinfo, str | None]:
        """The zone to interpret times in and the IANA id to report (``None`` if unknown)."""
        if tzid not in self._cache:
            self._cache[tzid] = self._lookup(tzid)
        return self._cache[tzid]

    def _lookup(self, tzid: str) -> tuple[dt.tzinfo, str | None]:
        for candidate in iana_candidates(tzid):
            zone = known_zone(candidate)
            if zone is not None:
                return zone, candidate
        definition = self._defined.get(tzid)
        if definition is None:
            # A name that describes its zone (Outlook's "(UTC+01:00) Amsterdam, ...").
            named = named_zone(tzid, None)
            if named is not None:
                return ZoneInfo(named), named
            raise MalformedItem(
                f"TZID {tzid!r} is used but the item has no VTIMEZONE for it",
                "Re-save the event in a client that embeds its time zone, or use an IANA "
                "zone name such as Europe/Paris.",
            )
        text = definition.serialize()
        try:
            zone = IcalTimezone.from_ical(text).to_tz()
        except Exception as exc:  # icalendar raises many types on odd VTIMEZONEs
            raise MalformedItem(
                f"the VTIMEZONE {tzid!r} cannot be interpreted: {exc}",
                "Re-save the event in a client that writes standard time zones.",
            ) from exc
        # Times are read by the item's own definition; the zone is named only when an
        # IANA zone agrees with it (else the instants stay right and the name is lost).
        return zone, named_zone(tzid, text)


def parse_datetime(text: str) -> dt.datetime | dt.date:
    text = text.strip()
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?", text)
    if not m:
        raise ValueError(f"{text!r} is not an iCalendar date or date-time")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if m.group(4) is None:
        return dt.date(y, mo, d)
    value = dt.datetime(y, mo, d, int(m.group(4)), int(m.group(5)), min(int(m.group(6)), 59))
    return value.replace(tzinfo=_UTC) if m.group(7) else value


def instants(prop: cl.Property, zones: Zones) -> tuple[list[dt.datetime | dt.date], str | None]:
    """The values of a DTSTART-like property as UTC datetimes or dates, and its IANA tzid."""
    tzid_param = prop.param("TZID")
    zone: dt.tzinfo | None = None
    iana: str | None = None
    if tzid_param:
        zone, iana = zones.resolve(tzid_param)
    out: list[dt.datetime | dt.date] = []
    for part in prop.value.split(","):
        if not part.strip():
            continue
        try:
            value = parse_datetime(part)
        except ValueError as exc:
            raise MalformedItem(
                f"{prop.name} has a bad value: {exc}",
                f"Re-save the event so {prop.name} holds a date or date-time.",
            ) from exc
        floating = False
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                floating = zone is None
                value = value.replace(tzinfo=zone or zones.floating)
            value = value.astimezone(_UTC)
        out.append(value)
    if not any(isinstance(v, dt.datetime) for v in out):
        return out, None
    if floating:
        return out, None if zones.floating_zone == "UTC" else zones.floating_zone
    return out, (None if zone is None else iana)


def wall_zone(prop: cl.Property, zones: Zones) -> dt.tzinfo:
    """The zone whose wall clock a DTSTART-like value is written in (UTC for a Z time)."""
    if tzid := prop.param("TZID"):
        return zones.resolve(tzid)[0]
    return _UTC if prop.value.strip().upper().endswith("Z") else zones.floating


_DURATION = re.compile(r"([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def add_duration(start: dt.datetime | dt.date, text: str, zone: dt.tzinfo) -> dt.datetime | dt.date:
    """``start`` plus the DURATION ``text``; raises `ValueError` for a bad duration.

    RFC 5545 3.3.6: weeks and days are nominal, so P1D across a DST change is 23 or 25
    hours and ends at the same wall-clock time (in ``zone``, the start's); hours, minutes
    and seconds are exact.
    """
    m = _DURATION.fullmatch(text.strip().upper())
    if not m or text.strip().upper().rstrip("T").endswith("P"):
        raise ValueError(f"{text!r} is not a duration")
    sign = -1 if m.group(1) == "-" else 1
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups()[1:])
    nominal = dt.timedelta(days=sign * (7 * weeks + days))
    exact = dt.timedelta(seconds=sign * (3600 * hours + 60 * minutes + seconds))
    if not isinstance(start, dt.datetime):
        return start + nominal + dt.timedelta(days=exact.days)
    wall = start.astimezone(zone).replace(tzinfo=None) + nominal
    # A wall time in a DST gap takes the offset before the gap (RFC 5545 3.3.5), as
    # zoneinfo does for fold=0.
    return wall.replace(tzinfo=zone).astimezone(_UTC) + exact


def format_instant(value: dt.datetime | dt.date, tzid: str | None) -> tuple[str, dict[str, str]]:
    """Wire text and parameters for a date (VALUE=DATE) or an instant (in ``tzid`` or UTC)."""
    if not isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d"), {"VALUE": "DATE"}
    if tzid:
        local = value.astimezone(ZoneInfo(tzid))
        # The second pass through a repeated hour (DST end) has no local-time spelling:
        # readers take the first (RFC 5545 3.3.5), so such an instant is written in UTC.
        if local.fold == 0 or local.utcoffset() == local.replace(fold=0).utcoffset():
            return local.strftime("%Y%m%dT%H%M%S"), {"TZID": tzid}
    return value.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ"), {}


def set_instant(prop: cl.Property, value: dt.datetime | dt.date, tzid: str | None) -> None:
    text, params = format_instant(value, tzid)
    prop.set_value(text)
    for name in ("TZID", "VALUE"):
        if name in params:
            prop.set_param(name, params[name])
        else:
            prop.remove_param(name)


def new_instant(name: str, value: dt.datetime | dt.date, tzid: str | None) -> cl.Property:
    prop = cl.Property(name, "")
    set_instant(prop, value, tzid)
    return prop


def read_timing(component: cl.Component, zones: Zones, what: str) -> EventTiming:
    start_prop = component.first("DTSTART")
    if start_prop is None:
        raise MalformedItem(
            f"{what} has no DTSTART",
            "Give the event a start time in the calendar, or delete it.",
        )
    starts, tzid = instants(start_prop, zones)
    if len(starts) != 1:
        raise MalformedItem(f"{what} has an empty DTSTART", "Give the event a start time.")
    start = starts[0]
    end_prop = component.first("DTEND")
    duration = component.first("DURATION")
    end_tzid = None
    if end_prop is not None:
        ends, end_zone = instants(end_prop, zones)
        # A start in a repeated hour is written in UTC; the end still names the zone.
        tzid = tzid or end_zone
        if end_prop.param("TZID"):
            end_tzid = end_zone  # a flight ends in another zone than it starts
        if len(ends) != 1:
            raise MalformedItem(f"{what} has an empty DTEND", "Give the event an end time.")
        end = ends[0]
    elif duration is not None:
        try:
            end = add_duration(start, duration.value, wall_zone(start_prop, zones))
        except ValueError as exc:
            raise MalformedItem(
                f"{what} has a bad DURATION {duration.value!r}",
                "Re-save the event with an end time.",
            ) from exc
    else:
        end = start + dt.timedelta(days=1) if not isinstance(start, dt.datetime) else start
    if isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
        raise MalformedItem(
            f"{what} mixes an all-day start with a timed end (or the reverse)",
            "Re-save the event as either all-day or timed.",
        )
    if end < start:  # type: ignore[operator]  # both dates or both datetimes here
        raise MalformedItem(
            f"{what} ends ({end.isoformat()}) before it starts ({start.isoformat()})",
            "Fix the event's end time in the calendar so it is after the start.",
        )
    timed = isinstance(start, dt.datetime)
    return EventTiming(start, end, tzid if timed else None, end_tzid if timed else None)


def date_of(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
