"""Recurring events both ways: occurrences moved or cancelled in Google Calendar reach
the series (exception events keyed by ``originalStartTime``), and the CRM's cancelled and
overridden occurrences reach Google (EXDATE lines; instance PATCHes).

These tests use a fake built from Google's documented payloads (`FakeGoogle`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from crmsync.domain.records import Event, EventTiming, Occurrence, Recurrence
from tests.groupware.contract import weekly_series
from tests.groupware.google.harness import GoogleHarness

UTC = dt.UTC
START = dt.datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # the weekly series' first Monday
WEEK = dt.timedelta(days=7)


def _plain_series() -> Event:
    return dataclasses.replace(
        weekly_series(), recurrence=Recurrence("FREQ=WEEKLY;COUNT=12;BYDAY=MO")
    )


def _instance_id(series_id: str, when: dt.datetime) -> str:
    return f"{series_id}_{when:%Y%m%dT%H%M%SZ}"


def test_cancelled_dates_are_exdate_lines_in_the_series_zone() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.events.create(weekly_series(), "s")
    post = next(r for r in h.fake.api_requests("calendar") if r.method == "POST")
    assert json.loads(post.content)["recurrence"] == [
        "RRULE:FREQ=WEEKLY;COUNT=12;BYDAY=MO",
        "EXDATE;TZID=America/New_York:20260126T090000",
    ]
    h.close()


def test_an_occurrence_moved_in_google_calendar_changes_its_series() -> None:
    h = GoogleHarness()
    written = h.events.create(_plain_series(), "s")
    first = h.events.changes(None, {written.id: written.version})
    moved = START + WEEK + dt.timedelta(hours=2)
    assert h.fake is not None
    h.fake.calendar.foreign_patch(
        h.rep,
        _instance_id(written.id, START + WEEK),
        {
            "start": {"dateTime": moved.isoformat(), "timeZone": "America/New_York"},
            "end": {
                "dateTime": (moved + dt.timedelta(hours=1)).isoformat(),
                "timeZone": "America/New_York",
            },
            "summary": "Pipeline (later)",
        },
    )
    changes = h.events.changes(first.cursor, {written.id: written.version})
    assert [s.id for s in changes.items] == [written.id]
    series = changes.items[0].record
    assert isinstance(series, Event) and series.recurrence is not None
    assert series.recurrence.overrides == (
        Occurrence(
            START + WEEK,
            EventTiming(moved, moved + dt.timedelta(hours=1), "America/New_York"),
            "Pipeline (later)",
        ),
    )
    h.close()


def test_an_occurrence_deleted_in_google_calendar_is_a_cancelled_date() -> None:
    h = GoogleHarness()
    written = h.events.create(_plain_series(), "s")
    first = h.events.changes(None, {written.id: written.version})
    h.foreign_delete(h.events, _instance_id(written.id, START + 2 * WEEK))
    changes = h.events.changes(first.cursor, {written.id: written.version})
    series = changes.items[0].record
    assert isinstance(series, Event) and series.recurrence is not None
    assert series.recurrence.exdates == (START + 2 * WEEK,)
    # Restoring it from the CRM brings the occurrence back.
    restored = h.events.update(written.id, changes.items[0].version, _plain_series())
    assert restored.record == _plain_series()
    fetched = h.events.fetch(written.id)
    assert fetched is not None and fetched.record == _plain_series()
    h.close()


def test_an_all_day_series_keeps_its_dates_both_ways() -> None:
    h = GoogleHarness()
    day = dt.date(2026, 2, 2)
    series = Event(
        subject="Trade fair",
        timing=EventTiming(day, day + dt.timedelta(days=1)),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=4",
            exdates=(day + WEEK,),
            overrides=(
                Occurrence(
                    day + 2 * WEEK,
                    EventTiming(
                        day + 2 * WEEK + dt.timedelta(days=1), day + 2 * WEEK + dt.timedelta(days=2)
                    ),
                    "Trade fair (moved)",
                ),
            ),
        ),
    )
    written = h.events.create(series, "fair")
    assert written.record == series
    fetched = h.events.fetch(written.id)
    assert fetched is not None and fetched.record == series
    h.close()


def test_an_invitation_to_one_occurrence_is_an_event_of_its_own() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.calendar.put(
        h.rep,
        {
            "id": "boss0series_20260105T140000Z",
            "recurringEventId": "boss0series",
            "originalStartTime": {"dateTime": "2026-01-05T14:00:00Z"},
            "start": {"dateTime": "2026-01-05T14:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-05T15:00:00Z", "timeZone": "UTC"},
            "summary": "Board meeting",
            "organizer": {"email": "boss@example.com"},
            "attendees": [{"email": "rep@example.com", "self": True, "responseStatus": "accepted"}],
        },
    )
    changes = h.events.changes(None, {})
    assert [s.id for s in changes.items] == ["boss0series_20260105T140000Z"]
    record = changes.items[0].record
    assert isinstance(record, Event) and record.recurrence is None
    assert record.organizer == "boss@example.com"
    h.close()
