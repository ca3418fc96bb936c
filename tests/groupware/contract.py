"""The contract every groupware ``ItemSide`` must pass, whatever the server behind it.

A backend's test module subclasses `ItemSideContract` and provides a ``harness`` fixture
returning a `ContractHarness`: the two sides under test, a request counter, and a way to
change items as another client would (the rep editing in their mail program).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Protocol

import pytest

from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Occurrence,
    Record,
    Recurrence,
    ShowAs,
)
from crmsync.domain.sync import VersionConflict
from crmsync.engine.ports import ItemSide

UTC = dt.UTC


class ContractHarness(Protocol):
    contacts: ItemSide
    events: ItemSide

    def request_count(self) -> int:
        """Requests sent to the server so far by the sides under test."""
        ...

    def foreign_edit(self, side: ItemSide, item_id: str, record: Record) -> None:
        """Change the item as another client would (its version changes)."""
        ...

    def foreign_delete(self, side: ItemSide, item_id: str) -> None: ...

    def invalid_cursor(self, side: ItemSide) -> str:
        """A cursor the server will reject (expired or never issued)."""
        ...


def sample_contact(n: int = 1) -> Contact:
    return Contact(
        first_name=f"Ada{n}",
        last_name="Lovelace",
        salutation="Ms.",
        title="Analyst",
        department="Engines",
        account_name="Babbage & Co",
        email=f"ada{n}@example.com",
        phone="+44 20 7946 0000",
        mobile_phone="+44 7700 900000",
        home_phone="+44 20 7946 0001",
        fax="+44 20 7946 0002",
        other_phone="+44 20 7946 0003",
        mailing_address=Address("12 St James's Square", "London", "", "SW1Y 4JH", "UK"),
        other_address=Address("Ockham Park", "Ockham", "Surrey", "GU23 6NP", "UK"),
        birthdate=dt.date(1815, 12, 10),
        description="Notes, with commas; semicolons\nand a second line",
    )


def sample_event(subject: str = "Quarterly review") -> Event:
    start = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    return Event(
        subject=subject,
        timing=EventTiming(start, start + dt.timedelta(hours=1), "Europe/Paris"),
        location="Room 4, 2nd floor",
        description="Agenda:\n- numbers\n- plans",
        show_as=ShowAs.BUSY,
        categories=("CRM", "Customers"),
        attendees=(
            Attendee("ceo@example.com", "The CEO", AttendeeStatus.ACCEPTED),
            Attendee("cfo@example.com", "", AttendeeStatus.NEEDS_ACTION, required=False),
        ),
        organizer="rep@example.com",
    )


def weekly_series() -> Event:
    """A weekly series in New York with one moved and one cancelled occurrence."""
    ny = "America/New_York"
    start = dt.datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 EST
    hour = dt.timedelta(hours=1)
    week = dt.timedelta(days=7)
    moved_from = start + 2 * week
    moved_to = moved_from + dt.timedelta(days=1, hours=2)
    return Event(
        subject="Weekly pipeline",
        timing=EventTiming(start, start + hour, ny),
        recurrence=Recurrence(
            rule="FREQ=WEEKLY;COUNT=12;BYDAY=MO",
            exdates=(start + 3 * week,),
            overrides=(
                Occurrence(moved_from, EventTiming(moved_to, moved_to + hour, ny), "Moved"),
            ),
        ),
    )


def all_day_event() -> Event:
    return Event(
        subject="Offsite",
        timing=EventTiming(dt.date(2026, 6, 1), dt.date(2026, 6, 3)),
        show_as=ShowAs.OUT_OF_OFFICE,
        is_private=True,
    )


def flight() -> Event:
    """Starts in Frankfurt, ends in New York: each end keeps its own zone."""
    start = dt.datetime(2026, 5, 5, 8, 30, tzinfo=UTC)
    return Event(
        subject="Flight to the customer summit",
        timing=EventTiming(
            start, start + dt.timedelta(hours=8, minutes=30), "Europe/Berlin", "America/New_York"
        ),
    )


def new_york_event() -> Event:
    start = dt.datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 09:30 EDT
    return Event(
        subject="Call with NY",
        timing=EventTiming(start, start + dt.timedelta(minutes=45), "America/New_York"),
        show_as=ShowAs.TENTATIVE,
    )


class ItemSideContract:
    """Behaviour the engine relies on (see ``crmsync.engine.ports.ItemSide``)."""

    @pytest.fixture
    def harness(self) -> ContractHarness:
        raise NotImplementedError("a backend's test module provides the harness")

    # ---------------------------------------------------------------- listing

    def test_initial_full_listing(self, harness: ContractHarness) -> None:
        written = [harness.contacts.create(sample_contact(n), f"c{n}") for n in range(3)]
        changes = harness.contacts.changes(None, {})
        assert changes.full
        ours = {s.id: s for s in changes.items if s.marker in {"c0", "c1", "c2"}}
        assert set(ours) == {w.id for w in written}
        for w in written:
            assert ours[w.id].version == w.version
            assert ours[w.id].record == w.record
        assert changes.cursor

    def test_full_listing_skips_known_unchanged_items(self, harness: ContractHarness) -> None:
        a = harness.contacts.create(sample_contact(1), "a")
        b = harness.contacts.create(sample_contact(2), "b")
        changes = harness.contacts.changes(None, {a.id: a.version, b.id: "stale", "/gone": "x"})
        assert changes.full
        assert [s.id for s in changes.items if s.marker in ("a", "b")] == [b.id]
        assert changes.deleted == ("/gone",)

    # ---------------------------------------------------------------- round trips

    def test_contact_round_trip(self, harness: ContractHarness) -> None:
        side = harness.contacts
        written = side.create(sample_contact(), "003A")
        assert written.record == sample_contact()
        fetched = side.fetch(written.id)
        assert fetched is not None
        assert (fetched.record, fetched.marker, fetched.version) == (
            written.record,
            "003A",
            written.version,
        )
        changed = dataclasses.replace(
            sample_contact(), title="Chief Analyst", fax="", other_address=Address()
        )
        updated = side.update(written.id, written.version, changed)
        assert updated.record == changed
        assert updated.version != written.version
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == changed and fetched.marker == "003A"
        side.delete(written.id, updated.version)
        assert side.fetch(written.id) is None

    def test_company_contact_round_trip(self, harness: ContractHarness) -> None:
        # A company (no person's name) is held in the CRM with the company as its last
        # name; on the mail server it is a company contact, and reads back the same.
        side = harness.contacts
        company = Contact(
            last_name="Umbrella Corp", account_name="Umbrella Corp", email="info@umbrella.test"
        )
        written = side.create(company, "003C")
        fetched = side.fetch(written.id)
        assert written.record == company and fetched is not None and fetched.record == company
        person = dataclasses.replace(company, first_name="Tina", last_name="Toys")
        updated = side.update(written.id, fetched.version, person)
        fetched = side.fetch(written.id)
        assert updated.record == person and fetched is not None and fetched.record == person
        side.update(written.id, fetched.version, company)
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == company

    def test_control_characters_in_crm_values_are_left_out(self, harness: ContractHarness) -> None:
        # A CRM value holding control characters (a NUL or vertical tab from an old import,
        # an escape pasted from a terminal): no mail format carries them (XML 1.0, the
        # TEXT of RFC 5545 and 6350), so the item is written without them, tabs and line
        # breaks kept, reads back as written, and the collection stays listable.
        contact = dataclasses.replace(
            sample_contact(), title="Account\x00 Exec\x0b", description="a\x1b\tb\nc\x7f"
        )
        event = dataclasses.replace(sample_event(), subject="Call\x0c with\x01 Ada")
        for side, record, clean in (
            (
                harness.contacts,
                contact,
                dataclasses.replace(contact, title="Account Exec", description="a\tb\nc"),
            ),
            (harness.events, event, dataclasses.replace(event, subject="Call with Ada")),
        ):
            written = side.create(record, "ctl")
            assert written.record == clean
            fetched = side.fetch(written.id)
            assert fetched is not None and fetched.record == clean
            listed = {s.id: s.record for s in side.changes(None, {}).items}
            assert listed[written.id] == clean
            updated = side.update(written.id, fetched.version, record)
            assert updated.record == clean

    @pytest.mark.parametrize(
        "event",
        [sample_event(), weekly_series(), all_day_event(), new_york_event(), flight()],
        ids=["timed", "weekly-series", "all-day", "new-york", "flight"],
    )
    def test_event_round_trip(self, harness: ContractHarness, event: Event) -> None:
        side = harness.events
        written = side.create(event, "00U-" + event.subject.replace(" ", "-"))
        assert written.record == event
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == event
        changed = dataclasses.replace(event, subject=event.subject + " (moved)", location="HQ")
        updated = side.update(written.id, written.version, changed)
        assert updated.record == changed
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == changed
        side.delete(written.id, updated.version)
        assert side.fetch(written.id) is None

    def test_series_edits_round_trip(self, harness: ContractHarness) -> None:
        side = harness.events
        series = weekly_series()
        written = side.create(series, "series")
        assert series.recurrence is not None
        start = series.timing.start
        assert isinstance(start, dt.datetime)
        week = dt.timedelta(days=7)
        moved = dt.timedelta(hours=3)
        rec = dataclasses.replace(
            series.recurrence,
            exdates=(*series.recurrence.exdates, start + 5 * week),
            overrides=(
                Occurrence(
                    start + week,
                    EventTiming(start + week + moved, start + week + moved * 2, "America/New_York"),
                    "Later",
                    "Room 9",
                ),
            ),
        )
        changed = dataclasses.replace(series, recurrence=rec)
        assert side.update(written.id, written.version, changed).record == changed
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record == changed

    def test_delete_of_missing_item_is_fine(self, harness: ContractHarness) -> None:
        written = harness.contacts.create(sample_contact(), "gone")
        harness.contacts.delete(written.id, written.version)
        harness.contacts.delete(written.id, written.version)

    # ---------------------------------------------------------------- change detection

    def test_incremental_changes_show_foreign_edit_and_delete(
        self, harness: ContractHarness
    ) -> None:
        side = harness.contacts
        a = side.create(sample_contact(1), "a")
        b = side.create(sample_contact(2), "b")
        first = side.changes(None, {})
        known = {a.id: a.version, b.id: b.version}
        harness.foreign_edit(side, a.id, dataclasses.replace(sample_contact(1), title="CTO"))
        harness.foreign_delete(side, b.id)
        changes = side.changes(first.cursor, known)
        assert not changes.full
        edited = [s for s in changes.items if s.id == a.id]
        assert len(edited) == 1 and edited[0].record is not None
        assert edited[0].record.title == "CTO"  # type: ignore[union-attr]
        assert edited[0].version != a.version
        assert b.id in changes.deleted
        assert changes.cursor and changes.cursor != first.cursor

    def test_own_writes_are_not_downloaded_again(self, harness: ContractHarness) -> None:
        side = harness.events
        first = side.changes(None, {})
        written = side.create(sample_event(), "own")
        changes = side.changes(first.cursor, {written.id: written.version})
        assert [s.id for s in changes.items] == []

    def test_no_change_cycle_costs_at_most_two_requests(self, harness: ContractHarness) -> None:
        for side, make in ((harness.contacts, sample_contact), (harness.events, sample_event)):
            written = [
                side.create(make(n) if make is sample_contact else make(f"e{n}"), f"m{n}")
                for n in range(5)
            ]
            known = {w.id: w.version for w in written}
            cursor = side.changes(None, known).cursor
            before = harness.request_count()
            changes = side.changes(cursor, known)
            assert harness.request_count() - before <= 2
            assert changes.items == () and changes.deleted == ()

    def test_rejected_cursor_gives_full_listing_without_redownload(
        self, harness: ContractHarness
    ) -> None:
        side = harness.contacts
        a = side.create(sample_contact(1), "a")
        b = side.create(sample_contact(2), "b")
        c = side.create(sample_contact(3), "c")
        harness.foreign_edit(side, b.id, dataclasses.replace(sample_contact(2), title="VP"))
        harness.foreign_delete(side, c.id)
        known = {a.id: a.version, b.id: b.version, c.id: c.version}
        changes = side.changes(harness.invalid_cursor(side), known)
        assert changes.full
        assert [s.id for s in changes.items if s.marker in ("a", "b", "c")] == [b.id]
        assert changes.deleted == (c.id,)
        assert changes.cursor
        # The fresh cursor works incrementally.
        again = side.changes(changes.cursor, {a.id: a.version})
        assert not again.full

    # ---------------------------------------------------------------- concurrency

    def test_stale_version_is_a_conflict(self, harness: ContractHarness) -> None:
        side = harness.contacts
        written = side.create(sample_contact(), "stale")
        side.changes(None, {})  # the side may cache what it read
        harness.foreign_edit(side, written.id, dataclasses.replace(sample_contact(), title="X"))
        with pytest.raises(VersionConflict):
            side.update(
                written.id, written.version, dataclasses.replace(sample_contact(), title="Y")
            )
        with pytest.raises(VersionConflict):
            side.delete(written.id, written.version)
        fetched = side.fetch(written.id)
        assert fetched is not None and fetched.record.title == "X"  # type: ignore[union-attr]

    def test_create_twice_with_same_marker_makes_no_duplicate(
        self, harness: ContractHarness
    ) -> None:
        pairs: tuple[tuple[ItemSide, Record], ...] = (
            (harness.contacts, sample_contact()),
            (harness.events, sample_event()),
        )
        for side, record in pairs:
            first = side.create(record, "crm-42")
            second = side.create(record, "crm-42")
            assert (second.id, second.version, second.record) == (
                first.id,
                first.version,
                first.record,
            )
            listing = side.changes(None, {})
            assert [s.id for s in listing.items if s.marker == "crm-42"] == [first.id]
