"""After a cycle that creates many items on the mail server, what the state store keeps
of each item is what the next read of it produces: the next cycle writes nothing, and
each link's mail hash is the hash of the item as another client lists it.

Most creates keep the record written without parsing the item back (`read_back`); the
records here mix those with ones that are still parsed back (a lone CR, a ``tel:`` phone,
a series, an end zone after a UTC start), on Radicale, Xandikos and SabreDAV.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmsync.domain.contact_fields import IDENTITY_MAP
from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    ItemKind,
    Occurrence,
    Recurrence,
)
from crmsync.engine.hashing import content_hash
from crmsync.groupware.dav.read_back import contact_reads_back, event_reads_back
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World, at

__all__ = ["dav_server"]

CONTACTS = (
    Contact(
        "Ann",
        "Lee",
        salutation="Dr.",
        title="CTO",
        department="R&D",
        account_name="Acme; Inc.",
        email="ann@acme.test",
        phone="+49 30 1234567",
        mobile_phone="+1 212 555 0100",
        mailing_address=Address("1 Main St\nSuite 2", "Berlin", "", "10115", "Germany"),
        birthdate=dt.date(1980, 5, 17),
        description="Met at the fair.\nPrefers email, not phone; German/English.",
    ),
    Contact("", "Acme", account_name="Acme"),  # a company's card
    Contact("Zoë", "Ørsted", title="Café owner", email="zoe@x.test"),
    Contact("Bo", "Ray", title="VP\rSales"),  # a lone CR: parsed back
    Contact("Cy", "Dee", phone="tel:+1 555 0199"),  # a tel: URI: parsed back
)


def _events() -> tuple[Event, ...]:
    start = at(4, 9)
    series_start = at(11, 9, "Europe/Berlin")
    return (
        Event("Quarterly review", EventTiming(start, start + dt.timedelta(hours=1))),
        Event(
            "Call, re: renewal; final",
            EventTiming(at(5, 9, "Europe/Berlin"), at(5, 10, "Europe/Berlin"), "Europe/Berlin"),
            location="Room 4.12",
            description="Agenda:\n- numbers",
            categories=("CRM",),
            attendees=(Attendee("guest@example.org", "Guest", AttendeeStatus.ACCEPTED),),
            organizer="rep@example.com",
        ),
        Event("Offsite", EventTiming(dt.date(2030, 3, 6), dt.date(2030, 3, 8))),
        Event(  # an end zone after a UTC start: parsed back
            "Flight",
            EventTiming(at(7, 9), at(7, 18), None, "America/New_York"),
        ),
        Event(  # a series: parsed back
            "Weekly sync",
            EventTiming(series_start, series_start + dt.timedelta(minutes=30), "Europe/Berlin"),
            recurrence=Recurrence(
                "FREQ=WEEKLY;COUNT=5",
                exdates=(series_start + dt.timedelta(weeks=1),),
                overrides=(
                    Occurrence(
                        series_start + dt.timedelta(weeks=2),
                        EventTiming(
                            series_start + dt.timedelta(weeks=2, hours=2),
                            series_start + dt.timedelta(weeks=2, hours=3),
                            "Europe/Berlin",
                        ),
                        subject="Moved",
                    ),
                ),
            ),
        ),
    )


def test_a_quiet_cycle_after_many_creates_writes_nothing(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    events = _events()
    # Both paths are exercised: some records are kept as written, others parsed back.
    assert {contact_reads_back(c, IDENTITY_MAP) for c in CONTACTS} == {True, False}
    assert {event_reads_back(e) for e in events} == {True, False}
    world = World(dav_server, tmp_path, BOTH_WAYS)
    try:
        for contact in CONTACTS:
            world.crm.create_contact(world.rep.id, contact)
        for event in events:
            world.crm.create_event(world.rep.id, event)
        first = world.sync()
        assert first.writes == len(CONTACTS) + len(events)
        assert world.sync().writes == 0
        for kind in (ItemKind.CONTACT, ItemKind.EVENT):
            listed = world.mail_items(kind)
            links = world.service.store.links(world.rep.id, kind)
            assert len(links) == len(listed)
            for link in links:
                record = listed[link.mail_id].record
                assert record is not None
                assert content_hash(record) == link.mail_hash, (kind, record)
    finally:
        world.close()
