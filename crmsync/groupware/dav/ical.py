"""iCalendar resources (VCALENDAR with VEVENTs) ↔ `Event`, changing only mapped lines.

Mapping (what a caller may rely on): the master VEVENT (no RECURRENCE-ID) gives the event;
other VEVENTs of the same UID are `Recurrence.overrides`, except cancelled ones
(STATUS:CANCELLED), which join EXDATE in exdates; RDATE → rdates (a VALUE=PERIOD one also
→ rdate_periods); RRULE as text (an unknown FREQ is malformed). A resource holding only
occurrences of someone else's series (no master) is the first occurrence as a single
event, tied to it: updates change that VEVENT and keep its RECURRENCE-ID. A cancelled
master is no live event: `NotSynced`. Times and zones: see `ical_time` (a DURATION's
days are calendar days; an end may have its own zone); people: see `ical_attendees`.
SUMMARY, LOCATION, DESCRIPTION, CLASS (PRIVATE / CONFIDENTIAL → private), TRANSP and
X-MICROSOFT-CDO-BUSYSTATUS (→ show_as), CATEGORIES, ORGANIZER; the marker lives in
``X-CRMSYNC-CRM-ID``. An update keeps VALARMs, unknown properties, attendee parameters
and every line whose field did not change; a new zone gets a generated VTIMEZONE.
"""

from __future__ import annotations

import datetime as dt

from icalendar.prop import vRecur

from crmsync.domain.records import (
    Event,
    EventTiming,
    Occurrence,
    Record,
    Recurrence,
    ShowAs,
    shared_text,
)
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MARKER_PROPERTY, MalformedItem, NotSynced, ParsedItem
from crmsync.groupware.dav.ical_attendees import apply_attendees, mail_address, read_attendees
from crmsync.groupware.dav.ical_time import (
    Zones,
    add_duration,
    date_of,
    instants,
    new_instant,
    read_timing,
    set_instant,
    wall_zone,
)
from crmsync.groupware.dav.multistatus import CALDAV, tag
from crmsync.groupware.dav.read_back import event_reads_back
from crmsync.groupware.dav.vtimezone import vtimezone

_UTC = dt.UTC
PRODID = "-//crmsync//crmsync//EN"
_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OUT_OF_OFFICE,
}
_BUSY_STATUS_OUT = {v: k for k, v in _BUSY_STATUS.items()}


class OutOfScope(MalformedItem):
    """The resource holds no event (a task, a journal): not synced, not an error."""


# ---------------------------------------------------------------- reading


def _text(component: cl.Component, name: str) -> str:
    value = component.value(name)
    return "" if value is None else cl.unescape_text(value)


def _show_as(vevent: cl.Component) -> ShowAs:
    status = (vevent.value("X-MICROSOFT-CDO-BUSYSTATUS") or "").strip().upper()
    if status in _BUSY_STATUS:
        return _BUSY_STATUS[status]
    if (vevent.value("TRANSP") or "").strip().upper() == "TRANSPARENT":
        return ShowAs.FREE
    return ShowAs.BUSY


def _categories(vevent: cl.Component) -> tuple[str, ...]:
    return tuple(
        shared_text(cl.unescape_text(part))
        for prop in vevent.all("CATEGORIES")
        for part in cl.split_unescaped(prop.value, ",")
        if part
    )


def _rid(vevent: cl.Component, zones: Zones) -> dt.datetime | dt.date:
    prop = vevent.first("RECURRENCE-ID")
    assert prop is not None
    values, _ = instants(prop, zones)
    if len(values) != 1:
        raise MalformedItem("a RECURRENCE-ID is empty", "Re-save the recurring event.")
    return values[0]


