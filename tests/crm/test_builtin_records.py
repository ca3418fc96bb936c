"""The built-in CRM's Python API: create, get, update, delete and list every kind."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import text

from crmsync.crm.builtin import (
    BuiltinCrm,
    Duplicate,
    EventRelations,
    InUse,
    InvalidRecord,
    NotFound,
    OwnedKind,
    StaleVersion,
)
from crmsync.domain.records import Contact, Event, EventTiming, Lead, Profile, User
from tests.crm.samples import EVENTS, FULL_CONTACT, LEAD, PERSON_ACCOUNT


def test_schema_is_created_once_and_reopens(crm_url: str) -> None:
    with BuiltinCrm(crm_url) as first:
        user = first.create_user("ann@example.com")
    with BuiltinCrm(crm_url) as again:
        assert again.get_user(user.id) == user
        assert again.current_stamp() == 1


def test_a_database_from_before_a_new_column_gains_it(crm_url: str) -> None:
    with BuiltinCrm(crm_url) as crm:
        ann = crm.create_user("ann@example.com")
        old = crm.create_event(ann.id, EVENTS["weekly_series"])
        with crm.engine.begin() as conn:
            conn.execute(text("ALTER TABLE crm_events DROP COLUMN recurrence_rdates"))
    with BuiltinCrm(crm_url) as crm:
        assert crm.get_event(old.id).record == EVENTS["weekly_series"]
        extra = dt.datetime(2031, 1, 1, 9, tzinfo=dt.UTC)
        assert EVENTS["weekly_series"].recurrence is not None
        with_rdate = dataclasses.replace(
            EVENTS["weekly_series"],
            recurrence=dataclasses.replace(EVENTS["weekly_series"].recurrence, rdates=(extra,)),
        )
        stored = crm.create_event(ann.id, with_rdate)
        assert crm.get_event(stored.id).record == with_rdate


def test_profile_crud(crm: BuiltinCrm) -> None:
    sales = crm.create_profile("Sales")
    assert crm.get_profile(sales.id) == sales
    assert crm.find_profile("Sales") == sales
    assert crm.find_profile("Nobody") is None
    renamed = crm.update_profile(Profile(sales.id, "Field sales"))
    assert crm.list_profiles() == [renamed]
    with pytest.raises(Duplicate):
        crm.create_profile("Field sales")
    crm.delete_profile(sales.id)
    assert crm.list_profiles() == []
    with pytest.raises(NotFound):
        crm.get_profile(sales.id)
    with pytest.raises(NotFound):
        crm.delete_profile(sales.id)


def test_profile_in_use_is_not_deleted(crm: BuiltinCrm) -> None:
    sales = crm.create_profile("Sales")
    crm.create_user("ann@example.com", profile_id=sales.id)
    with pytest.raises(InUse):
        crm.delete_profile(sales.id)


def test_user_crud(crm: BuiltinCrm) -> None:
    sales = crm.create_profile("Sales")
    ann = crm.create_user("Ann@Example.com", "Ann", profile_id=sales.id, time_zone="Asia/Tokyo")
    assert ann.id.startswith("usr_")
    assert crm.get_user(ann.id) == ann
    changed = dataclasses.replace(ann, name="Ann B.", active=False, profile_id=None)
    assert crm.update_user(changed) == changed
    assert crm.get_user(ann.id) == changed
    assert crm.list_users() == [changed]
    assert crm.list_users(active=True) == []
    crm.delete_user(ann.id)
    with pytest.raises(NotFound):
        crm.get_user(ann.id)


def test_user_email_is_unique_and_found_in_any_case(crm: BuiltinCrm) -> None:
    ann = crm.create_user("Ann@Example.com")
    assert crm.get_user_by_email("ann@EXAMPLE.COM") == ann
    assert crm.get_user_by_email("nobody@example.com") is None
    assert crm.get_users_by_email(["ANN@example.com", "x@y.z"]) == {"ann@example.com": ann}
    with pytest.raises(Duplicate):
        crm.create_user("ANN@example.COM")
    bob = crm.create_user("bob@example.com")
    with pytest.raises(Duplicate):
        crm.update_user(dataclasses.replace(bob, email="ann@example.com"))


@pytest.mark.parametrize(
    "bad",
    [
        User("x", "not-an-email"),
        User("x", "a@b.c", time_zone="Mars/Olympus"),
        User("x", "a@b.c", profile_id="prf_missing"),
    ],
    ids=["email", "time_zone", "profile"],
)
def test_user_content_is_checked(crm: BuiltinCrm, bad: User) -> None:
    with pytest.raises((InvalidRecord, NotFound)):
        crm.create_user(bad.email, time_zone=bad.time_zone, profile_id=bad.profile_id)


def test_user_owning_records_is_not_deleted(crm: BuiltinCrm, ann: User) -> None:
    crm.create_lead(ann.id, LEAD)
    with pytest.raises(InUse):
        crm.delete_user(ann.id)


@pytest.mark.parametrize(
    "contact", [FULL_CONTACT, PERSON_ACCOUNT, Contact()], ids=["full", "person_account", "empty"]
)
def test_contact_crud(crm: BuiltinCrm, ann: User, bob: User, contact: Contact) -> None:
    stored = crm.create_contact(ann.id, contact)
    assert stored.id.startswith("con_") and stored.owner_id == ann.id
    assert stored.record == contact
    assert crm.get_contact(stored.id) == stored
    edited = dataclasses.replace(contact, last_name="Changed", birthdate=dt.date(2000, 1, 1))
    updated = crm.update_contact(stored.id, edited, owner_id=bob.id)
    assert int(updated.version) > int(stored.version)
    assert crm.get_contact(stored.id) == updated
    assert updated.owner_id == bob.id and updated.record == edited
    crm.delete_contact(stored.id)
    with pytest.raises(NotFound):
        crm.get_contact(stored.id)
    with pytest.raises(NotFound):
        crm.delete_contact(stored.id)


def test_person_accounts_are_listed_with_contacts(crm: BuiltinCrm, ann: User, bob: User) -> None:
    plain = crm.create_contact(ann.id, FULL_CONTACT)
    person = crm.create_contact(ann.id, PERSON_ACCOUNT)
    crm.create_contact(bob.id, Contact(first_name="Other"))
    assert {s.id for s in crm.list_contacts(owner_id=ann.id)} == {plain.id, person.id}
    assert [s.id for s in crm.list_contacts(person_accounts=True)] == [person.id]
    assert len(crm.list_contacts(person_accounts=False)) == 2


def test_lead_crud(crm: BuiltinCrm, ann: User) -> None:
    stored = crm.create_lead(ann.id, LEAD, id="00Q000000000001")
    assert stored.id == "00Q000000000001"
    assert crm.get_lead(stored.id).record == LEAD
    converted = crm.update_lead(stored.id, dataclasses.replace(LEAD, status="Converted"))
    assert crm.list_leads(owner_id=ann.id) == [converted]
    with pytest.raises(Duplicate):
        crm.create_lead(ann.id, LEAD, id=stored.id)
    crm.delete_lead(stored.id)
    assert crm.list_leads() == []


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_event_crud_keeps_every_field(crm: BuiltinCrm, ann: User, name: str) -> None:
    event = EVENTS[name]
    stored = crm.create_event(ann.id, event)
    assert crm.get_event(stored.id).record == event
    moved = dataclasses.replace(event, subject="Renamed", location="Elsewhere")
    assert crm.update_event(stored.id, moved).record == moved
    assert crm.get_event(stored.id).record == moved
    assert crm.list_events(owner_id=ann.id)[0].record == moved
    crm.delete_event(stored.id)
    assert crm.list_events() == []


def test_event_instants_come_back_in_utc(crm: BuiltinCrm, ann: User) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    event = Event(
        "x",
        EventTiming(
            dt.datetime(2024, 5, 1, 9, tzinfo=paris),
            dt.datetime(2024, 5, 1, 10, tzinfo=paris),
            "Europe/Paris",
        ),
    )
    timing = crm.create_event(ann.id, event).record.timing
    assert timing.start == dt.datetime(2024, 5, 1, 7, tzinfo=dt.UTC)
    assert timing.start.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "timing",
    [
        EventTiming(dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 10)),
        EventTiming(dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), dt.date(2024, 1, 2)),
        EventTiming(dt.date(2024, 1, 2), dt.date(2024, 1, 1)),
        EventTiming(dt.date(2024, 1, 1), dt.date(2024, 1, 2), "Europe/Paris"),
    ],
    ids=["naive", "mixed", "backwards", "all_day_with_tzid"],
)
def test_bad_event_timing_is_refused(crm: BuiltinCrm, ann: User, timing: EventTiming) -> None:
    with pytest.raises(InvalidRecord):
        crm.create_event(ann.id, Event("bad", timing))
    assert crm.list_events() == []


def test_owned_record_needs_a_known_owner(crm: BuiltinCrm) -> None:
    with pytest.raises(NotFound):
        crm.create_contact("usr_missing", FULL_CONTACT)


def test_wrong_record_type_is_a_programming_error(crm: BuiltinCrm, ann: User) -> None:
    with pytest.raises(TypeError):
        crm.add_record(OwnedKind.CONTACT, ann.id, LEAD)


def test_update_with_stale_version(crm: BuiltinCrm, ann: User) -> None:
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    crm.update_contact(stored.id, PERSON_ACCOUNT, version=stored.version)
    with pytest.raises(StaleVersion):
        crm.update_contact(stored.id, FULL_CONTACT, version=stored.version)
    with pytest.raises(StaleVersion):
        crm.delete_contact(stored.id, version=stored.version)


def test_event_relations(crm: BuiltinCrm, ann: User) -> None:
    event = crm.create_event(ann.id, EVENTS["timed"])
    c1 = crm.create_contact(ann.id, FULL_CONTACT)
    c2 = crm.create_contact(ann.id, PERSON_ACCOUNT)
    lead1 = crm.create_lead(ann.id, LEAD)
    lead2 = crm.create_lead(ann.id, Lead(company="Other"))
    assert crm.event_relations(event.id) == EventRelations()
    crm.relate_event(event.id, contact_id=c1.id)
    crm.relate_event(event.id, contact_id=c2.id)
    crm.relate_event(event.id, contact_id=c1.id)  # again: no-op
    crm.relate_event(event.id, lead_id=lead1.id)
    crm.relate_event(event.id, lead_id=lead2.id)  # one lead: replaces
    assert crm.event_relations(event.id) == EventRelations((c1.id, c2.id), lead2.id)
    crm.unrelate_event(event.id, contact_id=c1.id)
    crm.unrelate_event(event.id, contact_id=c1.id)  # gone already: no-op
    assert crm.event_relations(event.id) == EventRelations((c2.id,), lead2.id)
    # Deleting a related record removes the relation with it.
    crm.delete_lead(lead2.id)
    crm.delete_contact(c2.id)
    assert crm.event_relations(event.id) == EventRelations()
    crm.set_event_relations(event.id, EventRelations((c1.id,), lead1.id))
    assert crm.event_relations(event.id) == EventRelations((c1.id,), lead1.id)
    crm.delete_event(event.id)
    assert crm.event_relations(event.id) == EventRelations()


def test_relating_missing_records(crm: BuiltinCrm, ann: User) -> None:
    event = crm.create_event(ann.id, EVENTS["timed"])
    with pytest.raises(NotFound):
        crm.relate_event(event.id, contact_id="con_missing")
    with pytest.raises(NotFound):
        crm.relate_event("evt_missing", lead_id=crm.create_lead(ann.id, LEAD).id)
    with pytest.raises(ValueError):
        crm.relate_event(event.id)


def test_every_write_takes_a_new_stamp(crm: BuiltinCrm, ann: User) -> None:
    versions = [crm.create_contact(ann.id, Contact(first_name=str(i))).version for i in range(5)]
    assert [int(v) for v in versions] == sorted({int(v) for v in versions})
    assert crm.current_stamp() == int(versions[-1])
