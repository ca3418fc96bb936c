"""End to end through the service: Google Workspace (the fake Calendar v3 and People v1
on 127.0.0.1, wired as `crmsync setup google` does) ⇄ the built-in CRM, and one round trip
with the fake Salesforce.

The rep's own edits reach Google through a second connection (`GoogleWorld.mailbox`), as
Google Calendar's or Contacts' would. Dates are in 2030, inside every event window
whatever today is. With the CRMSYNC_GOOGLE_* variables set (README, "Live Google"), the
tests not marked ``fake_only`` (the connection test and one event round trip) run against
that Workspace instead of the fake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Occurrence, Recurrence
from crmsync.domain.settings import EventSelection, EventSettings
from crmsync.service.connection_test import (
    GOOGLE_DELEGATION,
    GOOGLE_USER,
    REP_DOMAIN,
    run_connection_test,
)
from crmsync.service.connection_test.google import GoogleProbe
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from crmsync.store import FLOWS, SyncStatus
from tests.groupware.google.fake_google import CALENDAR_SCOPE, CONTACTS_SCOPE, FakeGoogle
from tests.groupware.google.fake_server import FakeGoogleServer
from tests.service.google_world import GoogleWorld, live_google
from tests.service.worlds import BOTH_WAYS

PARIS = "Europe/Paris"
START = dt.datetime(2030, 3, 4, 8, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in Paris
WEEK = dt.timedelta(days=7)
HOUR = dt.timedelta(hours=1)
fake_only = pytest.mark.skipif(live_google(), reason="drives the fake Google (fail_next, ...)")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GoogleWorld]:
    w = GoogleWorld(tmp_path / "home", BOTH_WAYS)
    yield w
    w.close()


def api_writes(world: GoogleWorld) -> list[str]:
    return [
        f"{r.method} {r.url.path}"
        for r in world.fake.api_requests()
        if r.method in ("POST", "PATCH", "PUT", "DELETE")
    ]


def weekly_series(subject: str = "Weekly pipeline") -> Event:
    moved_from = START + 2 * WEEK
    moved_to = moved_from + dt.timedelta(days=1, hours=2)
    return Event(
        subject=subject,
        timing=EventTiming(START, START + HOUR, PARIS),
        location="Room 1",
        recurrence=Recurrence(
            rule="FREQ=WEEKLY;COUNT=6;BYDAY=MO",
            exdates=(START + 3 * WEEK,),
            overrides=(
                Occurrence(moved_from, EventTiming(moved_to, moved_to + HOUR, PARIS), "Moved"),
            ),
        ),
    )


@fake_only
def test_initial_sync_both_ways_then_a_quiet_cycle(world: GoogleWorld) -> None:
    world.crm.create_contact(world.rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))
    world.mailbox.contacts.create(Contact("Bo", "Ek", email="bo@example.org"), "client-1")
    lunch = Event("Lunch with Bo", EventTiming(START + 27 * HOUR, START + 28 * HOUR))
    world.mailbox.events.create(lunch, "client-2")

    assert world.sync().writes == 4

    mail_contacts = world.mail_records(ItemKind.CONTACT)
    assert sorted(c.last_name for c in mail_contacts) == ["Ek", "Lovelace"]  # type: ignore[attr-defined]
    crm_events = world.crm_records(ItemKind.EVENT)
    assert sorted(e.subject for e in crm_events) == ["Kick-off", "Lunch with Bo"]  # type: ignore[attr-defined]
    assert world.sync().writes == 0
    status = world.service.store.rep_status(world.rep.id)
    assert {status.sync_status(k, f) for k in ItemKind for f in FLOWS} == {SyncStatus.IN_SYNC}


@fake_only
def test_edits_and_deletions_reach_the_other_side_both_ways(world: GoogleWorld) -> None:
    ada = world.crm.create_contact(world.rep.id, Contact("Ada", "Lovelace"))
    gone = world.crm.create_event(world.rep.id, Event("Gone", EventTiming(START, START + HOUR)))
    world.crm.create_event(
        world.rep.id, Event("Kept", EventTiming(START + 3 * HOUR, START + 4 * HOUR))
    )
    world.sync()

    world.crm.update_contact(ada.id, replace(ada.record, title="CFO"))
    world.crm.delete_event(gone.id)
    assert world.sync().writes == 2
    assert [c.title for c in world.mail_records(ItemKind.CONTACT)] == ["CFO"]  # type: ignore[attr-defined]
    assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Kept"]  # type: ignore[attr-defined]

    (contact,) = world.mail_items(ItemKind.CONTACT).values()
    world.mailbox.contacts.update(contact.id, contact.version, replace(contact.record, title="CEO"))  # type: ignore[arg-type]
    (event,) = world.mail_items(ItemKind.EVENT).values()
    world.mailbox.events.update(event.id, event.version, replace(event.record, location="Room 9"))  # type: ignore[arg-type]
    assert world.sync().writes == 2
    assert [c.title for c in world.crm_records(ItemKind.CONTACT)] == ["CEO"]  # type: ignore[attr-defined]
    assert [e.location for e in world.crm_records(ItemKind.EVENT)] == ["Room 9"]  # type: ignore[attr-defined]

    world.mailbox.contacts.delete(
        contact.id, world.mail_items(ItemKind.CONTACT)[contact.id].version
    )
    world.mailbox.events.delete(event.id, world.mail_items(ItemKind.EVENT)[event.id].version)
    world.sync()
    assert world.crm_records(ItemKind.CONTACT) == []  # deletions propagate (configured)
    assert world.crm_records(ItemKind.EVENT) == []
    assert world.sync().writes == 0


@fake_only
def test_a_series_with_a_moved_and_a_cancelled_occurrence_round_trips(world: GoogleWorld) -> None:
    from_google = weekly_series()
    world.mailbox.events.create(from_google, "client-series")
    from_crm = weekly_series("Weekly forecast")
    world.crm.create_event(world.rep.id, from_crm)

    world.sync()

    assert world.crm_records(ItemKind.EVENT) == sorted([from_google, from_crm], key=repr)
    assert world.mail_records(ItemKind.EVENT) == sorted([from_google, from_crm], key=repr)
    # Google keeps a moved instance as a row of its own, tied to its series.
    rows = world.fake.calendar.calendar(world.email).events.values()
    assert sum(1 for e in rows if e.get("recurringEventId") and e.get("summary") == "Moved") == 2
    assert world.sync().writes == 0


@fake_only
def test_a_preview_writes_nothing_in_google(world: GoogleWorld) -> None:
    world.crm.create_contact(world.rep.id, Contact("Ada", "Lovelace"))
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))

    first = world.service.preview_rep(world.rep)
    assert first.note is not None and "first cycle creates it" in first.note
    assert api_writes(world) == []

    world.sync()
    world.crm.create_contact(world.rep.id, Contact("Grace", "Hopper"))
    written = len(api_writes(world))
    planned = world.service.preview_rep(world.rep)
    assert planned.note is None
    assert [type(a).__name__ for a in planned.kinds[ItemKind.CONTACT]] == ["Create"]
    assert len(api_writes(world)) == written
    assert [c.last_name for c in world.mail_records(ItemKind.CONTACT)] == ["Lovelace"]  # type: ignore[attr-defined]


@fake_only
def test_usage_limits_park_the_rep_with_a_clear_status_and_no_request(world: GoogleWorld) -> None:
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))
    world.fake.fail_next(1, "quotaExceeded", "calendar")

    report = world.service.sync_rep(world.rep)

    assert report.error is not None and "Calendar usage limits exceeded" in report.error
    assert "hour" in report.error
    status = world.service.store.rep_status(world.rep.id)
    assert status.last_error and "read-only" in status.last_error
    asked = len(world.fake.api_requests("calendar"))
    again = world.service.sync_rep(world.rep)
    assert again.error is not None and "read-only" in again.error
    assert len(world.fake.api_requests("calendar")) == asked  # parked: nothing sent
    assert world.service.mail_server().retry_after(world.email) > 3600
    # The scheduler's next-due time waits the pause out, whatever the back-off says.
    soon = world.service.clock() + dt.timedelta(minutes=1)
    third = world.service.sync_rep(world.rep, next_due=lambda failures: soon)
    assert third.next_due is not None
    assert third.next_due - world.service.clock() > dt.timedelta(hours=2, minutes=59)
    assert world.service.store.rep_status(world.rep.id).next_due == third.next_due


@fake_only
def test_the_pause_outlives_a_restart_until_it_ends(world: GoogleWorld) -> None:
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))
    world.fake.fail_next(1, "quotaExceeded", "calendar")
    world.service.sync_rep(world.rep)
    paused = world.service.store.rep_status(world.rep.id).paused
    assert paused is not None and paused.by == "Google" and "read-only" in paused.because
    assert paused.until - world.service.clock() > dt.timedelta(hours=2, minutes=59)

    # A new process (a restart, another worker, `crmsync sync`) knows nothing of the
    # connection's park, but the stored pause keeps it from Google.
    world.service.close()
    world.service = SyncService(Deployment.from_env(world.home), retry=world.service.retry)
    asked = len(world.fake.api_requests("calendar"))
    report = world.service.sync_rep(world.rep)
    assert report.error is not None and report.error.startswith("Paused by Google until ")
    assert len(world.fake.api_requests("calendar")) == asked
    assert world.service.store.rep_status(world.rep.id).paused == paused

    # Once it has ended, the rep syncs again and the pause is forgotten.
    after = paused.until + dt.timedelta(minutes=1)
    world.service.clock = lambda: after
    assert world.service.sync_rep(world.rep).error is None
    assert len(world.fake.api_requests("calendar")) > asked
    assert world.service.store.rep_status(world.rep.id).paused is None


@fake_only
def test_the_services_of_a_process_share_one_token_source(world: GoogleWorld) -> None:
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))
    world.sync()
    other = SyncService(Deployment.from_env(world.home), retry=world.service.retry)
    try:
        assert other.mail_server().connection is world.service.mail_server().connection
        minted = world.fake.tokens_issued
        assert other.sync_rep(world.rep).error is None
        assert world.fake.tokens_issued == minted  # the rep's tokens, minted once
    finally:
        other.close()
    assert world.sync().writes == 0  # the first service's connection is still open


@fake_only
def test_rate_limits_back_off_and_the_cycle_completes(world: GoogleWorld) -> None:
    world.crm.create_event(world.rep.id, Event("Kick-off", EventTiming(START, START + HOUR)))
    world.fake.fail_next(1, "rateLimitExceeded", "calendar")
    world.fake.fail_next(1, "429", "people")
    assert world.sync().writes == 1
    assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Kick-off"]  # type: ignore[attr-defined]


@fake_only
def test_events_users_select_are_the_ones_with_the_org_colour(tmp_path: Path) -> None:
    selected = replace(BOTH_WAYS, events=EventSettings(selection=EventSelection.USER_SELECTED))
    world = GoogleWorld(tmp_path / "home", selected, settings={"google_event_color": "11"})
    try:
        pick = world.mailbox.events.create(Event("Pick me", EventTiming(START, START + HOUR)), "m1")
        world.mailbox.events.create(
            Event("Private", EventTiming(START + 2 * HOUR, START + 3 * HOUR)), "m2"
        )
        world.fake.calendar.foreign_patch(world.email, pick.id, {"colorId": "11"})
        world.sync()
        assert [e.subject for e in world.crm_records(ItemKind.EVENT)] == ["Pick me"]  # type: ignore[attr-defined]
    finally:
        world.close()


@fake_only
def test_connection_test_failures_name_the_fix(tmp_path: Path) -> None:
    server = FakeGoogleServer(FakeGoogle(delegated=frozenset({CALENDAR_SCOPE})))
    world = GoogleWorld(tmp_path / "home", BOTH_WAYS, server=server)
    try:
        result = run_connection_test(world.settings, world.key, world.email)
        step = result.step(GOOGLE_DELEGATION)
        assert step.status == "failed" and CONTACTS_SCOPE in step.detail
        assert "Manage Domain Wide Delegation" in step.fix and CALENDAR_SCOPE in step.fix
        assert {s.status for s in result.steps[result.steps.index(step) + 1 :]} == {"not_run"}

        server.fake.delegated.add(CONTACTS_SCOPE)
        nobody = run_connection_test(world.settings, world.key, "nobody@example.com")
        assert nobody.step(GOOGLE_USER).status == "failed"
        assert "alias" in nobody.step(GOOGLE_USER).fix
        outside = run_connection_test(world.settings, world.key, "rep@elsewhere.test")
        assert outside.step(REP_DOMAIN).status == "failed"
        assert run_connection_test(world.settings, world.key, world.email).passed
        private_line = world.key.split("\\n")[1]
        assert all(private_line not in s.detail + s.fix for s in result.steps)
        # A server or library message echoing the key would be shown redacted.
        probe = GoogleProbe(world.settings, world.key, world.email, None, 10.0)
        assert probe.redact(f"bad key {private_line}") == "bad key ***"
    finally:
        world.close()


def test_connection_test_passes_and_an_event_round_trips(world: GoogleWorld) -> None:
    """Runs against a real Workspace too: the connection test, then an event made in the
    CRM reaches the rep's calendar, an edit there comes back, a CRM delete removes it."""
    assert run_connection_test(world.settings, world.key, world.email).passed
    made = world.crm.create_event(
        world.rep.id, Event("crmsync check", EventTiming(START, START + HOUR))
    )
    world.sync()
    (event,) = [
        s for s in world.mail_items(ItemKind.EVENT).values() if s.record.subject == "crmsync check"
    ]  # type: ignore[attr-defined]
    world.mailbox.events.update(event.id, event.version, replace(event.record, location="Room 2"))  # type: ignore[arg-type]
    world.sync()
    assert world.crm.get_event(made.id).record.location == "Room 2"
    world.crm.delete_event(made.id)
    world.sync()
    assert event.id not in world.mail_items(ItemKind.EVENT)