def _structure(calendar: cl.Component, zones: Zones) -> tuple[cl.Component, list[cl.Component]]:
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
    if not masters:
        # Occurrences of someone else's series without its master: an invitation to one
        # occurrence (Google and Exchange write these). The first is the event.
        return min(vevents, key=lambda v: _instant_key(_rid(v, zones))), []
    if len(masters) != 1:
        raise MalformedItem(
            f"the resource has {len(masters)} VEVENTs without RECURRENCE-ID; one master is needed",
            "Open the series in a calendar client and re-save it, or delete the stray occurrences.",
        )
    return masters[0], [v for v in vevents if v.first("RECURRENCE-ID") is not None]


def _instant_key(value: dt.datetime | dt.date) -> str:
    return value.isoformat()


def _occurrence_note(calendar: cl.Component, master: cl.Component, zones: Zones) -> str:
    """For occurrences without their series' master: which one syncs, if there are more."""
    orphans = calendar.sub("VEVENT")
    if master.first("RECURRENCE-ID") is None or len(orphans) < 2:
        return ""
    when = _rid(master, zones).isoformat()
    return (
        f"the item holds {len(orphans)} occurrences of a series organised elsewhere and no "
        f"series; the one of {when} syncs, the others stay as they are"
    )


def _read(calendar: cl.Component, zones: Zones) -> Event:
    master, overrides = _structure(calendar, zones)
    if _cancelled(master):
        # No live meeting anywhere: an organiser's cancellation (Google, Exchange), or a
        # meeting a scheduling server marked so when its organiser deleted it.
        raise NotSynced("the event is cancelled (STATUS:CANCELLED)")
    timing = read_timing(master, zones, "the event")
    recurrence = None
    rule = master.value("RRULE")
    if rule is not None:
        _check_rule(rule)
    rdates, periods = _rdates(master, zones)
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
                    timing=read_timing(vevent, zones, f"the occurrence of {rid.isoformat()}"),
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
            rdate_periods=tuple(periods),
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
        attendees=read_attendees(master),
        organizer=shared_text(mail_address(organizer)) if organizer is not None else "",
        recurrence=recurrence,
    )


def _dates_of(component: cl.Component, name: str, zones: Zones) -> list[dt.datetime | dt.date]:
    found: list[dt.datetime | dt.date] = []
    for prop in component.all(name):
        found.extend(instants(prop, zones)[0])
    return found


Period = tuple[dt.datetime, dt.datetime]


def _rdates(master: cl.Component, zones: Zones) -> tuple[list[dt.datetime | dt.date], list[Period]]:
    """The extra instances' starts, and (start, end) of those given as RDATE;VALUE=PERIOD
    (``start/end`` or ``start/duration``)."""
    starts: list[dt.datetime | dt.date] = []
    periods: list[Period] = []
    for prop in master.all("RDATE"):
        if (prop.param("VALUE") or "").upper() != "PERIOD":
            starts.extend(instants(prop, zones)[0])
            continue
        params = [q for q in prop.params if q.name != "VALUE"]
        for text in filter(None, (part.strip() for part in prop.value.split(","))):
            begin, _, finish = text.partition("/")
            start_prop = cl.Property("RDATE", begin, params)
            start = _one_instant(start_prop, zones, text)
            try:
                if finish.upper().lstrip("+-").startswith("P"):
                    end = add_duration(start, finish, wall_zone(start_prop, zones))
                else:
                    end = _one_instant(cl.Property("RDATE", finish, params), zones, text)
            except ValueError as exc:
                raise MalformedItem(
                    f"the RDATE period {text!r} has no end: {exc}",
                    "Open the series in a calendar client and set its extra dates again.",
                ) from exc
            if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
                raise MalformedItem(
                    f"the RDATE period {text!r} is not between two date-times",
                    "Open the series in a calendar client and set its extra dates again.",
                )
            starts.append(start)
            periods.append((start, max(start, end)))
    return starts, periods


def _one_instant(prop: cl.Property, zones: Zones, text: str) -> dt.datetime | dt.date:
    values = instants(prop, zones)[0] if prop.value.strip() else []
    if len(values) != 1:
        raise MalformedItem(
            f"the RDATE period {text!r} cannot be read",
            "Open the series in a calendar client and set its extra dates again.",
        )
    return values[0]


