"""Salesforce sides beyond the contract: the shared org feed, events' Salesforce rules,
auto-relate, custom fields in mappings, users and profiles."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.errors import ConfigurationProblem
from crmsync.crm.salesforce.versions import cursor_text
from crmsync.domain.contact_fields import FieldMapping, FieldType, contact_field_map
from crmsync.domain.records import Attendee, Event, EventTiming, ItemKind, ShowAs
from crmsync.domain.sync import RejectedWrite, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from tests.crm.contract import contact, timed_event
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.harness import OrgHarness, fake_harness
from tests.engine.memory import MemorySide, MemoryState

UTC = dt.UTC


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def org() -> Iterator[OrgHarness]:
    harness = fake_harness()
    yield harness
    harness.close()


def test_one_feed_query_per_object_per_interval_serves_every_rep() -> None:
    clock = Clock()
    harness = fake_harness(poll_interval=60.0, clock=clock)
    try:
        assert harness.fake is not None
        crm = harness.crm
        reps = [u for u in crm.list_users(active=True) if u.email != "integration@example.com"]
        sides = {u.id: crm.side(u.id, ItemKind.CONTACT) for u in reps}
        cursors = {rep: side.changes(None, {}).cursor for rep, side in sides.items()}
        for n, rep in enumerate(sides):
            sides[rep].create(dataclasses.replace(contact(n), last_name=f"Rep {n}"), f"m{n}")
        clock.now += 60
        before = harness.fake.api_calls("GET", "/services/data/v62.0/queryAll")
        seen = {rep: side.changes(cursors[rep], {}) for rep, side in sides.items()}
        assert harness.fake.api_calls("GET", "/services/data/v62.0/queryAll") - before == 1
        for n, rep in enumerate(sides):
            assert [s.record.last_name for s in seen[rep].items] == [f"Rep {n}"]  # type: ignore[union-attr]
        clock.now += 30  # within the interval: answered from the feed, no call
        before = len(harness.fake.calls)
        for rep, side in sides.items():
            side.changes(seen[rep].cursor, {})
        assert len(harness.fake.calls) == before
    finally:
        harness.close()


@pytest.mark.parametrize("kind", [ItemKind.CONTACT, ItemKind.EVENT])
def test_the_feed_polled_before_our_write_does_not_undo_it_on_the_mail_side(
    kind: ItemKind,
) -> None:
    """The engine's settling round after a write reads the feed again within the same
    interval: the feed's copy of the record predates our write, and is no change."""
    clock = Clock()
    harness = fake_harness(poll_interval=60.0, clock=clock)
    try:
        crm, rep = harness.crm, harness.rep.id
        mail, state = MemorySide("m"), MemoryState()
        sample = contact() if kind is ItemKind.CONTACT else timed_event()
        item = mail.put(sample)
        sync_kind(rep, kind, crm.side(rep, kind), mail, state, Policy())
        clock.now += 60
        crm.side(rep, kind).changes(state.cursor(rep, kind, Side.CRM), {})  # a poll
        edited = dataclasses.replace(sample, description="after the poll")
        mail.put(edited, item)

        report = sync_kind(rep, kind, crm.side(rep, kind), mail, state, Policy())

        assert report.writes == {("update", Side.CRM): 1}
        assert mail.items[item].record == edited
    finally:
        harness.close()


def test_a_cursor_older_than_the_deletion_log_gets_a_full_listing(org: OrgHarness) -> None:
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    side.create(contact(), "a")
    side.changes(None, {})
    old = cursor_text(dt.datetime(2000, 1, 1, tzinfo=UTC) - dt.timedelta(days=16))
    org.crm.feed("Contact")._end = dt.datetime(2000, 1, 1, tzinfo=UTC)  # the org's head
    assert side.changes(old, {}).full


def test_a_feed_that_lost_its_rows_reads_the_missing_stretch_once(org: OrgHarness) -> None:
    assert org.fake is not None
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    cursor = side.changes(None, {}).cursor
    written = side.create(contact(), "a")
    feed = org.crm.feed("Contact")
    feed._rows.clear()
    feed._order.clear()
    feed._start = feed.watermark()  # as after pruning
    assert feed._start is not None
    feed._start += dt.timedelta(hours=1)
    assert [s.id for s in side.changes(cursor, {}).items] == [written.id]


