"""Real-world values through the Microsoft Graph mappings, without a server."""

from __future__ import annotations

import datetime as dt

from crmsync.domain.contact_fields import IDENTITY_MAP
from crmsync.domain.records import Contact, EventTiming
from crmsync.groupware.graph.contacts import contact_slots, read_contact
from crmsync.groupware.graph.events import read_timing, timing_json


def test_outlook_company_only_contact_has_the_company_as_its_last_name_never_its_surname() -> None:
    # Outlook files a company's contact under the company: no givenName, no surname.
    json = {
        "displayName": "Umbrella Corp",
        "fileAs": "Umbrella Corp",
        "companyName": "Umbrella Corp",
    }
    contact, _ = read_contact(json, IDENTITY_MAP)
    assert (contact.first_name, contact.last_name) == ("", "Umbrella Corp")
    slots = contact_slots(contact, IDENTITY_MAP)
    assert slots["surname"] is None and slots["companyName"] == "Umbrella Corp"
    person = Contact(first_name="Tina", last_name="Toys", account_name="Umbrella Corp")
    assert contact_slots(person, IDENTITY_MAP)["surname"] == "Toys"


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
