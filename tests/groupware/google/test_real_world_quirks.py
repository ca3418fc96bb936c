"""Google's real-world quirks, one named test each.

These tests use a fake built from Google's documented payloads (`FakeGoogle`).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from crmsync.domain.contact_fields import IDENTITY_MAP
from crmsync.domain.records import Attendee, AttendeeStatus, Contact, ShowAs
from crmsync.groupware.google import NotOrganizer
from crmsync.groupware.google.contact_map import contact_slots, read_contact
from crmsync.groupware.google.event_ids import event_id
from tests.groupware.contract import sample_contact, sample_event
from tests.groupware.google.fake_google import FakeGoogle
from tests.groupware.google.harness import GoogleHarness


def test_deleted_id_trap_recreating_a_deleted_event_restores_its_id() -> None:
    # A deleted event keeps its id: a new insert answers 409 (google-api-python-client#846).
    h = GoogleHarness()
    first = h.events.create(sample_event(), "crm-1")
    h.foreign_delete(h.events, first.id)
    again = h.events.create(sample_event(), "crm-1")
    assert again.id == first.id == h.events.planned_id("crm-1")
    fetched = h.events.fetch(first.id)
    assert fetched is not None and fetched.record == sample_event()
    h.close()


def test_an_id_taken_by_another_event_moves_to_the_next_generation() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    taken = event_id("crm-2")
    h.fake.calendar.put(
        h.rep,
        {
            "id": taken,
            "summary": "Someone else's",
            "start": {"dateTime": "2026-03-02T15:00:00Z"},
            "end": {"dateTime": "2026-03-02T16:00:00Z"},
        },
    )
    written = h.events.create(sample_event(), "crm-2")
    assert written.id == event_id("crm-2", generation=1)
    h.close()


def test_attendees_beyond_fifty_and_rooms_are_kept_on_update() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    people = tuple(Attendee(f"guest{n}@example.com") for n in range(50))
    written = h.events.create(dataclasses.replace(sample_event(), attendees=people), "big")
    cal = h.fake.calendar.calendar(h.rep)
    more = [{"email": f"guest{n}@example.com"} for n in range(50, 55)]
    room = {"email": "room-4@resource.calendar.google.com", "resource": True}
    h.fake.calendar.foreign_patch(
        h.rep, written.id, {"attendees": [room, *cal.events[written.id]["attendees"], *more]}
    )
    seen = h.events.fetch(written.id)
    assert seen is not None and len(seen.record.attendees) == 50  # type: ignore[union-attr]
    first = dataclasses.replace(seen.record.attendees[0], status=AttendeeStatus.ACCEPTED)  # type: ignore[union-attr]
    changed = dataclasses.replace(seen.record, attendees=(first, *seen.record.attendees[1:]))  # type: ignore[union-attr]
    h.events.update(written.id, seen.version, changed)
    stored = {a["email"]: a for a in cal.events[written.id]["attendees"]}
    assert len(stored) == 56 and "guest54@example.com" in stored
    assert stored["room-4@resource.calendar.google.com"]["resource"] is True
    assert stored["guest0@example.com"]["responseStatus"] == "accepted"
    h.close()


def test_a_meeting_someone_else_organises_is_left_as_it_is() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.calendar.put(
        h.rep,
        {
            "id": "invitation01",
            "summary": "Their meeting",
            "start": {"dateTime": "2026-03-02T15:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T16:00:00Z", "timeZone": "UTC"},
            "organizer": {"email": "boss@example.com"},
            "attendees": [{"email": "rep@example.com", "self": True}],
        },
    )
    seen = h.events.fetch("invitation01")
    assert seen is not None and seen.record is not None
    sent = len(h.fake.requests)
    with pytest.raises(NotOrganizer, match=r"boss@example\.com"):
        h.events.update(seen.id, seen.version, dataclasses.replace(seen.record, subject="Mine"))
    with pytest.raises(NotOrganizer):
        h.events.delete(seen.id, seen.version)
    assert not [r for r in h.fake.requests[sent:] if r.method in ("PATCH", "DELETE")]
    # The rep's own copy keeps crmsync's private properties (here: the CRM's categories).
    recat = dataclasses.replace(seen.record, categories=("CRM",))
    assert h.events.update(seen.id, seen.version, recat).record.categories == ("CRM",)  # type: ignore[union-attr]
    h.close()


def test_working_location_entries_are_left_out_by_rule() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.calendar.put(
        h.rep,
        {
            "id": "office0monday",
            "eventType": "workingLocation",
            "summary": "Office",
            "start": {"date": "2026-03-02"},
            "end": {"date": "2026-03-03"},
        },
    )
    (seen,) = h.events.changes(None, {}).items
    assert seen.left_out and "working-location" in seen.note
    h.close()


def test_google_knows_busy_and_free_only_and_a_free_event_wins() -> None:
    h = GoogleHarness()
    tentative = dataclasses.replace(sample_event(), show_as=ShowAs.TENTATIVE)
    written = h.events.create(tentative, "t")
    assert written.record.show_as is ShowAs.TENTATIVE  # type: ignore[union-attr]
    assert h.fake is not None
    h.fake.calendar.foreign_patch(h.rep, written.id, {"transparency": "transparent"})
    fetched = h.events.fetch(written.id)
    assert fetched is not None and fetched.record.show_as is ShowAs.FREE  # type: ignore[union-attr]
    h.close()


def test_the_category_colour_selects_events_for_the_crm() -> None:
    h = GoogleHarness(category_color="5")
    assert h.fake is not None
    plain = dataclasses.replace(sample_event(), categories=())
    written = h.events.create(plain, "c")
    h.fake.calendar.foreign_patch(h.rep, written.id, {"colorId": "5"})
    fetched = h.events.fetch(written.id)
    assert fetched is not None and fetched.record.categories == ("CRM",)  # type: ignore[union-attr]
    crm = h.events.create(dataclasses.replace(sample_event(), categories=("CRM", "Deal")), "d")
    stored = h.fake.calendar.calendar(h.rep).events[crm.id]
    assert stored["colorId"] == "5"
    assert crm.record.categories == ("CRM", "Deal")  # type: ignore[union-attr]
    h.close()


def test_contact_values_crmsync_does_not_map_are_kept() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    written = h.contacts.create(sample_contact(), "c")
    h.fake.people.foreign_update(
        h.rep,
        written.id,
        {
            "names": [
                {
                    "givenName": "Ada1",
                    "middleName": "King",
                    "familyName": "Lovelace",
                    "honorificPrefix": "Ms.",
                }
            ],
            "emailAddresses": [{"value": "ada1@example.com"}, {"value": "ada@home.example"}],
        },
    )
    version = h.contacts.fetch(written.id).version  # type: ignore[union-attr]
    h.contacts.update(written.id, version, dataclasses.replace(sample_contact(), last_name="King"))
    person = h.fake.people.book(h.rep).people[written.id]
    assert person["names"][0]["middleName"] == "King"
    assert person["names"][0]["familyName"] == "King"
    h.contacts.update(
        written.id, person["etag"], dataclasses.replace(sample_contact(), email="new@example.com")
    )
    assert [e["value"] for e in person["emailAddresses"]] == ["new@example.com", "ada@home.example"]
    h.close()


def test_google_company_only_contact_has_the_company_as_its_last_name_never_its_family_name() -> (
    None
):
    # Google Contacts saves a company with an organisation and no name entry at all.
    person = {"resourceName": "people/c1", "organizations": [{"name": "Umbrella Corp"}]}
    contact, _ = read_contact(person, IDENTITY_MAP)
    assert (contact.first_name, contact.last_name) == ("", "Umbrella Corp")
    slots = contact_slots(contact, IDENTITY_MAP)
    assert slots["last_name"] == "" and slots["account_name"] == "Umbrella Corp"
    named = Contact(first_name="Tina", last_name="Toys", account_name="Umbrella Corp")
    assert contact_slots(named, IDENTITY_MAP)["last_name"] == "Toys"


def test_writes_for_one_rep_go_one_at_a_time() -> None:
    # People refuses (or slows) concurrent mutations of one user: crmsync serialises them.
    fake = FakeGoogle()
    fake.people.write_delay = lambda: time.sleep(0.01)
    h = GoogleHarness(fake=fake)
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            h.contacts.create(sample_contact(n), f"m{n}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.people.book(h.rep).people) == 4
    h.close()


def test_a_contact_create_repeated_after_a_crash_finds_the_first_by_its_marker() -> None:
    # No lookup by clientData exists: the next cycle (a new side, no listing yet) learns
    # the group's unlinked members' markers before creating.
    fake = FakeGoogle()
    first = GoogleHarness(fake=fake)
    written = first.contacts.create(sample_contact(), "003CRASH")
    first.close()
    again = GoogleHarness(fake=fake)
    assert again.contacts.create(sample_contact(), "003CRASH").id == written.id
    assert len(fake.people.book(again.rep).people) == 1
    again.close()
