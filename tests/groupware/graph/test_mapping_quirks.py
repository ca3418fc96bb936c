"""Real-world values through the Microsoft Graph mappings, without a server."""

from __future__ import annotations

import datetime as dt

from crmsync.domain.records import EventTiming
from crmsync.groupware.graph.events import read_timing, timing_json


def test_an_end_in_another_zone_goes_to_graph_as_its_end_time_zone() -> None:
    start = dt.datetime(2027, 5, 5, 8, 30, tzinfo=dt.UTC)
    timing = EventTiming(
        start, start + dt.timedelta(hours=8.5), "Europe/Berlin", "America/New_York"
    )
    body = timing_json(timing)
    assert body["start"] == {"dateTime": "2027-05-05T10:30:00", "timeZone": "Europe/Berlin"}
    assert body["end"] == {"dateTime": "2027-05-05T13:00:00", "timeZone": "America/New_York"}
    # Graph answers in UTC (crmsync asks it to) and names the zones the event was written in.
    read = {
        "start": {"dateTime": "2027-05-05T08:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2027-05-05T17:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "W. Europe Standard Time",
        "originalEndTimeZone": "Eastern Standard Time",
    }
    assert read_timing(read) == timing
