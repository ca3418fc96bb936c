"""The contract every CRM ``ItemSide`` must pass, whichever CRM is behind it.

What the engine relies on from the CRM side (see ``crmsync.engine.ports.ItemSide``): a
change feed with tombstones, owner scope (a record given to someone else leaves the rep's
scope), markers scoped to the rep, person accounts among contacts, series with moved and
cancelled occurrences. A CRM's test module subclasses `CrmSideContract` and provides a
``harness`` fixture returning a `CrmHarness`; the sample records hold only what every CRM
stores (a Salesforce Event has no attendees, categories or per-event zone: times read in
the owner's zone, so the samples use the rep's).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Protocol

import pytest

from crmsync.domain.records import (
    Address,
    Contact,
    Event,
    EventTiming,
    ItemKind,
    Occurrence,
    Recurrence,
    ShowAs,
)
from crmsync.domain.sync import VersionConflict
from crmsync.engine.ports import ItemSide

UTC = dt.UTC
REP_ZONE = "Europe/Paris"


class CrmHarness(Protocol):
    contacts: ItemSide  # the rep's own contacts
    events: ItemSide
    other_contacts: ItemSide  # another rep's contacts

    def request_count(self) -> int:
        """API requests sent so far (0 for a CRM without metered requests)."""
        ...

    def edit_contact(self, item_id: str, **fields: object) -> None:
        """Change contact fields as a person in the CRM would."""
        ...

    def delete_item(self, kind: ItemKind, item_id: str) -> None: ...

    def give_to_other_rep(self, kind: ItemKind, item_id: str) -> None: ...

    def add_person_account(self, contact: Contact) -> str:
        """A person account of the rep, made in the CRM; returns its contact item id."""
        ...

    def move_occurrence(self, series_id: str, original: dt.datetime, to: dt.datetime) -> None:
        """Move one occurrence of a series (keeping its length), as a person would."""
        ...

    def invalid_cursor(self) -> str: ...


def contact(n: int = 1) -> Contact:
    return Contact(
        first_name=f"Ada{n}",
        last_name="Lovelace",
        salutation="Ms.",
        title="Analyst",
        department="Engines",
        email=f"ada{n}@example.com",
        phone="+44 20 7946 0000",
        mobile_phone="+44 7700 900000",
        home_phone="+44 20 7946 0001",
        other_phone="+44 20 7946 0003",
        fax="+44 20 7946 0002",
        mailing_address=Address("12 St James's Square\nFloor 2", "London", "", "SW1Y 4JH", "UK"),
        other_address=Address("Ockham Park", "Ockham", "Surrey", "GU23 6NP", "UK"),
        birthdate=dt.date(1815, 12, 10),
        description="Notes, with commas; semicolons\nand a 'quoted' line",
    )


def timed_event(subject: str = "Quarterly review") -> Event:
    start = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    return Event(
        subject=subject,
        timing=EventTiming(start, start + dt.timedelta(hours=1), REP_ZONE),
        location="Room 4, 2nd floor",
        description="Agenda:\n- numbers\n- plans",
        show_as=ShowAs.BUSY,
    )


def all_day_event() -> Event:
    return Event(
        subject="Offsite",
        timing=EventTiming(dt.date(2026, 6, 1), dt.date(2026, 6, 3)),
        show_as=ShowAs.OUT_OF_OFFICE,
        is_private=True,
    )


WEEK = dt.timedelta(days=7)
HOUR = dt.timedelta(hours=1)
SERIES_START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 09:00 in Paris


def weekly_series() -> Event:
    """A weekly series with one moved and one cancelled occurrence."""
    moved_from = SERIES_START + 2 * WEEK
    moved_to = moved_from + dt.timedelta(days=1, hours=2)
    return Event(
        subject="Weekly pipeline",
        timing=EventTiming(SERIES_START, SERIES_START + HOUR, REP_ZONE),
        location="Room 1",
        recurrence=Recurrence(
            rule="FREQ=WEEKLY;COUNT=8;BYDAY=MO",
            exdates=(SERIES_START + 3 * WEEK,),
            overrides=(
                Occurrence(
                    moved_from, EventTiming(moved_to, moved_to + HOUR, REP_ZONE), "Moved", "Room 1"
                ),
            ),
        ),
    )


def _ours(items: tuple, markers: set[str]) -> list:
    return [s for s in items if s.marker in markers]


class CrmSideContract:
    """Behaviour the engine relies on from any CRM side."""

    @pytest.fixture
    def harness(self) -> CrmHarness:
        raise NotImplementedError("a CRM's test module provides the harness")

    # ---------------------------------------------------------------- listing

    def test_initial_full_listing(self, harness: CrmHarness) -> None:
        written = [harness.contacts.create(contact(n), f"c{n}") for n in range(3)]
        changes = harness.contacts.changes(None, {})
        assert changes.full and changes.cursor
        ours = {s.id: s for s in _ours(changes.items, {"c0", "c1", "c2"})}
        assert set(ours) == {w.id for w in written}
        for w in written:
            assert (ours[w.id].version, ours[w.id].record) == (w.version, w.record)

    def test_full_listing_skips_known_unchanged_items(self, harness: CrmHarness) -> None:
        a = harness.contacts.create(contact(1), "a")
        b = harness.contacts.create(contact(2), "b")
        changes = harness.contacts.changes(None, {a.id: a.version, b.id: "stale", "gone": "x"})
        assert changes.full
        assert [s.id for s in _ours(changes.items, {"a", "b"})] == [b.id]
        assert changes.deleted == ("gone",)

    # ---------------------------------------------------------------- round trips

    def test_contact_round_trip(self, harness: CrmHarness) -> None:
        side = harness.contacts
        written = side.create(contact(), "mail-1")
        assert written.record == contact()
        fetched = side.fetch(written.id)
        assert fetched is not None
        assert (fetched.record, fetched.marker, fetched.version) == (
            written.record,
            "mail-1",
            written.version,
        )
        changed = dataclasses.replace(
            contact(), title="Chief Analyst", fax="", other_address=Address()
        )
        updated = side.update(written.id, written.version, changed)
        assert updated.record == changed and updated.version != written.version
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == changed and fetched.marker == "mail-1"
        side.delete(written.id, updated.version)
        assert side.fetch(written.id) is None

    @pytest.mark.parametrize(
        "event",
        [timed_event(), weekly_series(), all_day_event()],
        ids=["timed", "weekly-series", "all-day"],
    )
    def test_event_round_trip(self, harness: CrmHarness, event: Event) -> None:
        side = harness.events
        written = side.create(event, "mail-" + event.subject.replace(" ", "-"))
        assert written.record == event
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == event
        changed = dataclasses.replace(event, subject=event.subject + " (moved)", location="HQ")
        updated = side.update(written.id, written.version, changed)
        assert updated.record == changed
        fetched = side.fetch(updated.id)
        assert fetched is not None and fetched.record == changed
        side.delete(updated.id, updated.version)
        assert side.fetch(updated.id) is None

    def test_series_edits_round_trip(self, harness: CrmHarness) -> None:
        side = harness.events
        series = weekly_series()
        assert series.recurrence is not None
        written = side.create(series, "series")
        later = dt.timedelta(hours=3)
        rec = dataclasses.replace(
            series.recurrence,
            exdates=(*series.recurrence.exdates, SERIES_START + 5 * WEEK),
            overrides=(
                *series.recurrence.overrides,
                Occurrence(
                    SERIES_START + WEEK,
                    EventTiming(
                        SERIES_START + WEEK + later, SERIES_START + WEEK + later + HOUR, REP_ZONE
                    ),
                    "Later",
                    "Room 9",
                ),
            ),
        )
        changed = dataclasses.replace(series, recurrence=rec)
        updated = side.update(written.id, written.version, changed)
        assert updated.record == changed
        fetched = side.fetch(updated.id)
        assert fetched is not None and fetched.record == changed

    def test_series_pattern_change_keeps_one_item(self, harness: CrmHarness) -> None:
        side = harness.events
        series = weekly_series()
        assert series.recurrence is not None
        written = side.create(series, "pattern")
        shorter = dataclasses.replace(
            series,
            recurrence=Recurrence("FREQ=WEEKLY;COUNT=4;BYDAY=MO", series.recurrence.exdates),
        )
        updated = side.update(written.id, written.version, shorter)
        assert updated.record == shorter
        listing = side.changes(None, {})
        assert [s.id for s in _ours(listing.items, {"pattern"})] == [updated.id]

    def test_delete_of_missing_item_is_fine(self, harness: CrmHarness) -> None:
        written = harness.contacts.create(contact(), "gone")
        harness.contacts.delete(written.id, written.version)
        harness.contacts.delete(written.id, written.version)

    # ---------------------------------------------------------------- change detection

    def test_incremental_changes_show_crm_edit_and_delete(self, harness: CrmHarness) -> None:
        side = harness.contacts
        a = side.create(contact(1), "a")
        b = side.create(contact(2), "b")
        first = side.changes(None, {})
        known = {a.id: a.version, b.id: b.version}
        harness.edit_contact(a.id, title="CTO")
        harness.delete_item(ItemKind.CONTACT, b.id)
        changes = side.changes(first.cursor, known)
        assert not changes.full
        edited = [s for s in changes.items if s.id == a.id]
        assert len(edited) == 1 and edited[0].record is not None
        assert edited[0].record.title == "CTO"  # type: ignore[union-attr]
        assert edited[0].version != a.version
        assert b.id in changes.deleted
        assert changes.cursor

    def test_own_writes_come_back_unchanged(self, harness: CrmHarness) -> None:
        # A CRM may list our own write again, but with the version the write returned,
        # so the planner sees nothing to do.
        side = harness.events
        first = side.changes(None, {})
        written = side.create(timed_event(), "own")
        changes = side.changes(first.cursor, {written.id: written.version})
        assert {s.version for s in changes.items if s.id == written.id} <= {written.version}

    def test_no_change_cycle_costs_at_most_one_request_per_kind(self, harness: CrmHarness) -> None:
        for side, record in ((harness.contacts, contact()), (harness.events, timed_event())):
            written = side.create(record, "quiet")
            known = {written.id: written.version}
            cursor = side.changes(None, known).cursor
            before = harness.request_count()
            changes = side.changes(cursor, known)
            assert harness.request_count() - before <= 1
            assert changes.items == () and changes.deleted == ()

    def test_rejected_cursor_gives_full_listing(self, harness: CrmHarness) -> None:
        side = harness.contacts
        a = side.create(contact(1), "a")
        b = side.create(contact(2), "b")
        c = side.create(contact(3), "c")
        harness.edit_contact(b.id, title="VP")
        harness.delete_item(ItemKind.CONTACT, c.id)
        known = {a.id: a.version, b.id: b.version, c.id: c.version}
        changes = side.changes(harness.invalid_cursor(), known)
        assert changes.full and changes.cursor
        assert [s.id for s in _ours(changes.items, {"a", "b", "c"})] == [b.id]
        assert changes.deleted == (c.id,)
        assert not side.changes(changes.cursor, {a.id: a.version}).full

    def test_moved_occurrence_shows_as_series_change(self, harness: CrmHarness) -> None:
        side = harness.events
        series = weekly_series()
        written = side.create(series, "moved")
        first = side.changes(None, {written.id: written.version})
        harness.move_occurrence(written.id, SERIES_START + 4 * WEEK, SERIES_START + 4 * WEEK + HOUR)
        changes = side.changes(first.cursor, {written.id: written.version})
        (seen,) = [s for s in changes.items if s.id == written.id]
        assert seen.record is not None and seen.record.recurrence is not None  # type: ignore[union-attr]
        moved = {o.recurrence_id: o for o in seen.record.recurrence.overrides}  # type: ignore[union-attr]
        assert moved[SERIES_START + 4 * WEEK].timing.start == SERIES_START + 4 * WEEK + HOUR

    # ---------------------------------------------------------------- owners, markers, persons

    def test_records_of_other_reps_are_out_of_scope(self, harness: CrmHarness) -> None:
        theirs = harness.other_contacts.create(contact(7), "theirs")
        assert harness.contacts.fetch(theirs.id) is None
        listing = harness.contacts.changes(None, {})
        assert theirs.id not in {s.id for s in listing.items}

    def test_record_given_to_another_rep_leaves_the_scope(self, harness: CrmHarness) -> None:
        side = harness.contacts
        mine = side.create(contact(), "mine")
        cursor = side.changes(None, {mine.id: mine.version}).cursor
        harness.give_to_other_rep(ItemKind.CONTACT, mine.id)
        changes = side.changes(cursor, {mine.id: mine.version})
        assert mine.id in changes.deleted
        assert side.fetch(mine.id) is None
        side.delete(mine.id, mine.version)  # gone from the scope: nothing to do
        assert harness.other_contacts.fetch(mine.id) is not None

    def test_markers_are_scoped_to_the_rep(self, harness: CrmHarness) -> None:
        mine = harness.contacts.create(contact(1), "same-href")
        theirs = harness.other_contacts.create(contact(1), "same-href")
        assert mine.id != theirs.id

    def test_person_account_syncs_as_a_contact(self, harness: CrmHarness) -> None:
        person = Contact(first_name="Pat", last_name="Solo", email="pat@example.com")
        item_id = harness.add_person_account(person)
        (seen,) = [s for s in harness.contacts.changes(None, {}).items if s.id == item_id]
        assert seen.record == dataclasses.replace(person, is_person_account=True)
        edited = dataclasses.replace(person, title="Owner", phone="+1 555 0100")
        written = harness.contacts.update(item_id, seen.version, edited)
        assert written.record == dataclasses.replace(edited, is_person_account=True)

    # ---------------------------------------------------------------- concurrency

    def test_stale_version_is_a_conflict(self, harness: CrmHarness) -> None:
        side = harness.contacts
        written = side.create(contact(), "stale")
        harness.edit_contact(written.id, title="X")
        with pytest.raises(VersionConflict):
            side.update(written.id, written.version, dataclasses.replace(contact(), title="Y"))
        with pytest.raises(VersionConflict):
            side.delete(written.id, written.version)
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record.title == "X"  # type: ignore[union-attr]

    def test_create_twice_with_same_marker_makes_no_duplicate(self, harness: CrmHarness) -> None:
        for side, record in ((harness.contacts, contact()), (harness.events, weekly_series())):
            first = side.create(record, "crm-42")
            second = side.create(record, "crm-42")
            assert (second.id, second.version, second.record) == (
                first.id,
                first.version,
                first.record,
            )
            listing = side.changes(None, {})
            assert [s.id for s in listing.items if s.marker == "crm-42"] == [first.id]
