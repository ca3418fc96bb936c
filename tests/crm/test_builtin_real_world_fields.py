"""What issue 13 added to the records reaches the built-in CRM and comes back, in its
tables and through JSON Lines: delegated attendees, an end in another zone than the
start, extra instances with their own end (RDATE periods)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from crmsync.crm.builtin import BuiltinCrm, OwnedKind, jsonl
from crmsync.domain.records import (
    Attendee,
    AttendeeStatus,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
)

UTC = dt.UTC
START = dt.datetime(2027, 3, 8, 14, tzinfo=UTC)
EVENTS = {
    "delegated": Event(
        "Contract review",
        EventTiming(START, START + dt.timedelta(hours=1), "Europe/Berlin"),
        attendees=(
            Attendee(
                "olga@client.example",
                "Olga",
                AttendeeStatus.DELEGATED,
                delegated_to=("ivan@client.example",),
            ),
            Attendee(
                "ivan@client.example",
                status=AttendeeStatus.ACCEPTED,
                delegated_from=("olga@client.example",),
            ),
        ),
    ),
    "end-zone": Event(
        "Flight to the New York customer summit",
        EventTiming(START, START + dt.timedelta(hours=8), "Europe/Berlin", "America/New_York"),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=3",
            overrides=(
                Occurrence(
                    START + dt.timedelta(days=7),
                    EventTiming(
                        START + dt.timedelta(days=7, hours=1),
                        START + dt.timedelta(days=7, hours=9),
                        "Europe/Berlin",
                        "America/Chicago",
                    ),
                ),
            ),
        ),
    ),
    "rdate-period": Event(
        "Key account workshop",
        EventTiming(START, START + dt.timedelta(hours=1), "Europe/Berlin"),
        recurrence=Recurrence(
            "FREQ=MONTHLY;BYDAY=1MO;COUNT=3",
            rdates=(START + dt.timedelta(days=2), START + dt.timedelta(days=94)),
            rdate_periods=((START + dt.timedelta(days=2), START + dt.timedelta(days=2, hours=3)),),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_stored_and_read_back(crm: BuiltinCrm, name: str) -> None:
    rep = crm.create_user("rep@example.com", "Rep")
    stored = crm.create_event(rep.id, EVENTS[name])
    assert crm.get_record(OwnedKind.EVENT, stored.id).record == EVENTS[name]


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_exported_and_imported(crm: BuiltinCrm, tmp_path: Path, name: str) -> None:
    rep = crm.create_user("rep@example.com", "Rep")
    crm.create_event(rep.id, EVENTS[name], id="evt-1")
    out = io.StringIO()
    jsonl.export_to(crm, out)
    with BuiltinCrm(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        report = jsonl.import_lines(copy, io.StringIO(out.getvalue()))
        assert report.ok, report
        assert [s.record for s in copy.list_events()] == [EVENTS[name]]
