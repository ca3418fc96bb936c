"""End to end through the service, fake Salesforce ⇄ Radicale: person accounts (written
through their Account) and events from the mailbox related to the people they are with
(contacts with and without Shared Activities, else one unconverted lead)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import Attendee, Event, EventTiming, ItemKind
from tests.crm.salesforce.fake_org import FakeOrg
from tests.servers import DavServerInfo, running_dav_server
from tests.service.salesforce_world import SalesforceWorld
from tests.service.worlds import BOTH_WAYS

START = dt.datetime(2030, 3, 4, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
RELATING = replace(BOTH_WAYS, events=replace(BOTH_WAYS.events, auto_relate=True))


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


def created(world: SalesforceWorld, sobject: str, **fields: object) -> str:
    record_id, problem = world.org.create(sobject, fields)
    assert problem is None and record_id is not None, problem
    return record_id


def test_a_person_account_syncs_and_is_written_through_its_account(
    radicale: DavServerInfo, tmp_path: Path
) -> None:
    world = SalesforceWorld(radicale, tmp_path / "home", BOTH_WAYS)
    try:
        account = created(
            world,
            "Account",
            FirstName="Pia",
            LastName="Person",
            PersonEmail="pia@example.org",
            OwnerId=world.rep_id,
        )
        world.sync()
        (seen,) = world.mail_items(ItemKind.CONTACT).values()
        assert (seen.record.first_name, seen.record.email) == ("Pia", "pia@example.org")  # type: ignore[union-attr]

        world.mailbox.contacts.update(seen.id, seen.version, replace(seen.record, title="Owner"))  # type: ignore[arg-type]
        assert world.sync().writes == 1
        assert world.org.rows["Account"][account]["PersonTitle"] == "Owner"
        (person,) = world.rows("Contact", IsPersonAccount=True)
        assert person["Title"] == "Owner"  # what the mailbox sees next
        assert world.sync().writes == 0

        (seen,) = world.mail_items(ItemKind.CONTACT).values()
        world.mailbox.contacts.delete(seen.id, seen.version)
        world.sync()
        assert world.org.rows["Account"][account]["IsDeleted"]
    finally:
        world.close()


@pytest.mark.parametrize("shared_activities", [True, False])
def test_events_from_the_mailbox_are_related_to_contacts_or_one_unconverted_lead(
    radicale: DavServerInfo, tmp_path: Path, shared_activities: bool
) -> None:
    org = FakeOrg(shared_activities=shared_activities)
    world = SalesforceWorld(radicale, tmp_path / "home", RELATING, org=org)
    try:
        ann = created(world, "Contact", LastName="Ann", Email="ann@example.org")
        bo = created(world, "Contact", LastName="Bo", Email="bo@example.org")
        lead = created(world, "Lead", LastName="Lee", Company="C", Email="lee@example.org")
        converted = created(world, "Lead", LastName="Old", Company="C", Email="old@example.org")
        world.org.rows["Lead"][converted]["IsConverted"] = True

        def meeting(subject: str, hours: int, *emails: str) -> None:
            start = START + hours * HOUR
            event = Event(
                subject,
                EventTiming(start, start + HOUR),
                attendees=tuple(Attendee(e) for e in emails),
            )
            world.mailbox.events.create(event, marker=f"mail-{subject}")

        meeting("With contacts", 0, "ann@example.org", "BO@example.org", "lee@example.org")
        meeting("With a lead", 2, "lee@example.org", "nobody@example.org")
        meeting("With a converted lead", 4, "old@example.org")

        assert world.sync().writes == 3

        (with_contacts,) = world.rows("Event", Subject="With contacts")
        if shared_activities:
            assert sorted(with_contacts["EventWhoIds"]) == sorted([ann, bo])
        else:
            assert with_contacts["WhoId"] == min(ann, bo)
        (with_lead,) = world.rows("Event", Subject="With a lead")
        assert with_lead["WhoId"] == lead
        (with_old,) = world.rows("Event", Subject="With a converted lead")
        assert with_old["WhoId"] is None
        assert world.sync().writes == 0
    finally:
        world.close()
