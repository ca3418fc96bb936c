"""Fields added to the records after they were first hashed and stored (issue 13) are left
out of `to_plain` while unused, so a record that does not use them keeps the content hash
every link already holds, and the JSON the built-in CRM already stored."""

from __future__ import annotations

import datetime as dt
import json

from crmsync.domain.records import (
    Attendee,
    AttendeeStatus,
    Event,
    EventTiming,
    Recurrence,
    to_plain,
)

START = dt.datetime(2027, 3, 8, 14, tzinfo=dt.UTC)


def test_unused_added_fields_leave_the_plain_form_as_it_was() -> None:
    event = Event(
        "Review",
        EventTiming(START, START + dt.timedelta(hours=1), "Europe/Berlin"),
        attendees=(Attendee("a@example.com", "A", AttendeeStatus.ACCEPTED),),
        recurrence=Recurrence("FREQ=WEEKLY;COUNT=3", rdates=(START + dt.timedelta(days=2),)),
    )
    text = json.dumps(to_plain(event), sort_keys=True)
    for added in ("end_tzid", "delegated_to", "delegated_from", "rdate_periods"):
        assert added not in text


def test_used_added_fields_are_in_the_plain_form() -> None:
    extra = START + dt.timedelta(days=2)
    event = Event(
        "Review",
        EventTiming(START, START + dt.timedelta(hours=1), "Europe/Berlin", "America/New_York"),
        attendees=(Attendee("a@example.com", delegated_to=("b@example.com",)),),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=3",
            rdates=(extra,),
            rdate_periods=((extra, extra + START.resolution),),
        ),
    )
    plain = to_plain(event)
    assert plain["timing"]["end_tzid"] == "America/New_York"
    assert plain["attendees"][0]["delegated_to"] == ["b@example.com"]
    assert plain["recurrence"]["rdate_periods"] == [
        [extra.isoformat(), (extra + START.resolution).isoformat()]
    ]
