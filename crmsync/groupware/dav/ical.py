"""iCalendar resources (VCALENDAR with VEVENTs) ↔ `Event`, changing only mapped lines.

Mapping (what a caller may rely on): the master VEVENT (no RECURRENCE-ID) gives the event;
other VEVENTs of the same UID are `Recurrence.overrides`, except cancelled ones
(STATUS:CANCELLED), which join EXDATE in exdates; RDATE → rdates; RRULE as text (an
unknown FREQ is malformed). At most `MAX_ATTENDEES` attendees are read; the rest stay.
DTSTART/DTEND (or DURATION) with a TZID become UTC instants plus the IANA ``tzid``
(Windows names are translated with the CLDR table icalendar ships); VALUE=DATE gives
all-day dates (end exclusive, a missing end is one day); floating times are read in the
rep's zone (``floating_zone``) and stay floating until their timing changes. SUMMARY,
LOCATION, DESCRIPTION, CLASS (PRIVATE / CONFIDENTIAL → private), TRANSP and
X-MICROSOFT-CDO-BUSYSTATUS (→ show_as), CATEGORIES, ATTENDEE (mailto, CN, PARTSTAT,
ROLE), ORGANIZER; the marker lives in ``X-CRMSYNC-CRM-ID``. An update keeps VALARMs,
unknown properties, attendee parameters and every line whose field did not change; a new
zone gets a generated VTIMEZONE.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from icalendar import Timezone as IcalTimezone
from icalendar.prop import vDuration, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from crmsync.domain.records import (
    MAX_ATTENDEES,
    Attendee,
    AttendeeStatus,
    Event,
    EventTiming,
    Occurrence,
    Record,
    Recurrence,
    ShowAs,
)
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MARKER_PROPERTY, MalformedItem, ParsedItem
from crmsync.groupware.dav.multistatus import CALDAV, tag
from crmsync.groupware.dav.vtimezone import known_zone, vtimezone

_UTC = dt.UTC
PRODID = "-//crmsync//crmsync//EN"
_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OUT_OF_OFFICE,
}
_BUSY_STATUS_OUT = {v: k for k, v in _BUSY_STATUS.items()}
_PARTSTAT = {
    "ACCEPTED": AttendeeStatus.ACCEPTED,
    "DECLINED": AttendeeStatus.DECLINED,
    "TENTATIVE": AttendeeStatus.TENTATIVE,
    "NEEDS-ACTION": AttendeeStatus.NEEDS_ACTION,
}
_PARTSTAT_OUT = {v: k for k, v in _PARTSTAT.items()}


class OutOfScope(MalformedItem):
    """The resource holds no event (a task, a journal): not synced, not an error."""


# ---------------------------------------------------------------- time zones and values


class _Zones:
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
        for candidate in _iana_candidates(tzid):
            zone = known_zone(candidate)
            if zone is not None:
                return zone, candidate
        definition = self._defined.get(tzid)
        if definition is None:
            raise MalformedItem(
                f"TZID {tzid!r} is used but the item has no VTIMEZONE for it",
                "Re-save the event in a client that embeds its time zone, or use an IANA "
                "zone name such as Europe/Paris.",
            )
        try:
            zone = IcalTimezone.from_ical(definition.serialize()).to_tz()
        except Exception as exc:  # icalendar raises many types on odd VTIMEZONEs
            raise MalformedItem(
                f"the VTIMEZONE {tzid!r} cannot be interpreted: {exc}",
                "Re-save the event in a client that writes standard time zones.",
            ) from exc
        return zone, None


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


def _iana_candidates(tzid: str) -> list[str]:
    name = tzid.strip().strip('"')
    candidates = [_CURRENT_IANA.get(name, name)]
    if name in WINDOWS_TO_OLSON:
        legacy = WINDOWS_TO_OLSON[name]
        candidates.append(_CURRENT_IANA.get(legacy, legacy))
    # Vendor prefixes such as /mozilla.org/20050126_1/America/New_York.
    parts = [p for p in name.split("/") if p]
    candidates += ["/".join(parts[-n:]) for n in (3, 2) if len(parts) > n]
    return candidates


def _parse_datetime(text: str) -> dt.datetime | dt.date:
    text = text.strip()
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?", text)
    if not m:
        raise ValueError(f"{text!r} is not an iCalendar date or date-time")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if m.group(4) is None:
        return dt.date(y, mo, d)
    value = dt.datetime(y, mo, d, int(m.group(4)), int(m.group(5)), min(int(m.group(6)), 59))
    return value.replace(tzinfo=_UTC) if m.group(7) else value


def _instants(prop: cl.Property, zones: _Zones) -> tuple[list[dt.datetime | dt.date], str | None]:
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
            value = _parse_datetime(part)
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


def _format_instant(value: dt.datetime | dt.date, tzid: str | None) -> tuple[str, dict[str, str]]:
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


def _set_instant(prop: cl.Property, value: dt.datetime | dt.date, tzid: str | None) -> None:
    text, params = _format_instant(value, tzid)
    prop.set_value(text)
    for name in ("TZID", "VALUE"):
        if name in params:
            prop.set_param(name, params[name])
        else:
            prop.remove_param(name)


def _new_instant(name: str, value: dt.datetime | dt.date, tzid: str | None) -> cl.Property:
    prop = cl.Property(name, "")
    _set_instant(prop, value, tzid)
    return prop


# ---------------------------------------------------------------- reading


def _text(component: cl.Component, name: str) -> str:
    value = component.value(name)
    return "" if value is None else cl.unescape_text(value)


def _mail(value: str) -> str:
    value = cl.unescape_text(value.strip())
    return value[7:] if value.lower().startswith("mailto:") else value


def _timing(component: cl.Component, zones: _Zones, what: str) -> EventTiming:
    start_prop = component.first("DTSTART")
    if start_prop is None:
        raise MalformedItem(
            f"{what} has no DTSTART",
            "Give the event a start time in the calendar, or delete it.",
        )
    starts, tzid = _instants(start_prop, zones)
    if len(starts) != 1:
        raise MalformedItem(f"{what} has an empty DTSTART", "Give the event a start time.")
    start = starts[0]
    end_prop = component.first("DTEND")
    duration = component.first("DURATION")
    if end_prop is not None:
        ends, end_tzid = _instants(end_prop, zones)
        # A start in a repeated hour is written in UTC; the end still names the zone.
        tzid = tzid or end_tzid
        if len(ends) != 1:
            raise MalformedItem(f"{what} has an empty DTEND", "Give the event an end time.")
        end = ends[0]
    elif duration is not None:
        try:
            delta = vDuration.from_ical(duration.value.strip())
        except ValueError as exc:
            raise MalformedItem(
                f"{what} has a bad DURATION {duration.value!r}",
                "Re-save the event with an end time.",
            ) from exc
        end = start + delta
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
    return EventTiming(start, end, tzid if isinstance(start, dt.datetime) else None)


def _show_as(vevent: cl.Component) -> ShowAs:
    status = (vevent.value("X-MICROSOFT-CDO-BUSYSTATUS") or "").strip().upper()
    if status in _BUSY_STATUS:
        return _BUSY_STATUS[status]
    if (vevent.value("TRANSP") or "").strip().upper() == "TRANSPARENT":
        return ShowAs.FREE
    return ShowAs.BUSY


def _attendee(prop: cl.Property) -> Attendee:
    role = (prop.param("ROLE") or "").upper()
    return Attendee(
        email=_mail(prop.value),
        name=prop.param("CN") or "",
        status=_PARTSTAT.get((prop.param("PARTSTAT") or "").upper(), AttendeeStatus.NEEDS_ACTION),
        required=role not in ("OPT-PARTICIPANT", "NON-PARTICIPANT"),
    )


def _categories(vevent: cl.Component) -> tuple[str, ...]:
    return tuple(
        cl.unescape_text(part)
        for prop in vevent.all("CATEGORIES")
        for part in cl.split_unescaped(prop.value, ",")
        if part
    )


def _rid(vevent: cl.Component, zones: _Zones) -> dt.datetime | dt.date:
    prop = vevent.first("RECURRENCE-ID")
    assert prop is not None
    values, _ = _instants(prop, zones)
    if len(values) != 1:
        raise MalformedItem("a RECURRENCE-ID is empty", "Re-save the recurring event.")
    return values[0]


def _structure(calendar: cl.Component) -> tuple[cl.Component, list[cl.Component]]:
    """The master VEVENT and the override VEVENTs; raises `MalformedItem` on bad structure."""
    if calendar.name != "VCALENDAR":
        raise MalformedItem(
            f"the item is a {calendar.name}, not a VCALENDAR",
            "Remove this item from the calendar or replace it with an iCalendar event.",
        )
    vevents = calendar.sub("VEVENT")
    if not vevents:
        kinds = sorted({c.name for c in calendar.components if c.name != "VTIMEZONE"})
        if kinds:
            raise OutOfScope(f"the item holds {', '.join(kinds)}, no event", "")
        raise MalformedItem(
            "the VCALENDAR holds no VEVENT", "Delete this empty item from the calendar."
        )
    uids = []
    for vevent in vevents:
        uid = vevent.value("UID")
        if uid is None or not uid.strip():
            raise MalformedItem(
                "a VEVENT has no UID",
                "Re-save the event in a client that gives events a UID (every CalDAV "
                "client does), or delete it.",
            )
        uids.append(cl.unescape_text(uid))
    if len(set(uids)) > 1:
        raise MalformedItem(
            f"one resource holds events with different UIDs ({', '.join(sorted(set(uids)))})",
            "Split the resource so each event (UID) is stored in its own item.",
        )
    masters = [v for v in vevents if v.first("RECURRENCE-ID") is None]
    if len(masters) != 1:
        found = "no VEVENT" if not masters else f"{len(masters)} VEVENTs"
        raise MalformedItem(
            f"the resource has {found} without RECURRENCE-ID; exactly one master is needed",
            "Open the series in a calendar client and re-save it, or delete the stray occurrences.",
        )
    return masters[0], [v for v in vevents if v.first("RECURRENCE-ID") is not None]


def _read(calendar: cl.Component, zones: _Zones) -> Event:
    master, overrides = _structure(calendar)
    timing = _timing(master, zones, "the event")
    recurrence = None
    rule = master.value("RRULE")
    if rule is not None:
        _check_rule(rule)
    rdates = _dates_of(master, "RDATE", zones)
    if rule is not None or overrides or rdates:
        exdates = _dates_of(master, "EXDATE", zones)
        occurrences = []
        for vevent in overrides:
            rid = _rid(vevent, zones)
            if _cancelled(vevent):
                # A cancelled instance means what an EXDATE means (Google writes it so).
                if rid not in exdates:
                    exdates.append(rid)
                continue
            occurrences.append(
                Occurrence(
                    recurrence_id=rid,
                    timing=_timing(vevent, zones, f"the occurrence of {rid.isoformat()}"),
                    subject=_text(vevent, "SUMMARY"),
                    location=_text(vevent, "LOCATION"),
                    description=_text(vevent, "DESCRIPTION"),
                )
            )
        recurrence = Recurrence(
            rule=(rule or "").strip(),
            exdates=tuple(exdates),
            overrides=tuple(occurrences),
            rdates=tuple(rdates),
        )
    organizer = master.value("ORGANIZER")
    return Event(
        subject=_text(master, "SUMMARY"),
        timing=timing,
        location=_text(master, "LOCATION"),
        description=_text(master, "DESCRIPTION"),
        is_private=(master.value("CLASS") or "").strip().upper() in ("PRIVATE", "CONFIDENTIAL"),
        show_as=_show_as(master),
        categories=_categories(master),
        attendees=tuple(_attendee(p) for p in master.all("ATTENDEE")[:MAX_ATTENDEES]),
        organizer=_mail(organizer) if organizer is not None else "",
        recurrence=recurrence,
    )


def _dates_of(component: cl.Component, name: str, zones: _Zones) -> list[dt.datetime | dt.date]:
    found: list[dt.datetime | dt.date] = []
    for prop in component.all(name):
        if (prop.param("VALUE") or "").upper() == "PERIOD":
            # RDATE;VALUE=PERIOD:start/end: the instance starts at each period's start.
            prop = cl.Property(
                name,
                ",".join(p.split("/")[0] for p in prop.value.split(",")),
                [q for q in prop.params if q.name != "VALUE"],
            )
        found.extend(_instants(prop, zones)[0])
    return found


def _cancelled(vevent: cl.Component) -> bool:
    return (vevent.value("STATUS") or "").strip().upper() == "CANCELLED"


_FREQUENCIES = {"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


def _check_rule(rule: str) -> None:
    """Refuse an RRULE no calendar can expand (the rest is checked by the library)."""
    parts = dict(p.partition("=")[::2] for p in rule.strip().split(";") if p)
    freq = parts.get("FREQ", "").upper()
    problem = None
    if freq not in _FREQUENCIES:
        problem = f"the RRULE has FREQ={freq or '(none)'}, which is not a frequency"
    else:
        try:
            vRecur.from_ical(rule.strip())
        except ValueError as exc:
            problem = f"the RRULE {rule.strip()!r} cannot be read: {exc}"
    if problem:
        raise MalformedItem(
            problem, "Open the series in a calendar client and set its repeat again."
        )


def _parse_tree(text: str) -> cl.Component:
    try:
        return cl.parse(text)
    except cl.ContentLineError as exc:
        raise MalformedItem(
            f"the iCalendar text cannot be read: {exc}",
            "Re-save the event in a calendar client, or delete it.",
        ) from exc


def parse_ical(text: str, floating_zone: str = "UTC") -> ParsedItem[Event]:
    """The event a VCALENDAR holds, floating times read in ``floating_zone``; raises
    `MalformedItem` (or `OutOfScope` for a resource without events) with a precise
    message."""
    calendar = _parse_tree(text)
    event = _read(calendar, _Zones(calendar, floating_zone))
    master, _ = _structure(calendar)
    marker = master.value(MARKER_PROPERTY)
    return ParsedItem(
        event,
        cl.unescape_text(marker) if marker is not None else None,
        cl.unescape_text(master.value("UID") or ""),
    )


# ---------------------------------------------------------------- writing


def _ensure_zone(calendar: cl.Component, tzid: str | None, around: dt.date) -> None:
    if not tzid:
        return
    defined = {cl.unescape_text(c.value("TZID") or "") for c in calendar.sub("VTIMEZONE")}
    if tzid in defined:
        return
    first_event = next((c for c in calendar.components if c.name != "VTIMEZONE"), None)
    calendar.add(vtimezone(tzid, around), before=first_event)


def _set_text(component: cl.Component, name: str, old: str, new: str) -> None:
    if old == new:
        return
    if new:
        component.set(name, cl.escape_text(new))
    else:
        component.remove_all(name)


def _apply_timing(
    calendar: cl.Component, vevent: cl.Component, old: EventTiming | None, new: EventTiming
) -> None:
    if old == new:
        return
    tzid = new.tzid if isinstance(new.start, dt.datetime) else None
    _ensure_zone(calendar, tzid, _date_of(new.start))
    for name, value in (("DTSTART", new.start), ("DTEND", new.end)):
        prop = vevent.first(name)
        if prop is None:
            vevent.add(_new_instant(name, value, tzid))
        else:
            _set_instant(prop, value, tzid)
    vevent.remove_all("DURATION")


def _date_of(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _apply_attendees(vevent: cl.Component, old: Event, new: Event) -> None:
    if old.attendees == new.attendees:
        return
    # Attendees past the cap were never carried: they stay, after the carried ones.
    carried = vevent.all("ATTENDEE")[:MAX_ATTENDEES]
    beyond = vevent.all("ATTENDEE")[MAX_ATTENDEES:]
    existing = {_mail(p.value).lower(): p for p in carried}
    wanted: list[cl.Property] = []
    for attendee in new.attendees:
        prop = existing.pop(attendee.email.lower(), None)
        if prop is None:
            prop = cl.Property("ATTENDEE", "mailto:" + cl.escape_text(attendee.email))
        elif _mail(prop.value) != attendee.email:
            prop.set_value("mailto:" + cl.escape_text(attendee.email))
        current = _attendee(prop)
        if current.name != attendee.name:
            if attendee.name:
                prop.set_param("CN", attendee.name)
            else:
                prop.remove_param("CN")
        if current.status != attendee.status:
            prop.set_param("PARTSTAT", _PARTSTAT_OUT[attendee.status])
        if current.required != attendee.required or prop.param("ROLE") is None:
            prop.set_param("ROLE", "REQ-PARTICIPANT" if attendee.required else "OPT-PARTICIPANT")
        wanted.append(prop)
    # Keep the attendees' lines where they were, in the record's order.
    slots = [
        i
        for i, c in enumerate(vevent.children)
        if isinstance(c, cl.Property) and c.name == "ATTENDEE"
    ]
    remaining = [
        c for c in vevent.children if not (isinstance(c, cl.Property) and c.name == "ATTENDEE")
    ]
    at = slots[0] if slots else len([c for c in vevent.children if isinstance(c, cl.Property)])
    at = min(at, len(remaining))
    wanted_emails = {_mail(p.value).lower() for p in wanted}
    kept = [p for p in beyond if _mail(p.value).lower() not in wanted_emails]
    vevent.children = remaining[:at] + wanted + kept + remaining[at:]


def _apply_master(
    calendar: cl.Component, vevent: cl.Component, old: Event, new: Event, zones: _Zones
) -> None:
    _set_text(vevent, "SUMMARY", old.subject, new.subject)
    _apply_timing(calendar, vevent, old.timing, new.timing)
    _set_text(vevent, "LOCATION", old.location, new.location)
    _set_text(vevent, "DESCRIPTION", old.description, new.description)
    if old.is_private != new.is_private:
        if new.is_private:
            vevent.set("CLASS", "PRIVATE")
        elif vevent.first("CLASS") is not None:
            vevent.set("CLASS", "PUBLIC")
    if old.show_as != new.show_as:
        vevent.set("TRANSP", "TRANSPARENT" if new.show_as is ShowAs.FREE else "OPAQUE")
        if new.show_as in (ShowAs.TENTATIVE, ShowAs.OUT_OF_OFFICE) or vevent.first(
            "X-MICROSOFT-CDO-BUSYSTATUS"
        ):
            vevent.set("X-MICROSOFT-CDO-BUSYSTATUS", _BUSY_STATUS_OUT[new.show_as])
    if old.categories != new.categories:
        first = vevent.first("CATEGORIES")
        anchor_index = vevent.children.index(first) if first is not None else None
        vevent.remove_all("CATEGORIES")
        if new.categories:
            prop = cl.Property("CATEGORIES", ",".join(cl.escape_text(c) for c in new.categories))
            if anchor_index is not None:
                vevent.children.insert(anchor_index, prop)
            else:
                vevent.add(prop)
    if old.organizer != new.organizer:
        if new.organizer:
            vevent.set("ORGANIZER", "mailto:" + cl.escape_text(new.organizer))
        else:
            vevent.remove_all("ORGANIZER")
    _apply_attendees(vevent, old, new)
    _apply_recurrence(calendar, vevent, old, new, zones)


def _apply_recurrence(
    calendar: cl.Component, master: cl.Component, old: Event, new: Event, zones: _Zones
) -> None:
    old_rec, new_rec = old.recurrence, new.recurrence
    if old_rec == new_rec and old.timing == new.timing:
        return
    old_rule = old_rec.rule if old_rec else ""
    new_rule = new_rec.rule if new_rec else ""
    if old_rule != new_rule:
        if new_rule:
            master.set("RRULE", new_rule)
        else:
            master.remove_all("RRULE")
    tzid = new.timing.tzid if isinstance(new.timing.start, dt.datetime) else None
    new_ex = new_rec.exdates if new_rec else ()
    cancelled = {
        _rid(v, zones) for v in calendar.sub("VEVENT") if v.first("RECURRENCE-ID") and _cancelled(v)
    }
    for name, before, after in (
        # Instances cancelled by their own VEVENT need no EXDATE line.
        ("EXDATE", old_rec.exdates if old_rec else (), new_ex),
        ("RDATE", old_rec.rdates if old_rec else (), new_rec.rdates if new_rec else ()),
    ):
        if before != after or old.timing.tzid != new.timing.tzid:
            master.remove_all(name)
            for value in after:
                if name == "RDATE" or value not in cancelled:
                    master.add(_new_instant(name, value, tzid))
    old_occ = {o.recurrence_id: o for o in (old_rec.overrides if old_rec else ())}
    new_occ = {o.recurrence_id: o for o in (new_rec.overrides if new_rec else ())}
    if old_occ == new_occ and old.timing.tzid == new.timing.tzid:
        return
    uid = master.value("UID") or ""
    by_rid = {_rid(v, zones): v for v in calendar.sub("VEVENT") if v.first("RECURRENCE-ID")}
    for rid, vevent in by_rid.items():
        if rid not in new_occ and not (rid in cancelled and rid in new_ex):
            calendar.remove(vevent)
    for rid, occurrence in new_occ.items():
        vevent = by_rid.get(rid)
        if vevent is None:
            vevent = cl.Component("VEVENT")
            vevent.add(cl.Property("UID", uid))
            vevent.add(cl.Property("DTSTAMP", _now()))
            vevent.add(_new_instant("RECURRENCE-ID", rid, tzid))
            calendar.add(vevent)
            before = None
        else:
            before = old_occ.get(rid)
            rid_prop = vevent.first("RECURRENCE-ID")
            if rid_prop is not None and old.timing.tzid != new.timing.tzid:
                _set_instant(rid_prop, rid, tzid)
        _set_text(vevent, "SUMMARY", before.subject if before else "", occurrence.subject)
        _apply_timing(calendar, vevent, before.timing if before else None, occurrence.timing)
        _set_text(vevent, "LOCATION", before.location if before else "", occurrence.location)
        _set_text(
            vevent, "DESCRIPTION", before.description if before else "", occurrence.description
        )


def _now() -> str:
    return dt.datetime.now(_UTC).strftime("%Y%m%dT%H%M%SZ")


def render_new_ical(event: Event, marker: str, uid: str) -> str:
    """A new VCALENDAR holding ``event`` (with VTIMEZONEs for its zones), UID and marker."""
    calendar = cl.Component("VCALENDAR")
    calendar.add(cl.Property("VERSION", "2.0"))
    calendar.add(cl.Property("PRODID", PRODID))
    master = cl.Component("VEVENT")
    master.add(cl.Property("UID", cl.escape_text(uid)))
    master.add(cl.Property("DTSTAMP", _now()))
    calendar.add(master)
    blank = Event(subject="", timing=event.timing)
    _apply_timing(calendar, master, None, event.timing)
    _apply_master(calendar, master, blank, event, _Zones(calendar))
    master.add(cl.Property(MARKER_PROPERTY, cl.escape_text(marker)))
    return calendar.serialize()


def render_ical_update(text: str, event: Event, floating_zone: str = "UTC") -> str:
    """``text`` with the mapped properties changed to ``event``'s values (in place)."""
    calendar = _parse_tree(text)
    zones = _Zones(calendar, floating_zone)
    old = _read(calendar, zones)
    if old == event:
        return text
    master, _ = _structure(calendar)
    _apply_master(calendar, master, old, event, zones)
    return calendar.serialize()


class ICalendarFormat:
    """The `ItemFormat` of CalDAV calendars (events only)."""

    content_type = "text/calendar; charset=utf-8"
    extension = ".ics"
    multiget_report = tag(CALDAV, "calendar-multiget")
    data_property = tag(CALDAV, "calendar-data")

    def __init__(self, floating_zone: str = "UTC") -> None:
        self.floating_zone = floating_zone

    def parse(self, text: str) -> ParsedItem[Record]:
        return parse_ical(text, self.floating_zone)

    def render_new(self, record: Record, marker: str, uid: str) -> str:
        if not isinstance(record, Event):
            raise TypeError("a calendar holds events")
        return render_new_ical(record, marker, uid)

    def render_update(self, text: str, record: Record) -> str:
        if not isinstance(record, Event):
            raise TypeError("a calendar holds events")
        return render_ical_update(text, record, self.floating_zone)