def _period_line(period: Period) -> cl.Property:
    # In UTC: a period's ends need no VTIMEZONE and cannot fall into a repeated hour.
    text = "/".join(p.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ") for p in period)
    return cl.Property("RDATE", text, [cl.Param("VALUE", ["PERIOD"])])


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
    zones = Zones(calendar, floating_zone)
    event = _read(calendar, zones)
    master, _ = _structure(calendar, zones)
    marker = master.value(MARKER_PROPERTY)
    return ParsedItem(
        event,
        cl.unescape_text(marker) if marker is not None else None,
        cl.unescape_text(master.value("UID") or ""),
        _occurrence_note(calendar, master, zones),
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
    timed = isinstance(new.start, dt.datetime)
    for name, value, tzid in (
        ("DTSTART", new.start, new.tzid if timed else None),
        ("DTEND", new.end, new.end_zone if timed else None),
    ):
        _ensure_zone(calendar, tzid, date_of(new.start))
        prop = vevent.first(name)
        if prop is None:
            vevent.add(new_instant(name, value, tzid))
        else:
            set_instant(prop, value, tzid)
    vevent.remove_all("DURATION")


def _apply_master(
    calendar: cl.Component, vevent: cl.Component, old: Event, new: Event, zones: Zones
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
    apply_attendees(vevent, old.attendees, new.attendees)
    if vevent.first("RECURRENCE-ID") is None:
        _apply_recurrence(calendar, vevent, old, new, zones)
    elif new.recurrence is not None:
        raise MalformedItem(
            "the event is one occurrence of a series organised elsewhere; it cannot become "
            "a series",
            "Make the series in the CRM a new event, or change the series where it is organised.",
        )


def _apply_recurrence(
    calendar: cl.Component, master: cl.Component, old: Event, new: Event, zones: Zones
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
    before = old_rec.exdates if old_rec else ()
    if before != new_ex or old.timing.tzid != new.timing.tzid:
        master.remove_all("EXDATE")
        for value in new_ex:
            # Instances cancelled by their own VEVENT need no EXDATE line.
            if value not in cancelled:
                master.add(new_instant("EXDATE", value, tzid))
    old_extra = (old_rec.rdates, old_rec.rdate_periods) if old_rec else ((), ())
    new_extra = (new_rec.rdates, new_rec.rdate_periods) if new_rec else ((), ())
    if old_extra != new_extra or old.timing.tzid != new.timing.tzid:
        master.remove_all("RDATE")
        period_of: dict[dt.datetime | dt.date, Period] = {p[0]: p for p in new_extra[1]}
        for value in new_extra[0]:
            period = period_of.get(value)
            master.add(_period_line(period) if period else new_instant("RDATE", value, tzid))
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
            vevent.add(new_instant("RECURRENCE-ID", rid, tzid))
            calendar.add(vevent)
            before = None
        else:
            before = old_occ.get(rid)
            rid_prop = vevent.first("RECURRENCE-ID")
            if rid_prop is not None and old.timing.tzid != new.timing.tzid:
                set_instant(rid_prop, rid, tzid)
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
    _apply_master(calendar, master, blank, event, Zones(calendar))
    master.add(cl.Property(MARKER_PROPERTY, cl.escape_text(marker)))
    return calendar.serialize()


def render_ical_update(text: str, event: Event, floating_zone: str = "UTC") -> str:
    """``text`` with the mapped properties changed to ``event``'s values (in place)."""
    calendar = _parse_tree(text)
    zones = Zones(calendar, floating_zone)
    old = _read(calendar, zones)
    if old == event:
        return text
    master, _ = _structure(calendar, zones)
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

    def reads_back(self, record: Record) -> bool:
        return isinstance(record, Event) and event_reads_back(record)
