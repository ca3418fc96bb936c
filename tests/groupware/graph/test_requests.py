"""The exact requests the Graph backend sends, and how it reacts to Graph's refusals.

These tests use a fake built from Microsoft's documented payloads (`FakeGraph`) and the
official client library (msal) for tokens; no Microsoft 365 tenant is involved.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest

from crmsync.domain.sync import AuthenticationFailed, RejectedWrite, ServerUnavailable
from crmsync.groupware.graph import WouldNotifyAttendees
from crmsync.groupware.graph import properties as props
from crmsync.groupware.graph.connection import BatchItem
from crmsync.transport.bounded import ResponseTooLarge
from tests.groupware.contract import sample_contact, sample_event
from tests.groupware.graph.fake_graph import FakeGraph
from tests.groupware.graph.harness import GraphHarness


@pytest.fixture
def harness() -> Iterator[GraphHarness]:
    h = GraphHarness(fake=FakeGraph())
    yield h
    h.close()


def _body(request: httpx.Request) -> dict:
    return json.loads(request.content)


def test_every_request_carries_a_bearer_token_renewed_after_expiry(harness: GraphHarness) -> None:
    fake = harness.fake
    assert fake is not None
    written = harness.contacts.create(sample_contact(), "m1")
    first = fake.graph_requests()[-1].headers["Authorization"]
    assert first.startswith("Bearer ") and fake.tokens_issued == 1
    fake.expire_tokens()
    assert harness.contacts.fetch(written.id) is not None
    refused, retried = fake.graph_requests()[-2:]
    assert refused.headers["Authorization"] == first
    assert retried.headers["Authorization"] != first
    assert fake.tokens_issued == 2
    assert all(
        r.headers.get("Authorization", "").startswith("Bearer ") for r in fake.graph_requests()
    )


def test_msal_renews_a_token_close_to_expiry_before_sending() -> None:
    # msal treats a token with under five minutes left as expired.
    h = GraphHarness(fake=FakeGraph(token_lifetime=60))
    assert h.fake is not None
    before = h.fake.tokens_issued
    h.contacts.changes(None, {})
    assert h.fake.tokens_issued > before
    h.close()


def test_token_refused_twice_is_an_authentication_failure(harness: GraphHarness) -> None:
    assert harness.fake is not None
    harness.fake.refuse_all_tokens = True
    with pytest.raises(AuthenticationFailed) as caught:
        harness.contacts.changes(None, {})
    assert "401" in caught.value.message and "consent" in caught.value.suggestion
    refused = [r for r in harness.fake.graph_requests()][-2:]
    assert refused[0].headers["Authorization"] != refused[1].headers["Authorization"]


def test_wrong_client_secret_names_the_fix() -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        GraphHarness(fake=FakeGraph(), client_secret="wrong")
    assert "AADSTS7000215" in caught.value.message
    assert "secret" in caught.value.suggestion


def test_create_stamps_the_marker_and_looks_it_up_first(harness: GraphHarness) -> None:
    assert harness.fake is not None
    harness.contacts.create(sample_contact(), "003XYZ")
    lookup, post = harness.fake.graph_requests()[-2:]
    assert lookup.method == "GET"
    assert f"ep/id eq '{props.MARKER}' and ep/value eq '003XYZ'" in lookup.url.params["$filter"]
    assert post.method == "POST"
    assert {"id": props.MARKER, "value": "003XYZ"} in _body(post)["singleValueExtendedProperties"]


def test_update_patches_only_changed_fields_with_if_match(harness: GraphHarness) -> None:
    assert harness.fake is not None
    written = harness.contacts.create(sample_contact(), "m")
    changed = dataclasses.replace(sample_contact(), title="Chief Analyst", mobile_phone="+1 555")
    harness.contacts.update(written.id, written.version, changed)
    patch = harness.fake.graph_requests()[-1]
    assert patch.method == "PATCH"
    assert patch.headers["If-Match"] == written.version
    assert _body(patch) == {"jobTitle": "Chief Analyst", "mobilePhone": "+1 555"}


def test_next_round_asks_for_the_previous_delta_link(harness: GraphHarness) -> None:
    assert harness.fake is not None
    first = harness.contacts.changes(None, {})
    assert first.cursor and "$deltatoken=" in first.cursor
    harness.contacts.changes(first.cursor, {})
    assert str(harness.fake.graph_requests()[-1].url) == first.cursor


def test_expired_delta_link_answers_410_and_falls_back_to_full(harness: GraphHarness) -> None:
    assert harness.fake is not None
    a = harness.contacts.create(sample_contact(1), "a")
    changes = harness.contacts.changes(harness.invalid_cursor(harness.contacts), {})
    assert harness.fake.graph_requests()[-3].url.params["$deltatoken"] == "A" * 40
    assert changes.full and [s.id for s in changes.items] == [a.id]


def test_downloads_go_in_batches_of_at_most_twenty(harness: GraphHarness) -> None:
    assert harness.fake is not None
    for n in range(45):
        harness.contacts.create(sample_contact(n), f"m{n}")
    changes = harness.contacts.changes(None, {})
    assert len(changes.items) == 45
    assert harness.fake.batch_sizes == [20, 20, 5]


def test_the_fake_refuses_a_batch_of_twenty_one(harness: GraphHarness) -> None:
    items = [BatchItem("GET", "/users/rep@example.com/calendar") for _ in range(21)]
    response = harness.connection.request(
        "POST",
        "/$batch",
        json={"requests": [{"id": str(i), **vars(b)} for i, b in enumerate(items)]},
    )
    assert response.status_code == 400
    assert [a.status for a in harness.connection.batch(items)] == [200] * 21


def test_retry_after_is_waited_through_the_injected_sleep(harness: GraphHarness) -> None:
    assert harness.fake is not None
    harness.fake.throttle(2, 429, "7")
    harness.contacts.changes(None, {})
    assert harness.clock.sleeps == [7.0, 7.0]
    harness.fake.throttle(10, 503, "3")
    with pytest.raises(ServerUnavailable):
        harness.contacts.changes(None, {})


def test_meeting_edit_is_refused_when_it_would_notify_attendees() -> None:
    fake = FakeGraph()
    h = GraphHarness(fake=fake, notify_attendees=False)
    assert h.fake is not None
    # Creating a meeting would send invitations: refused, nothing posted.
    before = len(fake.graph_requests())
    with pytest.raises(WouldNotifyAttendees, match="invitation"):
        h.events.create(sample_event(), "e0")
    assert not any(r.method == "POST" for r in fake.graph_requests()[before:])
    # A meeting the rep made in Outlook (here: through a side that may notify).
    outlook = GraphHarness(fake=fake, notify_attendees=True)
    written = outlook.events.create(sample_event(), "e1")
    outlook.close()
    sent = len(h.fake.graph_requests())
    with pytest.raises(WouldNotifyAttendees) as caught:
        h.events.update(
            written.id, written.version, dataclasses.replace(sample_event(), subject="X")
        )
    assert "skipped: would notify attendees" in caught.value.message
    assert isinstance(caught.value, RejectedWrite)
    assert not any(r.method == "PATCH" for r in h.fake.graph_requests()[sent:])
    # Categories stay in this mailbox: no mail, so allowed.
    recat = dataclasses.replace(sample_event(), categories=("CRM",))
    assert h.events.update(written.id, written.version, recat).record.categories == ("CRM",)
    with pytest.raises(WouldNotifyAttendees):
        h.events.delete(written.id, written.version)
    h.close()


def test_reads_ask_for_utc_and_writes_send_the_event_zone(harness: GraphHarness) -> None:
    assert harness.fake is not None
    harness.events.create(sample_event(), "tz")
    post = harness.fake.graph_requests()[-1]
    assert _body(post)["start"] == {"dateTime": "2026-03-02T16:00:00", "timeZone": "Europe/Paris"}
    assert 'outlook.timezone="UTC"' in post.headers["Prefer"]


def test_a_delta_page_past_the_cap_is_refused_before_it_is_parsed(harness: GraphHarness) -> None:
    fake = harness.fake
    assert fake is not None
    harness.contacts.create(sample_contact(), "m1")
    fake.page_padding = 1000  # within the cap: whitespace JSON allows
    assert len(harness.contacts.changes(None, {}).items) == 1
    cap = harness.config.max_response_bytes
    fake.page_padding = cap
    with pytest.raises(ResponseTooLarge, match=f"delta on Microsoft Graph: .*{cap}-byte cap"):
        harness.contacts.changes(None, {})
