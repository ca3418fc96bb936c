"""End to end through the service: the fake Salesforce ⇄ a real Radicale.

People's edits reach Salesforce through the fake org directly (as a person in Salesforce
would make them, no API call counted) and the mailbox through a second DAV connection.
Each test runs `SyncService.sync_rep` cycles, then looks at both sides. Dates are in 2030,
inside every event window whatever today is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.admin.web.views import crm_status
from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Occurrence, Recurrence
from crmsync.service.crms import WRITES_PAUSED_TEXT, api_state
from crmsync.service.metrics import SyncMetrics
from crmsync.store import FLOWS, SyncStatus
from tests.servers import DavServerInfo, running_dav_server
from tests.service.salesforce_world import SalesforceWorld
from tests.service.worlds import BOTH_WAYS

UTC = dt.UTC
PARIS = "Europe/Paris"
START = dt.datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Paris
WEEK = dt.timedelta(days=7)
HOUR = dt.timedelta(hours=1)


def sf_time(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def weekly_series() -> Event:
    moved_from = START + 2 * WEEK
    moved_to = moved_from + dt.timedelta(days=1, hours=2)
    return Event(
        subject="Weekly pipeline",
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


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


@pytest.fixture
def world(radicale: DavServerInfo, tmp_path: Path) -> Iterator[SalesforceWorld]:
    w = SalesforceWorld(radicale, tmp_path / "home", BOTH_WAYS)
    yield w
    w.close()


def add_sf_contact(world: SalesforceWorld, last: str, **fields: object) -> str:
    record_id, problem = world.org.create(
        "Contact", {"LastName": last, "OwnerId": world.rep_id, **fields}
    )
    assert problem is None and record_id is not None, problem
    return record_id


def add_sf_event(world: SalesforceWorld, subject: str, start: dt.datetime) -> str:
    fields = {
        "Subject": subject,
        "StartDateTime": sf_time(start),
        "EndDateTime": sf_time(start + HOUR),
        "OwnerId": world.rep_id,
    }
    record_id, problem = world.org.create("Event", fields)
    assert problem is None and record_id is not None, problem
    return record_id


def test_initial_sync_both_ways_then_a_quiet_cycle(world: SalesforceWorld) -> None:
    add_sf_contact(world, "Lovelace", FirstName="Ada", Email="ada@example.org", Title="Analyst")
    add_sf_event(world, "Kick-off", START)
    made_in_client = Contact(first_name="Bo", last_name="Ek", email="bo@example.org")
    world.mailbox.contacts.create(made_in_client, marker="client-contact")
    lunch = Event(
        "Lunch with Bo",
        EventTiming(START + dt.timedelta(days=1, hours=3), START + dt.timedelta(days=1, hours=4)),
    )
    world.mailbox.events.create(lunch, marker="client-event")

    report = world.sync()

    assert report.writes == 4
    assert sorted(c.last_name for c in world.mail_records(ItemKind.CONTACT)) == ["Ek", "Lovelace"]  # type: ignore[attr-defined]
    assert sorted(e.subject for e in world.mail_records(ItemKind.EVENT)) == [
        "Kick-off",
        "Lunch with Bo",
    ]  # type: ignore[attr-defined]
    [bo] = world.rows("Contact", LastName="Ek")
    assert bo["OwnerId"] == world.rep_id and bo["Email"] == "bo@example.org"
    assert bo[world.org.marker_field].startswith(world.rep_id + ":")
    assert [r["Subject"] for r in world.rows("Event", Subject="Lunch with Bo")] == ["Lunch with Bo"]
    quiet = world.sync()
    assert quiet.writes == 0
    status = world.service.store.rep_status(world.rep.id)
    assert {status.sync_status(k, f) for k in ItemKind for f in FLOWS} == {SyncStatus.IN_SYNC}
    # A quiet cycle reads the org's feed once per object, nothing per record.
    assert quiet.crm_calls is not None and quiet.crm_calls <= 4


def test_incremental_edits_and_deletions_reach_the_other_side(world: SalesforceWorld) -> None:
    ada = add_sf_contact(world, "Lovelace", FirstName="Ada")
    gone = add_sf_event(world, "Gone", START)
    add_sf_event(world, "Kept", START + HOUR * 3)
    world.sync()

    world.org.edit(ada, Title="CFO")
    world.org.remove(gone)
    report = world.sync()
    assert report.writes == 2
    assert [c.title for c in world.mail_records(ItemKind.CONTACT)] == ["CFO"]  # type: ignore[attr-defined]
    assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Kept"]  # type: ignore[attr-defined]

    (seen,) = world.mail_items(ItemKind.CONTACT).values()
    world.mailbox.contacts.update(seen.id, seen.version, replace(seen.record, title="CEO"))  # type: ignore[arg-type]
    world.sync()
    assert world.org.rows["Contact"][ada]["Title"] == "CEO"
    (seen,) = world.mail_items(ItemKind.CONTACT).values()
    world.mailbox.contacts.delete(seen.id, seen.version)
    world.sync()
    assert world.rows("Contact", LastName="Lovelace") == []  # deletions propagate (configured)


def test_a_series_with_a_moved_and_a_cancelled_occurrence_round_trips(
    world: SalesforceWorld,
) -> None:
    series = weekly_series()
    world.mailbox.events.create(series, marker="client-series")

    world.sync()

    rows = world.rows("Event", Subject="Weekly pipeline")
    assert rows and all(r["IsRecurrence2"] for r in rows)
    assert world.crm_records(ItemKind.EVENT) == [series]
    assert world.sync().writes == 0
    assert world.mail_records(ItemKind.EVENT) == [series]


def test_a_spent_allocation_pauses_writes_shows_on_the_status_and_resumes(
    world: SalesforceWorld,
) -> None:
    metrics = SyncMetrics(crm_state=lambda: api_state(world.service.crm))
    world.sync()  # the feed and the directory are read; nothing to write yet
    for n in range(3):
        world.mailbox.contacts.create(Contact(last_name=f"Client {n}"), marker=f"c{n}")
    world.fake.api_limit = world.fake.api_used  # the next call is one too many
    conn = world.service.crm.conn
    conn.retry = replace(conn.retry, limit_hold=0.1)  # the org's hold after the refusal (10 s)

    spent = world.sync_allowing_errors()
    metrics.observe(spent, 0.1)

    assert spent.error is not None and "REQUEST_LIMIT_EXCEEDED" in spent.error
    assert world.rows("Contact") == []
    status = crm_status(world.service, world.service.clock())
    assert status["writes_paused"] is True and status["writes_paused_note"] == WRITES_PAUSED_TEXT
    scrape = metrics.render()[0].decode()
    assert "crmsync_crm_writes_paused 1.0" in scrape
    # Paused, the next cycle sends no write at all (no retry storm).
    writes_before = world.fake.api_calls("PATCH") + world.fake.api_calls("POST")
    world.sync_allowing_errors()
    assert world.fake.api_calls("PATCH") + world.fake.api_calls("POST") == writes_before

    world.fake.api_used = 0  # the rolling 24 hours moved on
    world.fake.api_limit = 100_000
    resumed = world.sync()
    assert resumed.writes == 3
    assert sorted(r["LastName"] for r in world.rows("Contact")) == [f"Client {n}" for n in range(3)]
    status = crm_status(world.service, world.service.clock())
    assert status["writes_paused"] is False and status["api_usage"]["limit"] == 100_000
    assert status["api_calls_last_24_hours"] > 0 and status["api_calls_per_cycle"] > 0
    assert "crmsync_crm_writes_paused 0.0" in metrics.render()[0].decode()


def test_a_classic_series_stays_out_with_the_reason_and_a_too_long_event_is_a_row(
    world: SalesforceWorld,
) -> None:
    classic, problem = world.org.create(
        "Event",
        {
            "Subject": "Classic weekly",
            "IsRecurrence": True,
            "StartDateTime": sf_time(START),
            "EndDateTime": sf_time(START + HOUR),
            "OwnerId": world.rep_id,
        },
    )
    assert problem is None and classic is not None
    sabbatical = Event(
        "Sabbatical", EventTiming(START.date(), (START + dt.timedelta(days=20)).date())
    )
    world.mailbox.events.create(sabbatical, marker="client-sabbatical")

    report = world.sync_allowing_errors()

    assert world.mail_records(ItemKind.EVENT) == [sabbatical]  # the Classic series stays out
    (entry,) = [e for e in world.service.store.item_history(classic) if e.action == "skip"]
    assert "Classic" in entry.rule and "Lightning Experience" in entry.rule
    (row,) = world.service.store.errors(rep_id=world.rep.id)
    assert "14-day" in row.message and row.item_id is not None
    assert report.error is None and world.rows("Event", Subject="Sabbatical") == []