def test_person_account_is_deleted_through_its_account(org: OrgHarness) -> None:
    assert org.fake is not None
    (account,) = collections.create(
        org.crm.conn, "Account", [{"LastName": "Solo", "OwnerId": org.rep.id}]
    )
    contact_id = org.fake.org.rows["Account"][str(account.id)]["PersonContactId"]
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    seen = side.fetch(contact_id)
    assert seen is not None and seen.record.is_person_account  # type: ignore[union-attr]
    side.delete(contact_id, seen.version)
    assert org.fake.org.rows["Account"][str(account.id)]["IsDeleted"]
    assert side.fetch(contact_id) is None


def test_account_name_links_the_one_account_of_that_name(org: OrgHarness) -> None:
    collections.create(org.crm.conn, "Account", [{"Name": "Babbage & Co", "OwnerId": org.rep.id}])
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    written = side.create(dataclasses.replace(contact(), account_name="Babbage & Co"), "a")
    assert written.record.account_name == "Babbage & Co"  # type: ignore[union-attr]
    unknown = side.create(dataclasses.replace(contact(2), account_name="Nobody Ltd"), "b")
    assert unknown.record.account_name == ""  # type: ignore[union-attr]


def test_custom_contact_fields_map_with_their_types() -> None:
    harness = fake_harness(
        org=FakeOrg(custom_contact_fields={"Nickname__c": "string", "Since__c": "date"})
    )
    try:
        crm = harness.crm
        types = crm.custom_field_types()
        assert types == {"Nickname__c": FieldType.TEXT, "Since__c": FieldType.DATE}
        mapping = contact_field_map((FieldMapping("description", "custom:Nickname__c"),), types)
        side = crm.side(harness.rep.id, ItemKind.CONTACT, field_map=mapping)
        record = dataclasses.replace(contact(), description="Ada")
        written = side.create(record, "a")
        assert written.record == record
        assert harness.fake is not None
        row = harness.fake.org.rows["Contact"][written.id]
        assert (row["Nickname__c"], row["Description"]) == ("Ada", None)
        gone = contact_field_map(
            (FieldMapping("description", "custom:Gone__c"),), {"Gone__c": FieldType.TEXT}
        )
        with pytest.raises(ConfigurationProblem):
            crm.side(harness.rep.id, ItemKind.CONTACT, field_map=gone)
    finally:
        harness.close()


def test_too_long_values_become_rejected_writes_naming_the_field(org: OrgHarness) -> None:
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    with pytest.raises(RejectedWrite) as refused:
        side.create(dataclasses.replace(contact(), first_name="x" * 41), "long")
    assert "FirstName" in refused.value.suggestion


# ---------------------------------------------------------------- events


def test_an_event_longer_than_14_days_is_refused_not_crashed(org: OrgHarness) -> None:
    side = org.crm.side(org.rep.id, ItemKind.EVENT)
    long = Event("Sabbatical", EventTiming(dt.date(2026, 7, 1), dt.date(2026, 7, 20)))
    with pytest.raises(RejectedWrite, match="14-day"):
        side.create(long, "long")


def test_what_salesforce_cannot_hold_is_not_written(org: OrgHarness) -> None:
    assert org.fake is not None
    side = org.crm.side(org.rep.id, ItemKind.EVENT)
    event = dataclasses.replace(
        timed_event(),
        show_as=ShowAs.TENTATIVE,
        attendees=(Attendee("x@example.com"),),
        categories=("CRM",),
    )
    written = side.create(event, "t")
    assert written.record == dataclasses.replace(timed_event(), show_as=ShowAs.BUSY)
    calls = len(org.fake.calls)
    side.update(written.id, written.version, event)  # nothing it can hold changed
    assert org.fake.api_calls("PATCH") == 0 and len(org.fake.calls) - calls == 2  # two reads


