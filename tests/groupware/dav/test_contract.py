"""The `ItemSide` contract and the DAV-specific promises, on real Radicale and Xandikos."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from crmsync.domain.records import Contact, Event
from crmsync.domain.sync import AuthenticationFailed, ErrorType
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy
from crmsync.groupware.dav.mailbox import open_mailbox
from tests.groupware.contract import ItemSideContract, sample_contact, sample_event
from tests.groupware.dav.harness import DavHarness
from tests.servers import DavServerInfo


class TestDavContract(ItemSideContract):
    @pytest.fixture
    def harness(self, dav_server: DavServerInfo) -> Iterator[DavHarness]:  # type: ignore[override]
        harness = DavHarness(dav_server)
        yield harness
        harness.close()


# -------------------------------------------------------------------- discovery


def test_discovery_creates_the_contacts_folder_once(dav_server: DavServerInfo) -> None:
    connection = DavConnection(dav_server.url, dav_server.username, dav_server.password)
    settings = dav_server.settings(contacts_folder="CRM Sync (test)")
    first = open_mailbox(connection, settings, dav_server.email)
    assert first.facts.contacts_folder_created
    second = open_mailbox(connection, settings, dav_server.email)
    assert second.facts.contacts_folder_found
    assert second.contacts.path == first.contacts.path
    assert second.events.path == first.events.path
    assert first.facts.calendar_source in ("default", "found", "created")
    # Discovery is cheap: a handful of requests, whatever the mailbox holds.
    before = connection.requests_made
    open_mailbox(connection, settings, dav_server.email)
    assert connection.requests_made - before <= 4


def test_discovery_with_wrong_password_is_an_authentication_failure(
    dav_server: DavServerInfo,
) -> None:
    if dav_server.name == "xandikos":
        pytest.skip("the test Xandikos runs without authentication")
    connection = DavConnection(dav_server.url, dav_server.username, "wrong")
    with pytest.raises(AuthenticationFailed) as caught:
        open_mailbox(connection, dav_server.settings(), dav_server.email)
    assert "password" in caught.value.suggestion


def test_radicale_rep_without_principal_gets_one(tmp_path: object) -> None:
    from pathlib import Path

    from tests.servers import SERVICE_ACCOUNT, SERVICE_PASSWORD, start_radicale

    server = start_radicale(Path(str(tmp_path)), users={"new@example.com": "x"})
    try:
        connection = DavConnection(server.url, SERVICE_ACCOUNT, SERVICE_PASSWORD)
        info = DavServerInfo(
            "radicale",
            server.url,
            SERVICE_ACCOUNT,
            SERVICE_PASSWORD,
            "/{email}/",
            "late@example.com",
        )
        mailbox = open_mailbox(connection, info.settings(), "late@example.com")
        assert mailbox.facts.calendar_created and mailbox.facts.contacts_folder_created
        assert mailbox.events.create(sample_event(), "x").id.startswith("/late%40example.com/")
    finally:
        server.stop()


# -------------------------------------------------------------------- lossless updates

FOREIGN_EVENT = """\
BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Foreign Corp//Calendar 9//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:foreign-event-1@example.com\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260310T100000\r
DTEND;TZID=Europe/Berlin:20260310T113000\r
SUMMARY:Board meeting\r
X-FOREIGN-COLOR:#ff0000;with "quotes"\r
ORGANIZER;CN=Boss:mailto:boss@example.com\r
ATTENDEE;CUTYPE=INDIVIDUAL;RSVP=TRUE;CN="Doe, Jane";PARTSTAT=ACCEPTED;ROLE=REQ-\r
 PARTICIPANT;X-NUM-GUESTS=0:mailto:jane@example.com\r
DESCRIPTION:A long description that is folded by the client at seventy-five \r
 octets exactly as received.\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Reminder\r
TRIGGER:-PT15M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""

APPLE_CARD = """\
BEGIN:VCARD\r
VERSION:3.0\r
PRODID:-//Apple Inc.//iPhone OS 17.0//EN\r
N:Appleseed;Johnny;;;\r
FN:Johnny Appleseed\r
item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r
item1.X-ABLabel:_$!<Work>!$_\r
item2.TEL:+1 555 0100\r
item2.X-ABLabel:Assistant\r
item3.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;USA\r
item3.X-ABADR:us\r
X-SOCIALPROFILE;type=twitter:https://twitter.com/johnny\r
PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEB\r
 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\r
UID:apple-1234\r
END:VCARD\r
"""


def _logical_lines(text: str) -> list[str]:
    # On a scheduling server crmsync adds SCHEDULE-AGENT=CLIENT to a meeting's people
    # (which refolds their lines): compare unfolded lines without it.
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").split("\n")
    return [line.replace(";SCHEDULE-AGENT=CLIENT", "") for line in unfolded]


def _assert_only_mapped_lines_changed(before: str, sent: str, changed: set[str]) -> None:
    """Every line of ``before`` (the server's text we updated) is in ``sent`` unchanged and
    in order, except properties named in ``changed``."""
    kept = [
        line
        for line in _logical_lines(before)
        if line.split(";")[0].split(":")[0].upper() not in changed
    ]
    remaining = iter(_logical_lines(sent))
    for line in kept:
        assert any(line == candidate for candidate in remaining), f"lost or moved: {line!r}"


