"""Which IANA zone a TZID names: IANA ids, Windows zone ids and Windows display names.

What a caller may rely on: `iana_candidates` lists the ids a TZID may literally be (itself,
its CLDR translation when it is a Windows zone id, its tail after a vendor prefix);
`named_zone` finds the IANA zone a name that is none of these describes (Outlook's
display names such as ``(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna``),
checked against the item's own definition of it, or against the offset the name states.
A zone is only claimed when it keeps every instant's local time; otherwise ``None``.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from icalendar import Timezone as IcalTimezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from crmsync.groupware.dav.vtimezone import known_zone

_UTC = dt.UTC

# CLDR's Windows table still names some zones by their old IANA ids; these are the current
# names the IANA "backward" file links them to, so the CRM shows today's name.
_CURRENT_IANA = {
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "Europe/Kiev": "Europe/Kyiv",
}
# The zone CLDR chose for each Windows zone: preferred among equivalent ones a name lists.
_PRIMARY = {_CURRENT_IANA.get(z, z): w for w, z in sorted(WINDOWS_TO_OLSON.items())}
_STATED_OFFSET = re.compile(r"\(\s*(?:UTC|GMT)\s*(?:([+-])(\d{1,2}):?(\d{2}))?\s*\)", re.I)
# A matching zone must agree with the item's definition every third day of four years:
# from 2025, or from where the definition starts if later (a generated VTIMEZONE covers
# only some years, as crmsync's own do); fixed, so it never depends on today's date.
_FIRST_YEAR = 2025
_DTSTART_YEAR = re.compile(r"^DTSTART:(\d{4})", re.MULTILINE)


def _samples(definition: str) -> list[dt.datetime]:
    years = [int(y) for y in _DTSTART_YEAR.findall(definition)]
    # The year after its first onset: that onset may be late on the last day of a year.
    first = dt.datetime(max(_FIRST_YEAR, min(years, default=0) + 1), 1, 1, 12, tzinfo=_UTC)
    return [first + dt.timedelta(days=d) for d in range(0, 1461, 3)]


def iana_candidates(tzid: str) -> list[str]:
    """The IANA ids ``tzid`` may literally be, most likely first."""
    name = tzid.strip().strip('"')
    candidates = [_CURRENT_IANA.get(name, name)]
    if name in WINDOWS_TO_OLSON:
        legacy = WINDOWS_TO_OLSON[name]
        candidates.append(_CURRENT_IANA.get(legacy, legacy))
    # Vendor prefixes such as /mozilla.org/20050126_1/America/New_York.
    parts = [p for p in name.split("/") if p]
    candidates += ["/".join(parts[-n:]) for n in (3, 2) if len(parts) > n]
    return candidates


@lru_cache(maxsize=256)
def named_zone(tzid: str, definition: str | None) -> str | None:
    """The IANA zone a descriptive TZID names, agreeing with ``definition`` (the item's
    VTIMEZONE for it, as text) or, without one, with the offset the name states; ``None``
    if none does. Cached: Outlook writes the same few names and definitions into every
    item, and reading a VTIMEZONE's offsets is slow."""
    stated = _stated_offset(tzid)
    expected = None
    samples = _samples(definition or "")
    if definition is not None:
        try:
            defined = IcalTimezone.from_ical(definition).to_tz()
            expected = [t.astimezone(defined).utcoffset() for t in samples]
        except Exception:  # icalendar raises many types on odd VTIMEZONEs
            return None
    for candidate in _hinted(tzid, stated):
        zone = known_zone(candidate)
        if zone is None:
            continue
        if expected is not None:
            if [t.astimezone(zone).utcoffset() for t in samples] == expected:
                return candidate
        elif stated is not None and _standard_offset(zone) == stated:
            return candidate
    return None


def _stated_offset(tzid: str) -> dt.timedelta | None:
    m = _STATED_OFFSET.search(tzid)
    if not m:
        return None
    if m.group(1) is None:
        return dt.timedelta()
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return dt.timedelta(minutes=-minutes if m.group(1) == "-" else minutes)


def _hinted(tzid: str, stated: dt.timedelta | None) -> list[str]:
    """Candidates, best first: zones of the cities the name lists (CLDR's choice first),
    zones of a Windows zone the name spells ("Eastern Time (US & Canada)"), then, for a
    name that states its offset, every CLDR zone."""
    text = " ".join(_STATED_OFFSET.sub(" ", tzid.strip().strip('"')).split())
    cities = [_by_city().get(part.strip().lower()) for part in re.split(r",|;| - ", text)]
    named = sorted(dict.fromkeys(c for c in cities if c), key=lambda z: z not in _PRIMARY)
    lowered = text.lower()
    for windows_id, zone in sorted(WINDOWS_TO_OLSON.items()):
        stem = windows_id.removesuffix(" Standard Time").lower()
        if lowered == stem or lowered.startswith(stem + " time"):
            named.append(_CURRENT_IANA.get(zone, zone))
    if stated is not None:
        named += sorted(_PRIMARY)
    return list(dict.fromkeys(named))


@lru_cache(maxsize=1)
def _by_city() -> dict[str, str]:
    """A city (the last part of a zone id, lower-case, spaces for underscores) → its zone."""
    found: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            city = name.rsplit("/", 1)[1].replace("_", " ").lower()
            found.setdefault(city, _CURRENT_IANA.get(name, name))
    return found


def _standard_offset(zone: ZoneInfo) -> dt.timedelta | None:
    # The smaller of winter's and summer's offset, in either hemisphere (Dublin's IANA
    # entry calls its winter time the negative "daylight" one, so dst() cannot tell).
    offsets = [
        dt.datetime(2027, month, 15, 12, tzinfo=_UTC).astimezone(zone).utcoffset()
        for month in (1, 7)
    ]
    return min(o for o in offsets if o is not None)
