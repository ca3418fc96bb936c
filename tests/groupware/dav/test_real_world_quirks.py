"""Issue 13's real-world items, quirk by quirk, through the DAV formats (their fixtures
run through every path in test_fixture_corpus.py and, with a real server, in
tests/service/test_fidelity_round_trip.py)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.domain.records import AttendeeStatus, Contact, Event, EventTiming, Recurrence
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection
from crmsync.groupware.dav.formats import MalformedItem, NotSynced
from crmsync.groupware.dav.ical import parse_ical, render_ical_update, render_new_ical
from crmsync.groupware.dav.ical_time import add_duration
from crmsync.groupware.dav.vcard import (
    VCardFormat,
    parse_vcard,
    render_new_vcard,
    render_vcard_update,
)
from tests.fidelity import fixture_bytes, fixture_text

BOOK = "/u/book/"


def _serving(items: dict[str, bytes]) -> DavCollection:
    """A collection on an in-process server holding ``items`` (name → bytes) as stored."""

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rpartition("/")[2]
        return httpx.Response(200, content=items[name], headers={"ETag": '"e"'})

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    return DavCollection(connection, BOOK, VCardFormat())


# ---------------------------------------------------------------- 1. malformed or repaired


def test_a_vcard_without_fn_is_named_from_n_and_noted_as_repaired() -> None:
    name = "contacts/vcard30_no_fn_n_only.vcf"
    parsed = parse_vcard(fixture_text(name))
    assert (parsed.record.first_name, parsed.record.last_name) == ("Henrik", "Brandt")
    assert "repaired" in parsed.note and "no FN" in parsed.note
    seen = _serving({"card.vcf": fixture_bytes(name)}).fetch(BOOK + "card.vcf")
    assert seen is not None and seen.record == parsed.record and seen.note == parsed.note
    # A write adds the FN the card lacks (servers refuse a 3.0 card without one).
    updated = render_vcard_update(fixture_text(name), parsed.record)
    assert updated == fixture_text(name)  # nothing changed, nothing written
    edited = render_vcard_update(fixture_text(name), replace(parsed.record, title="CEO"))
    assert "\r\nFN:Henrik Brandt\r\n" in edited and parse_vcard(edited).note == ""


@pytest.mark.parametrize(
    "lines",
    ["N:;;;;\r\nEMAIL:x@example.com\r\n", "EMAIL:x@example.com\r\nN:;;;Dr.;\r\n"],
    ids=["empty-n", "only-a-prefix"],
)
def test_a_vcard_without_fn_or_a_name_in_n_is_malformed(lines: str) -> None:
    text = "BEGIN:VCARD\r\nVERSION:4.0\r\n" + lines + "END:VCARD\r\n"
    with pytest.raises(MalformedItem, match="no FN"):
        parse_vcard(text)


# ---------------------------------------------------------------- 8. company and group cards

COMPANY_CARDS = [
    "contacts/vcard30_org_no_n_company.vcf",  # ORG and no N
    "contacts/vcard30_company_only.vcf",  # ORG and an empty N
    "contacts/vcard40_kind_org_company_only.vcf",  # KIND:org
    "contacts/apple_company_showas.vcf",  # X-ABShowAs:COMPANY
]


@pytest.mark.parametrize("name", COMPANY_CARDS)
def test_a_company_card_is_a_contact_with_the_company_and_no_invented_person(name: str) -> None:
    contact = parse_vcard(fixture_text(name)).record
    assert contact.first_name == "" and contact.salutation == ""
    assert contact.last_name == contact.account_name != ""  # the CRM needs a last name


@pytest.mark.parametrize("name", COMPANY_CARDS)
def test_a_crm_edit_never_writes_a_company_back_as_n(name: str) -> None:
    text = fixture_text(name)
    contact = parse_vcard(text).record
    edited = render_vcard_update(text, replace(contact, title="Supplier", phone="+1 555 0101"))
    n_lines = [p.value for p in cl.parse(edited).all("N")]
    assert n_lines == [p.value for p in cl.parse(text).all("N")]
    assert parse_vcard(edited).record == replace(contact, title="Supplier", phone="+1 555 0101")


def test_a_company_from_the_crm_is_written_as_a_company_card() -> None:
    company = Contact(last_name="Umbrella Corp", account_name="Umbrella Corp", phone="+1 555")
    text = render_new_vcard(company, "003C", "crmsync-003C")
    card = cl.parse(text)
    assert card.value("N") == ";;;;" and card.value("X-ABSHOWAS") == "COMPANY"
    assert card.value("FN") == "Umbrella Corp"
    assert parse_vcard(text).record == company


def test_a_persons_name_from_the_crm_makes_a_company_card_a_persons() -> None:
    text = fixture_text("contacts/vcard40_kind_org_company_only.vcf")
    contact = parse_vcard(text).record
    person = replace(contact, first_name="Tina", last_name="Toys")
    updated = render_vcard_update(text, person)
    assert cl.parse(updated).first("KIND") is None
    assert parse_vcard(updated).record == person


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("contacts/vcard40_kind_group.vcf", "KIND:group"),
        ("contacts/apple_group_addressbookserver_kind.vcf", "X-ADDRESSBOOKSERVER-KIND:group"),
        ("contacts/vcard40_kind_location_meeting_room.vcf", "KIND:location"),
    ],
)
def test_a_group_or_location_card_is_left_out_by_a_rule_not_an_error(
    name: str, marker: str
) -> None:
    with pytest.raises(NotSynced, match=marker):
        parse_vcard(fixture_text(name))
    seen = _serving({"group.vcf": fixture_bytes(name)}).fetch(BOOK + "group.vcf")
    assert seen is not None and seen.left_out and marker in seen.note


# ---------------------------------------------------------------- 7. PO box and extended address

_component = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff\n"), max_size=12
)


def _card_with_adr(po_box: str, extended: str, street: str) -> str:
    adr = cl.join_structured([po_box, extended, street, "Lagos", "", "101001", "Nigeria"])
    return (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nN:Okafor;Ada;;;\r\nFN:Ada Okafor\r\n"
        + "".join(line + "\r\n" for line in cl.fold("ADR;TYPE=work:" + adr))
        + "END:VCARD\r\n"
    )


@settings(max_examples=80, deadline=None)
@given(_component, _component, _component, _component.filter(bool))
def test_po_box_and_extended_address_reach_the_crm_as_street_lines_and_stay_put(
    po_box: str, extended: str, street: str, new_first_line: str
) -> None:
    text = _card_with_adr(po_box, extended, street)
    contact = parse_vcard(text).record
    lines = [line for line in (street, extended, po_box) if line]
    assert contact.mailing_address.street == "\n".join(lines)
    assert render_vcard_update(text, contact) == text  # nothing invented on the way back
    # A CRM edit of the street's first line keeps the PO box and extended address where
    # the card had them.
    edited_street = (
        "\n".join([new_first_line, *lines[1:]]) if street else contact.mailing_address.street
    )
    edited = replace(
        contact, mailing_address=replace(contact.mailing_address, street=edited_street)
    )
    updated = render_vcard_update(text, edited)
    assert parse_vcard(updated).record == edited
    parts = cl.split_structured(cl.parse(updated).first("ADR").value)  # type: ignore[union-attr]
    assert parts[:2] == [po_box, extended] and parts[3:] == ["Lagos", "", "101001", "Nigeria"]


def test_a_changed_po_box_line_moves_into_the_street_without_losing_a_line() -> None:
    text = fixture_text("contacts/vcard40_adr_pobox_extended_street_lines.vcf")
    contact = parse_vcard(text).record
    assert contact.mailing_address.street == "14 Marina Road\nBlock C, Floor 3\nPO Box 7721"
    moved = "14 Marina Road\nBlock C, Floor 3\nPO Box 9000"
    edited = replace(contact, mailing_address=replace(contact.mailing_address, street=moved))
    updated = render_vcard_update(text, edited)
    assert parse_vcard(updated).record.mailing_address.street == moved


# ---------------------------------------------------------------- 11. what a CRM → mail copy keeps


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        ("小明", "王", "王小明"),
        ("太郎", "山田", "山田 太郎"),
        ("민준", "김", "김민준"),
        ("Ann", "Lee", "Ann Lee"),
        ("María José", "de la Cruz", "María José de la Cruz"),
    ],
)
def test_a_new_card_writes_cjk_names_family_first(first: str, last: str, shown: str) -> None:
    text = render_new_vcard(Contact(first_name=first, last_name=last), "m", "u")
    assert cl.unescape_text(cl.parse(text).value("FN") or "") == shown
    assert parse_vcard(text).record == Contact(first_name=first, last_name=last)


def test_a_new_card_keeps_the_kinds_of_phones_and_marks_the_email_preferred() -> None:
    record = parse_vcard(fixture_text("contacts/vcard30_family_first_cjk_pref_types.vcf")).record
    assert record.email == "minjun.kim@hanbit.example"  # the preferred one
    card = cl.parse(render_new_vcard(record, "m", "u"))
    (email,) = card.all("EMAIL")
    assert email.param_values("TYPE") == ["INTERNET", "PREF"]
    types = {p.value: p.param_values("TYPE") for p in card.all("TEL")}
    assert types == {
        "+82 10 5555 1234": ["CELL"],
        "+82 2 555 0100": ["WORK", "VOICE"],
        "+82 2 555 0199": ["HOME", "VOICE"],
    }


# ---------------------------------------------------------------- 5. attendee status


def test_delegated_attendees_keep_their_status_and_delegation_both_ways() -> None:
    text = fixture_text("events/attendees_partstat_delegated.ics")
    event = parse_ical(text).record
    olga, ivan, _ = event.attendees
    assert olga.status is AttendeeStatus.DELEGATED
    assert (olga.delegated_to, ivan.delegated_from) == (
        ("ivan@client.example",),
        ("olga@client.example",),
    )
    # A new item from the CRM record writes them; an edit rewrites only what changed.
    assert parse_ical(render_new_ical(event, "m", "u")).record == event
    moved = replace(olga, delegated_to=("ivan@client.example", "ana@client.example"))
    edited = replace(event, attendees=(moved, *event.attendees[1:]))
    updated = render_ical_update(text, edited)
    assert parse_ical(updated).record == edited
    folded = cl.parse(updated).sub("VEVENT")[0].all("ATTENDEE")[0].render()
    olga_line = folded[0] + "".join(line[1:] for line in folded[1:])
    assert 'DELEGATED-TO="mailto:ivan@client.example","mailto:ana@client.example"' in olga_line
    assert "PARTSTAT=DELEGATED" in olga_line and "CN=Olga Novak" in olga_line


# ---------------------------------------------------------------- 3. nominal durations

_ZONE_NAMES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC")
_instants = st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2035, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=dt.UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    _instants,
    st.sampled_from(_ZONE_NAMES),
    st.integers(0, 20),
    st.integers(0, 3),
    st.integers(0, 600),
)
def test_days_and_weeks_of_a_duration_are_calendar_days_and_its_time_is_exact(
    start: dt.datetime, zone_name: str, days: int, weeks: int, minutes: int
) -> None:
    zone = ZoneInfo(zone_name)
    end = add_duration(start, f"P{days + 7 * weeks}DT{minutes}M", zone)
    assert isinstance(end, dt.datetime)
    nominal = add_duration(start, f"P{days + 7 * weeks}D", zone)
    assert end - nominal == dt.timedelta(minutes=minutes)  # the time part is exact
    local_start = start.astimezone(zone)
    wall = local_start.replace(tzinfo=None) + dt.timedelta(days=days + 7 * weeks)
    if wall.replace(tzinfo=zone).astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == wall:
        # Same wall-clock time, N calendar days later (unless that time does not exist).
        assert nominal.astimezone(zone).replace(tzinfo=None) == wall
    if weeks == 0 and days == 0:
        assert nominal == start


def test_a_one_day_duration_over_the_autumn_change_lasts_25_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2027, 10, 30, 10, tzinfo=berlin).astimezone(dt.UTC)
    assert add_duration(start, "P1D", berlin) - start == dt.timedelta(hours=25)
    assert add_duration(start, "PT24H", berlin) - start == dt.timedelta(hours=24)
    assert add_duration(start, "P1DT2H", berlin) - start == dt.timedelta(hours=27)
    for bad in ("P", "PT", "1D", "P1X"):
        with pytest.raises(ValueError):
            add_duration(start, bad, berlin)


# ---------------------------------------------------------------- 6. RDATE;VALUE=PERIOD


def test_an_rdate_period_keeps_its_end_both_ways() -> None:
    text = fixture_text("events/rdate_value_period.ics")
    rec = parse_ical(text).record.recurrence
    assert rec is not None
    march, june = rec.rdates
    assert rec.rdate_periods == (
        (march, march + dt.timedelta(hours=3)),
        (june, june + dt.timedelta(hours=2)),  # start/PT2H
    )
    event = parse_ical(text).record
    written = render_new_ical(event, "m", "u")
    assert "RDATE;VALUE=PERIOD:20270310T140000Z/20270310T170000Z\r\n" in written
    assert parse_ical(written).record == event
    # Dropping one period's end leaves a plain extra date; the other period stays.
    shorter = replace(rec, rdate_periods=rec.rdate_periods[1:])
    updated = render_ical_update(text, replace(event, recurrence=shorter))
    assert parse_ical(updated).record.recurrence == shorter


@pytest.mark.parametrize("value", ["20270310T140000Z", "20270310T140000Z/P", "20270310/20270311"])
def test_an_rdate_period_without_a_readable_end_is_malformed(value: str) -> None:
    text = fixture_text("events/rdate_value_period.ics").replace(
        "20270310T140000Z/20270310T170000Z", value
    )
    with pytest.raises(MalformedItem, match="RDATE period"):
        parse_ical(text)


# ---------------------------------------------------------------- 4. time zones


@pytest.mark.parametrize(
    ("tzid", "iana"),
    [
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin"),
        ("(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
        ("(UTC-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
        ("(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi", "Asia/Kolkata"),
        ("(UTC+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney"),
        ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/London"),
    ],
)
def test_a_windows_display_name_tzid_keeps_its_zone(tzid: str, iana: str) -> None:
    """With the VTIMEZONE Outlook writes for it, and without one."""
    zone = ZoneInfo(iana)
    start = dt.datetime(2027, 7, 1, 9, tzinfo=zone).astimezone(dt.UTC)
    event = Event("Call", EventTiming(start, start + dt.timedelta(hours=1), iana))
    text = render_new_ical(event, "m", "u")
    # The same item as Outlook writes it: the display name as TZID, in quotes.
    outlook = text.replace(f"TZID:{iana}", f"TZID:{tzid}").replace(f"TZID={iana}", f'TZID="{tzid}"')
    assert tzid in outlook
    assert parse_ical(outlook).record == event
    bare = re.sub(r"BEGIN:VTIMEZONE.*END:VTIMEZONE\r\n", "", outlook, flags=re.DOTALL)
    assert parse_ical(bare).record == event


def test_a_display_name_no_zone_matches_is_still_read_by_its_vtimezone() -> None:
    text = fixture_text("events/outlook_windows_display_name_tzid.ics").replace(
        "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Somewhere Else"
    )
    text = text.replace("TZOFFSETTO:+0200", "TZOFFSETTO:+0230")  # a zone no IANA name has
    timing = parse_ical(text).record.timing
    assert timing.tzid is None  # the instant is right; no IANA name can be claimed
    assert timing.start == dt.datetime(2027, 4, 20, 11, 30, tzinfo=dt.UTC)


def test_an_end_in_another_zone_keeps_its_zone_both_ways() -> None:
    text = fixture_text("events/tz_start_and_end_in_different_zones.ics")
    event = parse_ical(text).record
    assert (event.timing.tzid, event.timing.end_tzid) == ("Europe/Berlin", "America/New_York")
    written = render_new_ical(event, "m", "u")
    assert "DTEND;TZID=America/New_York:20270505T130000\r\n" in written
    assert parse_ical(written).record == event
    later = replace(event.timing, end=event.timing.end + dt.timedelta(hours=1))
    updated = render_ical_update(text, replace(event, timing=later))
    assert "DTEND;TZID=America/New_York:20270505T140000\r\n" in updated
    assert parse_ical(updated).record.timing == later


# ---------------------------------------------------------------- 2. a lone occurrence


def test_a_lone_occurrence_is_a_single_event_tied_to_that_occurrence() -> None:
    text = fixture_text("events/google_lone_override_instance.ics")
    parsed = parse_ical(text)
    event = parsed.record
    assert event.recurrence is None and event.subject == "Partner sync (moved to Thursday)"
    assert parsed.note == ""
    # A CRM edit moves that occurrence: RECURRENCE-ID and everything else stay.
    later = replace(
        event.timing,
        start=event.timing.start + dt.timedelta(hours=1),
        end=event.timing.end + dt.timedelta(hours=1),
    )
    updated = render_ical_update(text, replace(event, timing=later, location="Room 2"))
    vevent = cl.parse(updated).sub("VEVENT")[0]
    assert vevent.value("RECURRENCE-ID") == "20270217T150000"
    assert vevent.value("DTSTART") == "20270218T160000"
    assert parse_ical(updated).record == replace(event, timing=later, location="Room 2")
    # It cannot become a series: that is the organiser's to decide.
    series = replace(event, recurrence=Recurrence("FREQ=WEEKLY;COUNT=3"))
    with pytest.raises(MalformedItem, match="organised elsewhere"):
        render_ical_update(text, series)


def test_several_lone_occurrences_sync_the_first_and_say_so() -> None:
    text = fixture_text("events/google_lone_override_instance.ics")
    vevent = text[text.index("BEGIN:VEVENT") : text.index("END:VEVENT") + len("END:VEVENT\r\n")]
    earlier = (
        vevent.replace("20270217T150000", "20270210T150000")
        .replace("20270218T150000", "20270210T150000")
        .replace("20270218T160000", "20270210T160000")
        .replace("SUMMARY:Partner sync (moved to Thursday)", "SUMMARY:Partner sync")
    )
    both = text.replace("END:VCALENDAR", earlier + "END:VCALENDAR")
    parsed = parse_ical(both)
    assert parsed.record.subject == "Partner sync"  # the first occurrence
    assert "2 occurrences" in parsed.note and "2027-02-10" in parsed.note
    updated = render_ical_update(both, replace(parsed.record, location="Room 2"))
    assert "SUMMARY:Partner sync (moved to Thursday)\r\n" in updated  # the other stays