def test_invitee_copies_are_skipped_and_classic_series_left_out_with_the_reason(
    org: OrgHarness,
) -> None:
    assert org.fake is not None
    (mine,) = collections.create(
        org.crm.conn,
        "Event",
        [
            {
                "Subject": "x",
                "OwnerId": org.rep.id,
                "StartDateTime": "2026-03-02T15:00:00.000+0000",
                "EndDateTime": "2026-03-02T16:00:00.000+0000",
            }
        ],
    )
    (child,) = collections.create(
        org.crm.conn,
        "Event",
        [
            {
                "Subject": "copy",
                "OwnerId": org.rep.id,
                "StartDateTime": "2026-03-02T15:00:00.000+0000",
                "EndDateTime": "2026-03-02T16:00:00.000+0000",
            }
        ],
    )
    org.fake.org.edit(str(child.id), IsChild=True)
    (classic,) = collections.create(
        org.crm.conn,
        "Event",
        [
            {
                "Subject": "classic",
                "OwnerId": org.rep.id,
                "IsRecurrence": True,
                "StartDateTime": "2026-03-02T15:00:00.000+0000",
                "EndDateTime": "2026-03-02T16:00:00.000+0000",
            }
        ],
    )
    listing = org.crm.side(org.rep.id, ItemKind.EVENT).changes(None, {})
    by_id = {s.id: s for s in listing.items}
    assert set(by_id) == {mine.id, classic.id}
    assert by_id[str(classic.id)].left_out and "Classic" in by_id[str(classic.id)].note


@pytest.mark.parametrize("shared_activities", [True, False])
def test_auto_relate_to_contacts(shared_activities: bool) -> None:
    harness = fake_harness(org=FakeOrg(shared_activities=shared_activities))
    try:
        assert harness.fake is not None
        crm, rep = harness.crm, harness.rep
        ids = [
            str(r.id)
            for r in collections.create(
                crm.conn,
                "Contact",
                [
                    {"LastName": "A", "Email": "a@example.com"},
                    {"LastName": "B", "Email": "b@example.com"},
                ],
            )
        ]
        side = crm.side(rep.id, ItemKind.EVENT, auto_relate=True)
        event = dataclasses.replace(
            timed_event(), attendees=(Attendee("A@example.com"), Attendee("b@example.com"))
        )
        written = side.create(event, "rel")
        row = harness.fake.org.rows["Event"][written.id]
        if shared_activities:
            assert sorted(row["EventWhoIds"]) == sorted(ids)
        else:
            assert row["WhoId"] == min(ids)
    finally:
        harness.close()


def test_auto_relate_falls_back_to_one_unconverted_lead(org: OrgHarness) -> None:
    assert org.fake is not None
    (lead,) = collections.create(
        org.crm.conn, "Lead", [{"LastName": "L", "Company": "C", "Email": "lead@example.com"}]
    )
    side = org.crm.side(org.rep.id, ItemKind.EVENT, auto_relate=True)
    written = side.create(
        dataclasses.replace(timed_event(), attendees=(Attendee("lead@example.com"),)), "l"
    )
    assert org.fake.org.rows["Event"][written.id]["WhoId"] == lead.id


# ---------------------------------------------------------------- users, profiles


def test_users_and_profiles_come_from_the_org(org: OrgHarness) -> None:
    crm = org.crm
    sales = crm.find_profile("Sales")
    assert sales is not None and crm.get_profile(sales.id) == sales
    ann = crm.get_user_by_email("ANN@example.com")
    assert ann is not None and ann.profile_id == sales.id and ann.time_zone == "Europe/Paris"
    assert {u.email for u in crm.list_users(active=True)} >= {"ann@example.com", "bob@example.com"}
    assert crm.find_profile("Nope") is None


def test_a_contact_without_the_marker_field_is_a_configuration_problem() -> None:
    org = FakeOrg()
    del org.schema["Contact"]["CrmSync_Key__c"]
    harness = fake_harness(org=org)
    try:
        with pytest.raises(ConfigurationProblem, match="marker"):
            harness.crm.side(harness.rep.id, ItemKind.CONTACT).changes(None, {})
    finally:
        harness.close()