@fake_only
def test_google_and_salesforce_round_trip(tmp_path: Path) -> None:
    world = GoogleWorld(tmp_path / "home", BOTH_WAYS, salesforce=True)
    try:
        assert world.salesforce is not None
        org = world.salesforce.org
        ada, problem = org.create("Contact", {"LastName": "Lovelace", "OwnerId": world.sf_rep_id})
        assert problem is None and ada is not None
        world.mailbox.events.create(Event("Lunch", EventTiming(START, START + HOUR)), "client")

        assert world.sync().writes == 2
        assert [c.last_name for c in world.mail_records(ItemKind.CONTACT)] == ["Lovelace"]  # type: ignore[attr-defined]
        [lunch] = [r for r in org.rows["Event"].values() if r["Subject"] == "Lunch"]
        assert lunch["OwnerId"] == world.sf_rep_id

        org.edit(ada, Title="CFO")
        (event,) = world.mail_items(ItemKind.EVENT).values()
        world.mailbox.events.update(
            event.id, event.version, replace(event.record, location="Room 3")
        )  # type: ignore[arg-type]
        assert world.sync().writes == 2
        assert [c.title for c in world.mail_records(ItemKind.CONTACT)] == ["CFO"]  # type: ignore[attr-defined]
        assert org.rows["Event"][lunch["Id"]]["Location"] == "Room 3"
        assert world.sync().writes == 0
    finally:
        world.close()
