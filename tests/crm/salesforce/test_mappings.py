"""Property tests: Salesforce rows and crmsync records map to each other without loss.

A record written (`write_fields` / `event_fields`) and read back as Salesforce returns it
(`crm_values` / `row_event` / `series_view`) is the same record, for every contact,
person account, event and series Salesforce can hold.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.crm.salesforce.contact_map import crm_values, write_fields
from crmsync.crm.salesforce.event_map import event_fields, row_event
from crmsync.crm.salesforce.series import row_updates, series_view
from crmsync.crm.salesforce.versions import wire_instant
from crmsync.domain.contact_fields import IDENTITY_MAP
from crmsync.domain.records import (
    Address,
    Contact,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
    ShowAs,
)
from tests.crm.salesforce.fake_org import PERSON_TO_CONTACT

UTC = dt.UTC
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
lines = st.lists(text, max_size=3).map("\n".join)
phones = st.from_regex(r"\+?[0-9][0-9 ]{0,15}", fullmatch=True).map(lambda p: " ".join(p.split()))
emails = st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.[a-z]{2,4}", fullmatch=True)
addresses = st.builds(Address, lines, text, text, text, text)
contacts = st.builds(
    Contact,
    first_name=text,
    last_name=text.filter(bool),
    salutation=text,
    title=text,
    department=text,
    email=st.one_of(st.just(""), emails),
    phone=st.one_of(st.just(""), phones),
    mobile_phone=st.one_of(st.just(""), phones),
    home_phone=st.one_of(st.just(""), phones),
    other_phone=st.one_of(st.just(""), phones),
    fax=st.one_of(st.just(""), phones),
    mailing_address=addresses,
    other_address=addresses,
    birthdate=st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31))),
    description=lines,
)


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """What Salesforce returns for written fields: empty text stays null."""
    return {k: v for k, v in fields.items() if v is not None}


@given(contacts)
def test_contact_fields_round_trip(contact: Contact) -> None:
    row = _stored(write_fields(IDENTITY_MAP.to_crm(contact), person=False))
    assert IDENTITY_MAP.to_contact(crm_values(row)) == contact


@given(contacts)
def test_person_account_fields_round_trip_through_the_account(contact: Contact) -> None:
    account = _stored(write_fields(IDENTITY_MAP.to_crm(contact), person=True))
    # Salesforce shows the person account's fields on its person contact.
    row = {PERSON_TO_CONTACT[k]: v for k, v in account.items()} | {"IsPersonAccount": True}
    read = IDENTITY_MAP.to_contact(crm_values(row))
    assert read == dataclasses.replace(contact, is_person_account=True)


instants = st.datetimes(
    dt.datetime(2020, 1, 1), dt.datetime(2035, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
lengths = st.integers(0, 14 * 24 * 60).map(lambda m: dt.timedelta(minutes=m))


@st.composite
def timings(draw: st.DrawFn, zone: str) -> EventTiming:
    if draw(st.booleans()):
        start = draw(st.dates(dt.date(2020, 1, 1), dt.date(2035, 1, 1)))
        return EventTiming(start, start + dt.timedelta(days=draw(st.integers(1, 14))))
    start = draw(instants)
    return EventTiming(start, start + draw(lengths), zone)


@st.composite
def events(draw: st.DrawFn) -> tuple[Event, str]:
    zone = draw(st.sampled_from(ZONES))
    event = Event(
        subject=draw(text),
        timing=draw(timings(zone)),
        location=draw(text),
        description=draw(lines),
        is_private=draw(st.booleans()),
        show_as=draw(st.sampled_from([ShowAs.BUSY, ShowAs.FREE, ShowAs.OUT_OF_OFFICE])),
    )
    return event, zone


@given(events())
def test_event_fields_round_trip(case: tuple[Event, str]) -> None:
    event, zone = case
    assert row_event(_stored(event_fields(event)), zone) == event


# ---------------------------------------------------------------- series


@st.composite
def series_cases(draw: st.DrawFn) -> tuple[Event, str]:
    """A series with cancelled and moved occurrences."""
    zone = draw(st.sampled_from(ZONES))
    freq, step = draw(
        st.sampled_from([("DAILY", dt.timedelta(days=1)), ("WEEKLY", dt.timedelta(days=7))])
    )
    count = draw(st.integers(2, 12))
    rule = f"FREQ={freq};COUNT={count}"
    start = draw(instants).replace(second=0, microsecond=0)
    length = dt.timedelta(minutes=draw(st.integers(15, 180)))
    slots = _expand(rule, start, zone)
    chosen = (
        draw(st.lists(st.sampled_from(range(1, len(slots))), unique=True, max_size=len(slots) - 1))
        if len(slots) > 1
        else []
    )
    cut = draw(st.integers(0, len(chosen)))
    cancelled = [slots[i] for i in chosen[:cut]]
    overrides = []
    for i in chosen[cut:]:
        # A third of the step: nearer its own slot than any other, even across a DST change;
        # never zero, or it would be no override at all.
        bound = step.days * 480
        shift = dt.timedelta(minutes=draw(st.integers(-bound, bound).filter(bool)))
        moved = slots[i] + shift
        overrides.append(
            Occurrence(
                slots[i],
                EventTiming(moved, moved + length, zone),
                draw(text),
                draw(text),
                draw(text),
            )
        )
    event = Event(
        subject=draw(text),
        timing=EventTiming(start, start + length, zone),
        location=draw(text),
        recurrence=Recurrence(rule, tuple(cancelled), tuple(overrides)),
    )
    return event, zone


def _expand(rule: str, start: dt.datetime, zone: str) -> list[dt.datetime]:
    local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return [w.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) for w in rrulestr(rule, dtstart=local)]


def _generated_rows(event: Event, zone: str) -> list[dict[str, Any]]:
    """The rows Salesforce generates for a new series (before any edit)."""
    assert event.recurrence is not None
    length = event.timing.end - event.timing.start
    assert isinstance(event.timing.start, dt.datetime)
    rows = []
    for n, slot in enumerate(_expand(event.recurrence.rule, event.timing.start, zone)):
        plain = dataclasses.replace(
            event, timing=EventTiming(slot, slot + length, zone), recurrence=None
        )
        rows.append(
            _stored(event_fields(plain))
            | {
                "Id": f"00U{n:015d}",
                "OwnerId": "005A",
                "IsRecurrence2": True,
                "IsRecurrence2Exception": False,
                "Recurrence2PatternText": "RRULE:" + event.recurrence.rule,
                "Recurrence2PatternStartDate": wire_instant(event.timing.start),
                "Recurrence2PatternTimeZone": zone,
            }
        )
    return rows


@settings(max_examples=60)
@given(series_cases())
def test_series_written_as_row_edits_reads_back_the_same(case: tuple[Event, str]) -> None:
    event, zone = case
    rows = {r["Id"]: r for r in _generated_rows(event, zone)}
    plain_series = dataclasses.replace(event, recurrence=Recurrence(event.recurrence.rule))  # type: ignore[union-attr]
    view = series_view(list(rows.values()), zone)
    assert view.event == plain_series
    updates, deletions = row_updates(view, event)
    for update in updates:
        row = rows[update["Id"]]
        row.update({k: v for k, v in update.items() if v is not None})
        for k, v in update.items():
            if v is None:
                row.pop(k, None)
        row["IsRecurrence2Exception"] = True
    for row_id in deletions:
        del rows[row_id]
    assert series_view(list(rows.values()), zone).event == event
