"""Hypothesis strategies for records the DAV formats must carry without loss."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
    ShowAs,
)

UTC = dt.UTC
ZONES = ("America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe")

# Printable text and newlines: what a CRM field can hold (control characters are not
# allowed in iCalendar/vCard).
text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff") | st.just("\n"),
    max_size=40,
)
line = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=30
)
phones = st.from_regex(r"(\+?[0-9][0-9 ()-]{0,18})?", fullmatch=True)
emails = st.from_regex(r"[a-z0-9._-]{1,12}@[a-z0-9-]{1,10}\.[a-z]{2,4}", fullmatch=True)
addresses = st.builds(Address, text, line, line, line, line)


def _as_the_crm_holds_it(contact: Contact) -> Contact:
    """A contact without a name but with a company is a company's card, which the CRM
    holds with the company as last name (vCard reading gives it that name)."""
    if not (contact.first_name or contact.last_name) and contact.account_name:
        return dataclasses.replace(contact, last_name=contact.account_name)
    return contact


contacts = st.builds(
    Contact,
    first_name=line,
    last_name=line,
    salutation=line,
    title=text,
    department=line,
    account_name=line,
    email=emails | st.just(""),
    phone=phones,
    mobile_phone=phones,
    home_phone=phones,
    other_phone=phones,
    fax=phones,
    mailing_address=addresses,
    other_address=addresses,
    birthdate=st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    description=text,
    is_person_account=st.booleans(),
).map(_as_the_crm_holds_it)


def _round_trips(instant: dt.datetime, tzid: str | None) -> bool:
    """Whether the local time of ``instant`` in ``tzid`` names it unambiguously."""
    if tzid is None:
        return True
    # Hypothesis may draw fold=1; on a UTC instant it means nothing, but it would survive
    # into the local time and name the second pass of a repeated hour.
    instant = instant.replace(fold=0)
    local = instant.astimezone(ZoneInfo(tzid)).replace(tzinfo=None, fold=0)
    return local.replace(tzinfo=ZoneInfo(tzid)).astimezone(UTC) == instant


instants = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2040, 1, 1)).map(
    lambda d: d.replace(microsecond=0, fold=0, tzinfo=UTC)
)


@st.composite
def timings(draw: st.DrawFn, all_day: bool | None = None, tzid: object = "any") -> EventTiming:
    if all_day if all_day is not None else draw(st.booleans()):
        start = draw(st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)))
        return EventTiming(start, start + dt.timedelta(days=draw(st.integers(0, 5))))
    zone = draw(st.sampled_from((None, *ZONES))) if tzid == "any" else tzid
    # Sometimes the end is in another zone (a flight); only after a start in a zone (an
    # end zone after a UTC start reads as the event's zone, see ical_time.read_timing).
    end_zone = draw(st.sampled_from((None, *ZONES))) if zone and tzid == "any" else None
    start = draw(instants.filter(lambda i: _round_trips(i, zone)))  # type: ignore[arg-type]
    end = start + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
    if not _round_trips(end, end_zone or zone):  # type: ignore[arg-type]
        end = start
    return EventTiming(start, end, zone, end_zone)  # type: ignore[arg-type]


@st.composite
def recurrences(draw: st.DrawFn, master: EventTiming) -> Recurrence:
    def instance(n: int) -> dt.datetime | dt.date:
        return master.start + dt.timedelta(days=7 * n)

    picks = draw(st.lists(st.integers(1, 30), unique=True, max_size=6))
    split = draw(st.integers(0, len(picks)))
    exdates = tuple(instance(n) for n in picks[:split])
    # Extra dates fall between the weekly instances (RDATE adds, never repeats one).
    rdates = tuple(
        master.start + dt.timedelta(days=7 * n + 3)
        for n in draw(st.lists(st.integers(1, 30), unique=True, max_size=3))
    )
    overrides = tuple(
        Occurrence(
            recurrence_id=instance(n),
            timing=draw(timings(all_day=master.all_day)),
            subject=draw(line),
            location=draw(line),
            description=draw(text),
        )
        for n in picks[split:]
    )
    if master.tzid and not all(
        _round_trips(x, master.tzid)
        for x in (*exdates, *rdates, *(o.recurrence_id for o in overrides))
        if isinstance(x, dt.datetime)
    ):
        exdates, overrides, rdates = (), (), ()
    # Some extra instances of a timed series have their own end (RDATE;VALUE=PERIOD).
    periods = tuple(
        (start, start + dt.timedelta(minutes=draw(st.integers(0, 600))))
        for start in rdates
        if isinstance(start, dt.datetime) and draw(st.booleans())
    )
    rule = draw(
        st.sampled_from(
            [
                "FREQ=WEEKLY;COUNT=40",
                "FREQ=WEEKLY;INTERVAL=1",
                "FREQ=WEEKLY;UNTIL=20400101T000000Z;BYDAY=MO,WE",
            ]
        )
    )
    return Recurrence(rule, exdates, overrides, rdates, periods)


_addresses = st.lists(emails, max_size=2, unique=True).map(tuple)
attendees = st.lists(
    st.builds(
        Attendee,
        emails,
        line,
        st.sampled_from(AttendeeStatus),
        st.booleans(),
        delegated_to=_addresses,
        delegated_from=_addresses,
    ),
    max_size=4,
    unique_by=lambda a: a.email.lower(),
).map(tuple)


@st.composite
def events(draw: st.DrawFn) -> Event:
    timing = draw(timings())
    return Event(
        subject=draw(line),
        timing=timing,
        location=draw(line),
        description=draw(text),
        is_private=draw(st.booleans()),
        show_as=draw(st.sampled_from(ShowAs)),
        categories=tuple(draw(st.lists(line.filter(bool), max_size=3))),
        attendees=draw(attendees),
        organizer=draw(emails | st.just("")),
        recurrence=draw(st.none() | recurrences(timing)),
    )
