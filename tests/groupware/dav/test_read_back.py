"""The records a create keeps without parsing its item back (`read_back`): for each one
the guard lets through, parse(render(record)) is the record, over records drawn far wider
than a CRM holds (control characters, lone CRs, odd zones, microseconds, any address);
and the guard lets through every plain record, so the shortcut is taken."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmsync.domain.contact_fields import IDENTITY_MAP, MAIL_FIELDS, ContactFieldMap
from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
)
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.read_back import contact_reads_back, event_reads_back
from crmsync.groupware.dav.vcard import VCardFormat
from tests.groupware.dav.strategies import ZONES, contacts, emails, events

many = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values a CRM field might hold at worst: any character, and the known troublemakers.
AWKWARD = (
    "\r",
    "a\rb",
    "a\r\nb",
    "\n",
    " ",
    " x ",
    "\t",
    "\ufeffx",
    "a,b;c\\d:e",
    "tel:+1 555 0100",
    "TEL:12",
    "mailto:x@y.z",
    "\u2028",
    "\x85",
    "\u00a0",
)
wild = st.just("") | st.text(max_size=20) | st.sampled_from(AWKWARD)
field_maps = st.sampled_from(
    (
        IDENTITY_MAP,
        ContactFieldMap(
            {
                name: (name, kind)
                for name, kind in MAIL_FIELDS.items()
                if name not in ("description", "birthdate", "other_address", "fax")
            }
        ),
    )
)
_CONTACT_TEXTS = tuple(f.name for f in dataclasses.fields(Contact) if f.type == "str")
_ADDRESS_PARTS = tuple(f.name for f in dataclasses.fields(Address))


@st.composite
def wild_contacts(draw: st.DrawFn) -> Contact:
    """A plain contact with up to three values made awkward (a whole record of awkward
    values would almost never be let through, leaving the property nothing to check)."""
    contact = draw(contacts)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from((*_CONTACT_TEXTS, "mailing_address", "birthdate")))
        if name == "birthdate":
            value: object = draw(st.none() | st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)))
        elif name == "mailing_address":
            part = draw(st.sampled_from(_ADDRESS_PARTS))
            value = dataclasses.replace(contact.mailing_address, **{part: draw(wild)})
        else:
            value = draw(wild)
        contact = dataclasses.replace(contact, **{name: value})
    return contact


@many
@given(wild_contacts(), field_maps)
@example(Contact(first_name=" "), IDENTITY_MAP)  # names no one: unreadable
@example(Contact(last_name="Lee", title="a\rb"), IDENTITY_MAP)  # reads back "a\nb"
@example(Contact(account_name="Acme"), IDENTITY_MAP)  # reads back as last name "Acme"
@example(Contact(last_name="Lee", phone="tel:+1 555"), IDENTITY_MAP)  # reads back "+1 555"
def test_a_contact_let_through_reads_back_as_written(contact: Contact, fields: ContactFieldMap):
    if contact_reads_back(contact, fields):
        written = VCardFormat(fields).render_new(contact, "m", "crmsync-m")
        assert VCardFormat(fields).parse(written).record == contact


@settings(max_examples=200, deadline=None)
@given(contacts)
def test_every_plain_contact_is_let_through(contact: Contact) -> None:
    assert contact_reads_back(contact, IDENTITY_MAP)


# Zones as written by hand or by other systems: aliases, legacy names, fixed offsets.
ODD_ZONES = (
    "UTC",
    "Etc/GMT+5",
    "US/Eastern",
    "Europe/Kiev",
    "EST",
    "Asia/Calcutta",
    "W. Europe Standard Time",
    "Not/AZone",
    "",
)
zones = st.sampled_from((None, *ZONES, *ODD_ZONES)) | st.sampled_from(
    sorted(zoneinfo.available_timezones())
)
wild_instants = st.datetimes(dt.datetime(1800, 1, 1), dt.datetime(2200, 1, 1)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
) | st.datetimes(
    dt.datetime(2000, 1, 1),
    dt.datetime(2040, 1, 1),
    timezones=st.sampled_from((dt.UTC, zoneinfo.ZoneInfo("Europe/Paris"))),
)


@st.composite
def wild_timings(draw: st.DrawFn) -> EventTiming:
    if draw(st.booleans()):
        start = draw(st.dates(dt.date(1800, 1, 1), dt.date(2200, 1, 1)))
        return EventTiming(start, start + dt.timedelta(days=draw(st.integers(-1, 3))))
    start = draw(wild_instants)
    end = start + dt.timedelta(seconds=draw(st.integers(-3600, 3 * 86400)))
    return EventTiming(start, end, draw(zones), draw(zones))


wild_emails = emails | emails.map(str.upper) | wild
wild_attendees = st.lists(
    st.builds(
        Attendee,
        wild_emails,
        wild,
        st.sampled_from(AttendeeStatus),
        st.booleans(),
        delegated_to=st.lists(wild_emails, max_size=2).map(tuple),
        delegated_from=st.lists(wild_emails, max_size=2).map(tuple),
    ),
    max_size=4,
).map(tuple)


@st.composite
def wild_events(draw: st.DrawFn) -> Event:
    """A plain event (no series: those are always parsed back) with up to three values
    made awkward."""
    event = dataclasses.replace(draw(events()), recurrence=None)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(
            st.sampled_from(
                (
                    "subject",
                    "location",
                    "description",
                    "categories",
                    "attendees",
                    "organizer",
                    "timing",
                )
            )
        )
        value: object
        if name == "categories":
            value = tuple(draw(st.lists(wild, max_size=3)))
        elif name == "attendees":
            value = draw(wild_attendees)
        elif name == "organizer":
            value = draw(wild_emails)
        elif name == "timing":
            value = draw(wild_timings())
        else:
            value = draw(wild)
        event = dataclasses.replace(event, **{name: value})
    return event


@many
@given(wild_events(), st.sampled_from(("UTC", *ZONES)))
@example(  # DTSTART has whole seconds
    Event(
        "x",
        EventTiming(
            dt.datetime(2030, 1, 1, 9, 0, 0, 5, dt.UTC), dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)
        ),
    ),
    "UTC",
)
@example(  # 02:30 on 2030-10-27 happens twice in Paris: the second is written in UTC
    Event(
        "x",
        EventTiming(
            dt.datetime(2030, 10, 27, 1, 30, tzinfo=dt.UTC),
            dt.datetime(2030, 10, 27, 3, tzinfo=dt.UTC),
            "Europe/Paris",
        ),
    ),
    "UTC",
)
def test_an_event_let_through_reads_back_as_written(event: Event, floating_zone: str) -> None:
    if event_reads_back(event):
        written = ICalendarFormat(floating_zone).render_new(event, "m", "crmsync-m")
        assert ICalendarFormat(floating_zone).parse(written).record == event


@settings(max_examples=200, deadline=None)
@given(events())
def test_every_plain_event_is_let_through(event: Event) -> None:
    assert event_reads_back(dataclasses.replace(event, recurrence=None))
