"""End to end: the built-in CRM on SQLite, the state store, and a real Radicale or Xandikos.

Every test runs `SyncService.sync_rep` cycles and looks at both sides through their own
APIs: the CRM through `BuiltinCrm`, the mail server through a second, independent DAV
connection, as a person's calendar client would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import (
    Attendee,
    Contact,
    Event,
    EventTiming,
    ItemKind,
    Lead,
    Occurrence,
    Recurrence,
)
from crmsync.domain.settings import (
    ConflictBehaviour,
    ContactOwnership,
    ContactSettings,
    Direction,
    EventSettings,
    EventWindow,
)
from crmsync.domain.sync import Side
from crmsync.store import SyncStatus
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World, at

__all__ = ["dav_server"]


@pytest.fixture
def world(dav_server: DavServerInfo, tmp_path: Path) -> Iterator[World]:
    w = World(dav_server, tmp_path / "home", BOTH_WAYS)
    yield w
    w.close()


def weekly_series() -> Event:
    start = at(4, 9, "Europe/Berlin")
    return Event(
        subject="Pipeline review",
        timing=EventTiming(start, start + dt.timedelta(hours=1), "Europe/Berlin"),
        recurrence=Recurrence(
            rule="FREQ=WEEKLY;COUNT=6",
            exdates=(start + dt.timedelta(weeks=2),),
            overrides=(
                Occurrence(
                    recurrence_id=start + dt.timedelta(weeks=1),
                    timing=EventTiming(
                        start + dt.timedelta(weeks=1, hours=3),
                        start + dt.timedelta(weeks=1, hours=4),
                        "Europe/Berlin",
                    ),
                    subject="Pipeline review (moved)",
                ),
            ),
        ),
    )


def test_crm_records_reach_the_mailbox_and_a_second_cycle_writes_nothing(world: World) -> None:
    contact = Contact(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.org",
        mobile_phone="+44 20 7946 0000",
        title="Analyst",
    )
    world.crm.create_contact(world.rep.id, contact)
    events = [
        weekly_series(),
        Event("Trade fair", EventTiming(dt.date(2030, 3, 10), dt.date(2030, 3, 13))),
        Event(
            "Call NYC",
            EventTiming(
                at(5, 14, "America/New_York"), at(5, 15, "America/New_York"), "America/New_York"
            ),
        ),
        Event("Doctor", EventTiming(at(6, 8), at(6, 9)), is_private=True),
    ]
    for event in events:
        world.crm.create_event(world.rep.id, event)

    first = world.sync()
    assert first.kinds[ItemKind.CONTACT].written_to(Side.MAIL) == 1
    assert first.kinds[ItemKind.EVENT].written_to(Side.MAIL) == 4
    assert world.mail_records(ItemKind.CONTACT) == [contact]
    assert world.mail_records(ItemKind.EVENT) == sorted(events, key=repr)
    all_day = next(r for r in world.mail_records(ItemKind.EVENT) if r.subject == "Trade fair")
    assert all_day.timing.all_day and all_day.timing.start == dt.date(2030, 3, 10)

    second = world.sync()
    assert second.writes == 0
    # And nothing came back to the CRM as a duplicate.
    assert world.crm_records(ItemKind.EVENT) == sorted(events, key=repr)
    status = world.service.store.rep_status(world.rep.id)
    assert status.sync_status(ItemKind.EVENT, Direction.CRM_TO_MAIL) is SyncStatus.IN_SYNC
    assert status.records_in_sync[ItemKind.EVENT] == 4


def test_mailbox_changes_reach_the_crm(world: World) -> None:
    world.crm.create_contact(world.rep.id, Contact(first_name="Bo", last_name="Ek"))
    world.sync()
    # A person edits the contact and adds an event in their calendar client.
    (seen,) = world.mail_items(ItemKind.CONTACT).values()
    world.mailbox.contacts.update(seen.id, seen.version, replace(seen.record, title="CFO"))
    lunch = Event("Lunch with Bo", EventTiming(at(7, 12), at(7, 13)))
    world.mailbox.events.create(lunch, marker="made-in-a-client")

    report = world.sync()
    assert report.writes == 2
    assert [c.title for c in world.crm_records(ItemKind.CONTACT)] == ["CFO"]
    assert world.crm_records(ItemKind.EVENT) == [lunch]


def test_deletions_propagate_both_ways_when_configured(world: World) -> None:
    kept = world.crm.create_event(world.rep.id, Event("Kept", EventTiming(at(8, 9), at(8, 10))))
    gone = world.crm.create_event(world.rep.id, Event("Gone", EventTiming(at(9, 9), at(9, 10))))
    world.crm.create_contact(world.rep.id, Contact(first_name="Cy", email="cy@example.org"))
    world.sync()

    world.crm.delete_event(gone.id)
    (contact,) = world.mail_items(ItemKind.CONTACT).values()
    world.mailbox.contacts.delete(contact.id, contact.version)
    world.sync()

    assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Kept"]
    assert world.crm_records(ItemKind.CONTACT) == []
    assert [s.id for s in world.crm.list_events(owner_id=world.rep.id)] == [kept.id]


@pytest.mark.parametrize("conflict", list(ConflictBehaviour))
def test_an_edit_on_both_sides_follows_the_conflict_behaviour(
    dav_server: DavServerInfo, tmp_path: Path, conflict: ConflictBehaviour
) -> None:
    config = replace(BOTH_WAYS, events=EventSettings(conflict=conflict))
    world = World(dav_server, tmp_path / "home", config)
    try:
        stored = world.crm.create_event(
            world.rep.id, Event("Demo", EventTiming(at(3, 9), at(3, 10)))
        )
        world.sync()
        world.crm.update_event(stored.id, replace(stored.record, location="CRM room"))
        (seen,) = world.mail_items(ItemKind.EVENT).values()
        world.mailbox.events.update(
            seen.id, seen.version, replace(seen.record, location="Mail room")
        )

        world.sync()

        expected = "CRM room" if conflict is ConflictBehaviour.CRM_WINS else "Mail room"
        assert [e.location for e in world.crm_records(ItemKind.EVENT)] == [expected]
        assert [e.location for e in world.mail_records(ItemKind.EVENT)] == [expected]
    finally:
        world.close()


def test_one_way_direction_leaves_the_other_side_alone(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    config = replace(
        BOTH_WAYS,
        contacts=ContactSettings(direction=Direction.CRM_TO_MAIL),
        events=EventSettings(direction=Direction.NONE),
    )
    world = World(dav_server, tmp_path / "home", config)
    try:
        world.crm.create_contact(world.rep.id, Contact(first_name="Di", email="di@example.org"))
        world.crm.create_event(world.rep.id, Event("Not synced", EventTiming(at(3, 9), at(3, 10))))
        world.mailbox.contacts.create(Contact(first_name="Mail", last_name="Only"), marker="x")
        world.sync()
        assert [c.first_name for c in world.mail_records(ItemKind.CONTACT)] == ["Di", "Mail"]
        assert [c.first_name for c in world.crm_records(ItemKind.CONTACT)] == ["Di"]
        assert world.mail_records(ItemKind.EVENT) == []
        status = world.service.store.rep_status(world.rep.id)
        assert (
            status.sync_status(ItemKind.EVENT, Direction.CRM_TO_MAIL) is SyncStatus.NOT_CONFIGURED
        )
        assert (
            status.sync_status(ItemKind.CONTACT, Direction.MAIL_TO_CRM) is SyncStatus.NOT_CONFIGURED
        )
    finally:
        world.close()


def test_a_crm_update_keeps_what_the_mail_side_does_not_map(world: World) -> None:
    stored = world.crm.create_event(world.rep.id, Event("Review", EventTiming(at(3, 9), at(3, 10))))
    world.sync()
    (seen,) = world.mail_items(ItemKind.EVENT).values()
    # A calendar client adds an alarm and a vendor property to the synced event.
    path = seen.id
    text = world._connection.request("GET", path).text
    extra = (
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\n"
        "END:VALARM\r\nX-VENDOR-FLAG:kept\r\n"
    )
    text = text.replace("END:VEVENT", extra + "END:VEVENT", 1)
    world._connection.request(
        "PUT",
        path,
        body=text,
        headers={"If-Match": seen.version, "Content-Type": "text/calendar"},
    )
    world.sync()  # the client's edit changed no mapped field: nothing to write

    world.crm.update_event(stored.id, replace(stored.record, subject="Review (agenda sent)"))
    world.sync()

    after = world._connection.request("GET", path).text
    assert "SUMMARY:Review (agenda sent)" in after
    assert "TRIGGER:-PT15M" in after and "X-VENDOR-FLAG:kept" in after


def test_series_all_day_and_zoned_events_made_in_a_client_reach_the_crm_unchanged(
    world: World,
) -> None:
    made_in_client = [
        weekly_series(),
        Event("Offsite", EventTiming(dt.date(2030, 3, 20), dt.date(2030, 3, 22))),
        Event(
            "Tokyo call", EventTiming(at(5, 9, "Asia/Tokyo"), at(5, 10, "Asia/Tokyo"), "Asia/Tokyo")
        ),
    ]
    for n, event in enumerate(made_in_client):
        world.mailbox.events.create(event, marker=f"client-{n}")

    world.sync()

    assert world.crm_records(ItemKind.EVENT) == sorted(made_in_client, key=repr)
    offsite = next(r for r in world.crm_records(ItemKind.EVENT) if r.subject == "Offsite")
    assert offsite.timing.all_day
    assert world.sync().writes == 0
    assert world.mail_records(ItemKind.EVENT) == sorted(made_in_client, key=repr)


def test_the_date_window_limits_what_syncs_and_narrowing_it_deletes_nothing(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    wide = replace(BOTH_WAYS, events=EventSettings(window=EventWindow.LAST_N_DAYS, window_days=30))
    world = World(dav_server, tmp_path / "home", wide)
    try:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        past = world.crm.create_event(
            world.rep.id,
            Event(
                "Last week",
                EventTiming(now - dt.timedelta(days=7, hours=1), now - dt.timedelta(days=7)),
            ),
        )
        old = Event(
            "Last spring",
            EventTiming(now - dt.timedelta(days=200, hours=1), now - dt.timedelta(days=200)),
        )
        world.crm.create_event(world.rep.id, old)
        world.sync()
        assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Last week"]

        # The admin narrows the window to TODAY: the synced past event stays on both sides,
        # and edits to it no longer travel.
        world.service.store.save_config(
            replace(wide, user_ids=(world.rep.id,), events=EventSettings())
        )
        world.crm.update_event(past.id, replace(past.record, location="Room 2"))
        report = world.sync()
        assert report.writes == 0
        assert [e.location for e in world.mail_records(ItemKind.EVENT)] == [""]
        assert len(world.crm_records(ItemKind.EVENT)) == 2
    finally:
        world.close()


@pytest.mark.parametrize("auto_relate", [True, False])
def test_events_from_the_mailbox_are_related_to_attendees_contacts_or_one_lead(
    dav_server: DavServerInfo, tmp_path: Path, auto_relate: bool
) -> None:
    config = replace(BOTH_WAYS, events=EventSettings(auto_relate=auto_relate))
    world = World(dav_server, tmp_path / "home", config)
    try:
        ada = world.crm.create_contact(
            world.rep.id, Contact(first_name="Ada", email="ada@example.org")
        )
        lead = world.crm.create_lead(world.rep.id, Lead(last_name="Lee", email="lee@lead.test"))
        world.sync()
        with_contact = Event(
            "Demo for Ada",
            EventTiming(at(4, 9), at(4, 10)),
            attendees=(Attendee("ADA@example.org"), Attendee("x@y.test")),
        )
        with_lead = Event(
            "Intro to Lee", EventTiming(at(5, 9), at(5, 10)), attendees=(Attendee("lee@lead.test"),)
        )
        world.mailbox.events.create(with_contact, marker="client-1")
        world.mailbox.events.create(with_lead, marker="client-2")

        world.sync()

        by_subject = {s.record.subject: s.id for s in world.crm.list_events(owner_id=world.rep.id)}
        relations = {
            subject: world.crm.event_relations(event_id) for subject, event_id in by_subject.items()
        }
        if auto_relate:
            assert relations["Demo for Ada"].contact_ids == (ada.id,)
            assert relations["Demo for Ada"].lead_id is None
            assert relations["Intro to Lee"].contact_ids == ()
            assert relations["Intro to Lee"].lead_id == lead.id
        else:
            assert all(not r.contact_ids and r.lead_id is None for r in relations.values())
        assert world.sync().writes == 0
    finally:
        world.close()


@pytest.mark.parametrize("ownership", list(ContactOwnership))
def test_all_contacts_syncs_colleagues_contacts_users_records_only_the_reps_own(
    dav_server: DavServerInfo, tmp_path: Path, ownership: ContactOwnership
) -> None:
    config = replace(BOTH_WAYS, contacts=ContactSettings(ownership=ownership))
    world = World(dav_server, tmp_path / "home", config)
    try:
        colleague = world.crm.create_user("colleague@example.com", "Col League")
        world.crm.create_contact(world.rep.id, Contact(first_name="Mine"))
        theirs = world.crm.create_contact(colleague.id, Contact(first_name="Theirs"))
        world.sync()
        expected = {
            ContactOwnership.ALL: ["Mine", "Theirs"],
            ContactOwnership.USERS_RECORDS: ["Mine"],
            # The spec's warning: "Selected contacts" without "User's records" selects none.
            ContactOwnership.SELECTED_NONE: [],
        }[ownership]
        assert [c.first_name for c in world.mail_records(ItemKind.CONTACT)] == expected

        # A CRM edit of the colleague's contact reaches the rep's mailbox only with ALL;
        # the contact keeps its owner either way.
        world.crm.update_contact(theirs.id, replace(theirs.record, title="CEO"))
        world.sync()
        titles = {c.first_name: c.title for c in world.mail_records(ItemKind.CONTACT)}
        assert titles.get("Theirs") == ("CEO" if ownership is ContactOwnership.ALL else None)
        assert world.crm.get_contact(theirs.id).owner_id == colleague.id
    finally:
        world.close()
