"""vCard and iCalendar mapping: record → text → record is identity, updates change only
what changed, and real-world quirks are read or reported precisely."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.domain.records import (
    MAX_ATTENDEES,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
    ShowAs,
)
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MalformedItem
from crmsync.groupware.dav.ical import OutOfScope, parse_ical, render_ical_update, render_new_ical
from crmsync.groupware.dav.vcard import parse_vcard, render_new_vcard, render_vcard_update
from tests.groupware.dav.strategies import contacts, events

slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -------------------------------------------------------------------- vCard


@slow
@given(contacts)
def test_contact_to_vcard_and_back_is_identity(contact: Contact) -> None:
    parsed = parse_vcard(render_new_vcard(contact, "003X", "crmsync-003X"))
    assert parsed.record == contact
    assert (parsed.marker, parsed.uid) == ("003X", "crmsync-003X")


@slow
@given(contacts, contacts)
def test_vcard_update_gives_the_new_contact(old: Contact, new: Contact) -> None:
    text = render_new_vcard(old, "m", "u")
    updated = render_vcard_update(text, new)
    parsed = parse_vcard(updated)
    assert parsed.record == new and parsed.marker == "m"
    assert render_vcard_update(updated, new) == updated  # nothing left to change


def test_vcard4_with_uri_phone_and_lf_endings() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:4.0\nFN:Jane Doe\nN:Doe;Jane;Q;Dr.;PhD\n"
        'TEL;VALUE=uri;TYPE="cell,voice":tel:+1-555-0100\nEMAIL;PREF=1:j@example.com\n'
        "EMAIL:other@example.com\nBDAY:--0517\nNICKNAME:JD,Janie\nEND:VCARD\n"
    )
    contact = parse_vcard(text).record
    assert (contact.first_name, contact.last_name, contact.salutation) == ("Jane", "Doe", "Dr.")
    assert contact.mobile_phone == "+1-555-0100" and contact.email == "j@example.com"
    assert contact.birthdate is None
    updated = render_vcard_update(
        text, dataclasses.replace(contact, mobile_phone="+1-555-0199", first_name="Janet")
    )
    assert 'TEL;VALUE=uri;TYPE="cell,voice":tel:+1-555-0199\r\n' in updated
    assert "N:Doe;Janet;Q;Dr.;PhD\r\n" in updated  # middle name and suffix kept
    assert "BDAY:--0517\r\nNICKNAME:JD,Janie\r\n" in updated
    assert "VERSION:4.0" in updated


def test_vcard21_bare_type_parameters() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Smith;John\r\nTEL;CELL:123\r\nTEL;HOME;FAX:456\r\n"
        "END:VCARD\r\n"
    )
    contact = parse_vcard(text).record
    assert (contact.mobile_phone, contact.fax) == ("123", "456")


@pytest.mark.parametrize(
    "text, words",
    [
        ("BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "no VERSION"),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:a@b.c\r\nEND:VCARD\r\n", "neither FN nor N"),
        ("BEGIN:VCARD\r\nVERSION:5.0\r\nFN:x\r\nEND:VCARD\r\n", "VERSION:5.0"),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\n", "END:VCARD is missing"),
        ("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "not a VCARD"),
    ],
)
def test_bad_vcards_are_reported_precisely(text: str, words: str) -> None:
    with pytest.raises(MalformedItem) as caught:
        parse_vcard(text)
    assert words in caught.value.message and caught.value.suggestion


# -------------------------------------------------------------------- iCalendar


@slow
@given(events())
def test_event_to_icalendar_and_back_is_identity(event: Event) -> None:
    parsed = parse_ical(render_new_ical(event, "00U", "crmsync-00U"))
    assert parsed.record == event
    assert (parsed.marker, parsed.uid) == ("00U", "crmsync-00U")


@slow
@given(events(), events())
def test_icalendar_update_gives_the_new_event(old: Event, new: Event) -> None:
    text = render_new_ical(old, "m", "u")
    updated = render_ical_update(text, new)
    assert parse_ical(updated).record == new
    assert render_ical_update(updated, new) == updated


def _calendar(*vevent_lines: str, extra: str = "") -> str:
    body = "\r\n".join(vevent_lines)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{extra}BEGIN:VEVENT\r\n{body}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_windows_tzid_and_duration() -> None:
    text = _calendar(
        "UID:1",
        "DTSTART;TZID=Eastern Standard Time:20260105T090000",
        "DURATION:PT90M",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
        "CLASS:CONFIDENTIAL",
        extra="BEGIN:VTIMEZONE\r\nTZID:Eastern Standard Time\r\nEND:VTIMEZONE\r\n",
    )
    event = parse_ical(text).record
    assert event.timing == EventTiming(
        dt.datetime(2026, 1, 5, 14, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 5, 15, 30, tzinfo=dt.UTC),
        "America/New_York",
    )
    assert event.show_as is ShowAs.OUT_OF_OFFICE and event.is_private


def test_all_day_without_end_lasts_one_day_and_floating_is_utc() -> None:
    assert parse_ical(_calendar("UID:1", "DTSTART;VALUE=DATE:20260105")).record.timing == (
        EventTiming(dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    )
    timing = parse_ical(_calendar("UID:1", "DTSTART:20260105T090000")).record.timing
    assert timing.start == dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC) and timing.tzid is None


def test_new_event_in_a_zone_carries_a_correct_vtimezone() -> None:
    start = dt.datetime(2026, 3, 8, 6, 59, 59, tzinfo=dt.UTC)  # 01:59:59 EST, just before DST
    event = Event("x", EventTiming(start, start + dt.timedelta(seconds=2), "America/New_York"))
    text = render_new_ical(event, "m", "u")
    import icalendar

    parsed = icalendar.Calendar.from_ical(text)
    vevent = next(iter(parsed.walk("VEVENT")))
    # icalendar interprets the VTIMEZONE we wrote; instants must match zoneinfo's.
    assert vevent.decoded("DTSTART").astimezone(dt.UTC) == start
    assert vevent.decoded("DTEND").astimezone(dt.UTC) == start + dt.timedelta(seconds=2)
    assert "TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400" in text
    assert "DTSTART:20250309T020000" in text or "RDATE:20260308T020000" in text


def test_update_keeps_alarm_and_unknown_lines_byte_for_byte() -> None:
    text = _calendar(
        "UID:1",
        "DTSTART:20260105T090000Z",
        "SUMMARY:old",
        'X-ODD;X-P="a,b":v\\;w',
        "BEGIN:VALARM\r\nTRIGGER:-PT5M\r\nACTION:AUDIO\r\nEND:VALARM",
    )
    event = parse_ical(text).record
    updated = render_ical_update(text, dataclasses.replace(event, subject="new"))
    assert updated == text.replace("SUMMARY:old", "SUMMARY:new")


@pytest.mark.parametrize(
    "text, words",
    [
        (_calendar("UID:1", "SUMMARY:x"), "no DTSTART"),
        (_calendar("DTSTART:20260105T090000Z"), "no UID"),
        (_calendar("UID:1", "DTSTART:20260105T090000Z", "DTEND:20260105T080000Z"), "before it"),
        (_calendar("UID:1", "DTSTART;TZID=Mars/Olympus:20260105T090000"), "no VTIMEZONE"),
        (
            _calendar("UID:1", "DTSTART:20260105T090000Z").replace(
                "END:VCALENDAR",
                "BEGIN:VEVENT\r\nUID:2\r\nDTSTART:20260105T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
            ),
            "different UIDs",
        ),
        (_calendar("UID:1", "DTSTART;VALUE=DATE:20260105", "DTEND:20260105T100000Z"), "mixes"),
    ],
)
def test_bad_events_are_reported_precisely(text: str, words: str) -> None:
    with pytest.raises(MalformedItem) as caught:
        parse_ical(text)
    assert words in caught.value.message and caught.value.suggestion


def test_task_only_resource_is_out_of_scope() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(OutOfScope):
        parse_ical(text)


def test_changed_lines_are_folded_utf8_safely() -> None:
    text = _calendar("UID:1", "DTSTART:20260105T090000Z", "SUMMARY:x")
    event = parse_ical(text).record
    updated = render_ical_update(text, dataclasses.replace(event, subject="日本語" * 40))
    assert all(len(line.encode()) <= 75 for line in updated.split("\r\n"))
    assert parse_ical(updated).record.subject == "日本語" * 40
    assert cl.parse(updated).serialize() == updated


@given(
    st.sampled_from(
        [
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "America/Sao_Paulo",
            "Asia/Tehran",
        ]
    ),
    st.datetimes(dt.datetime(2001, 1, 1), dt.datetime(2039, 1, 1)),
)
@settings(max_examples=40, deadline=None)
def test_generated_vtimezone_agrees_with_zoneinfo(tzid: str, when: dt.datetime) -> None:
    import icalendar

    instant = when.replace(tzinfo=dt.UTC, microsecond=0)
    event = Event("x", EventTiming(instant, instant, tzid))
    text = render_new_ical(event, "m", "u")
    # Re-read with icalendar *using only the VTIMEZONE* (custom TZID, so no IANA lookup;
    # unique, as icalendar caches zones by TZID).
    renamed = text.replace(tzid, f"Custom {tzid} {instant.timestamp()}")
    vevent = next(iter(icalendar.Calendar.from_ical(renamed).walk("VEVENT")))
    assert vevent.decoded("DTSTART").astimezone(dt.UTC) == instant


def test_an_event_in_the_repeated_hour_of_a_dst_end_keeps_its_instant_and_zone() -> None:
    # 2028-11-05 06:30 UTC is 01:30 EST, the second 01:30 of that night in New York.
    start = dt.datetime(2028, 11, 5, 6, 30, tzinfo=dt.UTC)
    event = Event(
        "Late call", EventTiming(start, start + dt.timedelta(hours=1), "America/New_York")
    )
    text = render_new_ical(event, "m", "u")
    assert "DTSTART:20281105T063000Z" in text
    assert parse_ical(text).record == event


def test_at_most_50_attendees_are_carried_and_the_rest_survive_an_update() -> None:
    attendees = [
        f"ATTENDEE;CN=Guest {i};PARTSTAT=NEEDS-ACTION:mailto:guest{i}@example.com"
        for i in range(60)
    ]
    text = _calendar("UID:1", "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", *attendees)
    event = parse_ical(text).record
    assert len(event.attendees) == MAX_ATTENDEES == 50
    assert event.attendees[-1].email == "guest49@example.com"

    first = dataclasses.replace(event.attendees[0], status=AttendeeStatus.ACCEPTED)
    changed = dataclasses.replace(event, attendees=(first, *event.attendees[1:]))
    updated = render_ical_update(text, changed)
    lines = [line for line in updated.split("\r\n") if line.startswith("ATTENDEE")]
    assert len(lines) == 60
    assert "PARTSTAT=ACCEPTED" in lines[0] and "guest59@example.com" in lines[-1]
    assert parse_ical(updated).record == changed

    # Removing a carried attendee leaves the uncarried ones alone.
    fewer = dataclasses.replace(event, attendees=event.attendees[1:])
    lines = [ln for ln in render_ical_update(text, fewer).split("\r\n") if "ATTENDEE" in ln]
    assert len(lines) == 59 and not any("guest0@" in line for line in lines)


def test_override_order_means_nothing() -> None:
    """Found by Hypothesis: an update kept the server's override order, so the event read
    back differed from the one written only by the order of its overrides."""
    day = dt.date(2000, 1, 1)
    timing = EventTiming(day, day + dt.timedelta(days=1))

    def moved(week: int) -> Occurrence:
        return Occurrence(day + dt.timedelta(weeks=week), timing)

    old = Event(
        "s", timing, recurrence=Recurrence("FREQ=WEEKLY;COUNT=40", (), (moved(2), moved(1)))
    )
    new = Event(
        "s", timing, recurrence=Recurrence("FREQ=WEEKLY;COUNT=40", (), (moved(1), moved(2)))
    )
    assert old == new
    updated = render_ical_update(render_new_ical(old, "m", "u"), new)
    assert parse_ical(updated).record == new