def test_event_update_keeps_alarm_attendee_params_and_unknown_properties(
    dav_server: DavServerInfo,
) -> None:
    harness = DavHarness(dav_server)
    item_id = harness.raw_put_into(harness.events, "foreign-1.ics", FOREIGN_EVENT)
    seen = harness.events.fetch(item_id)
    assert seen is not None and isinstance(seen.record, Event)
    assert seen.record.timing.tzid == "Europe/Berlin"
    before = harness.raw_get(item_id)  # both servers normalise what they store
    changed = dataclasses.replace(
        seen.record, subject="Board meeting (moved room)", location="Room 7"
    )
    written = harness.events.update(item_id, seen.version, changed)
    assert written.record == changed
    sent = harness.transport.puts[item_id]
    _assert_only_mapped_lines_changed(before, sent, {"SUMMARY", "LOCATION"})
    assert "SUMMARY:Board meeting (moved room)\r\n" in sent
    # And the server kept it all: alarm, attendee parameters, unknown property.
    stored = cl.parse(harness.raw_get(item_id))
    vevent = stored.sub("VEVENT")[0]
    assert [p.value for p in vevent.sub("VALARM")[0].properties] == [
        "DISPLAY",
        "Reminder",
        "-PT15M",
    ] or {p.name for p in vevent.sub("VALARM")[0].properties} == {
        "ACTION",
        "DESCRIPTION",
        "TRIGGER",
    }
    attendee = vevent.first("ATTENDEE")
    assert attendee is not None
    assert (attendee.param("CUTYPE"), attendee.param("RSVP"), attendee.param("X-NUM-GUESTS")) == (
        "INDIVIDUAL",
        "TRUE",
        "0",
    )
    assert attendee.param("CN") == "Doe, Jane"
    # Radicale stores the value re-escaped (\\;); the text it stands for is kept.
    assert cl.unescape_text(vevent.value("X-FOREIGN-COLOR") or "") == '#ff0000;with "quotes"'
    assert vevent.value("LOCATION") == "Room 7"
    harness.close()


def test_contact_update_keeps_apple_groups_and_unknown_properties(
    dav_server: DavServerInfo,
) -> None:
    harness = DavHarness(dav_server)
    item_id = harness.raw_put_into(harness.contacts, "apple-1.vcf", APPLE_CARD)
    seen = harness.contacts.fetch(item_id)
    assert seen is not None and isinstance(seen.record, Contact)
    assert seen.record.email == "johnny@example.com"
    assert seen.record.other_address.city == "Cupertino"
    before = harness.raw_get(item_id)
    changed = dataclasses.replace(seen.record, title="Orchardist", mobile_phone="+1 555 0199")
    written = harness.contacts.update(item_id, seen.version, changed)
    assert written.record == changed
    sent = harness.transport.puts[item_id]
    _assert_only_mapped_lines_changed(before, sent, {"TITLE", "TEL"})
    stored = cl.parse(harness.raw_get(item_id))
    groups = {(p.group, p.name) for p in stored.properties if p.group}
    assert {
        ("item1", "EMAIL"),
        ("item1", "X-ABLABEL"),
        ("item3", "ADR"),
        ("item3", "X-ABADR"),
    } <= groups
    assert stored.value("X-SOCIALPROFILE") == "https://twitter.com/johnny"
    assert stored.first("PHOTO") is not None
    harness.close()


# -------------------------------------------------------------------- bad input


# Both servers store these (they validate syntax, not meaning); crmsync must not choke.
BAD_CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bad-card\r\nFN:\r\nN:;;;;\r\nNOTE:?\r\nEND:VCARD\r\n"
BAD_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:bad-event\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260310T100000Z\r\nDTEND:20260310T090000Z\r\n"
    "SUMMARY:Ends before it starts\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_malformed_items_are_reported_and_the_rest_lists(dav_server: DavServerInfo) -> None:
    harness = DavHarness(dav_server)
    good_contact = harness.contacts.create(sample_contact(), "good")
    good_event = harness.events.create(sample_event(), "good")
    bad_card = harness.raw_put_into(harness.contacts, "bad.vcf", BAD_CARD)
    bad_event = harness.raw_put_into(harness.events, "bad.ics", BAD_EVENT)
    for side, good, bad, words in (
        (harness.contacts, good_contact, bad_card, "nothing identifies"),
        (harness.events, good_event, bad_event, "before it starts"),
    ):
        listing = {s.id: s for s in side.changes(None, {}).items}
        assert listing[good.id].record == good.record
        problem = listing[bad].problem
        assert listing[bad].record is None and problem is not None
        assert problem.error_type is ErrorType.MALFORMED_ITEM
        assert words in problem.message and problem.suggestion
    harness.close()


def test_retry_policy_is_used_by_the_harness() -> None:
    # Keeps the harness honest: contract runs must not wait long on a dead server.
    assert RetryPolicy(max_attempts=2, base_delay=0.01).delay(1) <= 0.01
