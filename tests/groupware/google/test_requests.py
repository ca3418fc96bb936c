"""The exact requests the Google backend sends.

These tests use a fake built from Google's documented payloads (`FakeGoogle`); no Google
account is involved.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.groupware.contract import all_day_event, sample_contact, sample_event
from tests.groupware.google.fake_google import FakeGoogle
from tests.groupware.google.harness import GoogleHarness


@pytest.fixture
def harness() -> Iterator[GoogleHarness]:
    h = GoogleHarness(fake=FakeGoogle())
    yield h
    h.close()


def _body(request: httpx.Request) -> dict:
    return json.loads(request.content)


def _last(h: GoogleHarness, method: str, api: str = "calendar") -> httpx.Request:
    assert h.fake is not None
    return [r for r in h.fake.api_requests(api) if r.method == method][-1]


def test_create_uses_the_planned_client_id_and_the_private_marker(harness: GoogleHarness) -> None:
    written = harness.events.create(sample_event(), "00U1")
    assert written.id == harness.events.planned_id("00U1")
    post = _last(harness, "POST")
    assert _body(post)["id"] == written.id
    assert _body(post)["extendedProperties"]["private"]["crmsyncMarker"] == "00U1"
    assert post.url.params["sendUpdates"] == "none"


def test_notifying_attendees_sends_updates_to_all() -> None:
    h = GoogleHarness(notify_attendees=True)
    written = h.events.create(sample_event(), "00U1")
    h.events.update(written.id, written.version, dataclasses.replace(sample_event(), subject="X"))
    h.events.delete(written.id, h.events.fetch(written.id).version)  # type: ignore[union-attr]
    assert h.fake is not None and h.fake.calendar.send_updates == ["all", "all", "all"]
    h.close()


def test_a_repeated_create_answers_409_and_returns_the_event_there(
    harness: GoogleHarness,
) -> None:
    assert harness.fake is not None
    first = harness.events.create(sample_event(), "crm-9")
    again = harness.events.create(sample_event(), "crm-9")
    assert (again.id, again.version) == (first.id, first.version)
    posts = [r for r in harness.fake.api_requests("calendar") if r.method == "POST"]
    assert [_body(p)["id"] for p in posts] == [first.id, first.id]
    assert len(harness.fake.calendar.calendar("rep@example.com").events) == 1


def test_update_patches_only_the_changed_fields_with_if_match(harness: GoogleHarness) -> None:
    written = harness.events.create(sample_event(), "m")
    harness.events.update(
        written.id, written.version, dataclasses.replace(sample_event(), subject="Renamed")
    )
    patch = _last(harness, "PATCH")
    assert _body(patch) == {"summary": "Renamed"}
    assert patch.headers["If-Match"] == written.version


def test_times_are_written_in_the_event_zone_and_all_day_as_dates(
    harness: GoogleHarness,
) -> None:
    harness.events.create(sample_event(), "tz")
    body = _body(_last(harness, "POST"))
    assert body["start"] == {"dateTime": "2026-03-02T16:00:00+01:00", "timeZone": "Europe/Paris"}
    harness.events.create(all_day_event(), "day")
    body = _body(_last(harness, "POST"))
    assert (body["start"], body["end"]) == ({"date": "2026-06-01"}, {"date": "2026-06-03"})
    assert (body["visibility"], body["transparency"]) == ("private", "opaque")


def test_a_contact_joins_the_group_with_its_marker_in_client_data(
    harness: GoogleHarness,
) -> None:
    harness.contacts.create(sample_contact(), "003A")
    body = _body(_last(harness, "POST", "people"))
    assert body["memberships"] == [
        {"contactGroupMembership": {"contactGroupResourceName": harness.contacts.group}}
    ]
    assert {"key": "crmsyncMarker", "value": "003A"} in body["clientData"]


def test_a_contact_update_names_its_fields_and_sends_the_etag(harness: GoogleHarness) -> None:
    written = harness.contacts.create(sample_contact(), "003A")
    harness.contacts.update(
        written.id, written.version, dataclasses.replace(sample_contact(), title="CFO")
    )
    patch = _last(harness, "PATCH", "people")
    assert patch.url.path.endswith(":updateContact")
    assert patch.url.params["updatePersonFields"] == "organizations"
    assert _body(patch)["etag"] == written.version
    assert _body(patch)["organizations"][0]["title"] == "CFO"


def test_listings_follow_every_page() -> None:
    h = GoogleHarness(fake=FakeGoogle(page_size=2))
    written = [h.events.create(sample_event(f"e{n}"), f"m{n}") for n in range(5)]
    full = h.events.changes(None, {})
    assert sorted(s.id for s in full.items) == sorted(w.id for w in written)
    for n in range(5):
        h.contacts.create(sample_contact(n), f"c{n}")
    assert len(h.contacts.changes(None, {}).items) == 5
    h.close()
