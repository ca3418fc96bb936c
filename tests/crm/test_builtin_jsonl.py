"""JSON Lines import and export of the built-in CRM."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.crm.builtin import BuiltinCrm, EventRelations, jsonl
from crmsync.domain.contact_fields import FieldType
from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Lead,
    Occurrence,
    Recurrence,
    ShowAs,
    User,
)
from tests.crm.samples import EVENTS, FULL_CONTACT, LEAD, PERSON_ACCOUNT


def snapshot(crm: BuiltinCrm) -> dict[str, object]:
    """Everything the CRM holds, ids included, stamps left out."""
    emails = {u.id: u.email for u in crm.list_users()}
    events = crm.list_events()
    return {
        "profiles": sorted(crm.list_profiles(), key=lambda p: p.id),
        "users": sorted(crm.list_users(), key=lambda u: u.id),
        "contacts": sorted((s.id, emails[s.owner_id], s.record) for s in crm.list_contacts()),
        "leads": sorted((s.id, emails[s.owner_id], s.record) for s in crm.list_leads()),
        "events": sorted(
            ((s.id, emails[s.owner_id], s.record) for s in events), key=lambda t: t[0]
        ),
        "relations": {s.id: crm.event_relations(s.id) for s in events},
        "custom_fields": crm.custom_field_types(),
        "custom_values": {s.id: crm.custom_values(s.id) for s in crm.list_contacts()},
    }


def export_text(crm: BuiltinCrm, kinds: tuple[str, ...] = jsonl.EXPORT_ORDER) -> str:
    out = io.StringIO()
    jsonl.export_to(crm, out, kinds)
    return out.getvalue()


def populate(crm: BuiltinCrm) -> None:
    sales = crm.create_profile("Sales")
    ann = crm.create_user("Ann@Example.com", "Ann", profile_id=sales.id, time_zone="Europe/Paris")
    bob = crm.create_user("bob@example.com", "Bob", active=False)
    crm.create_profile("Unused")
    crm.define_custom_field("direct_line", FieldType.PHONE)
    crm.define_custom_field("renewal", FieldType.DATE)
    contact = crm.create_contact(ann.id, FULL_CONTACT)
    crm.set_custom_values(contact.id, {"direct_line": "+33 1 23 45", "renewal": "2027-01-31"})
    crm.create_contact(bob.id, PERSON_ACCOUNT)
    lead = crm.create_lead(ann.id, LEAD)
    for name, event in EVENTS.items():
        stored = crm.create_event(ann.id, event, id=f"evt-{name}")
        if name == "timed":
            crm.set_event_relations(stored.id, EventRelations((contact.id,), lead.id))


def test_export_then_import_into_an_empty_crm_reproduces_it(
    crm: BuiltinCrm, tmp_path: Path
) -> None:
    populate(crm)
    text = export_text(crm)
    with BuiltinCrm(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        report = jsonl.import_lines(copy, io.StringIO(text))
        assert report.ok and report.imported == len(text.splitlines())
        assert snapshot(copy) == snapshot(crm)
        assert export_text(copy) == text


def test_import_with_ids_is_idempotent(crm: BuiltinCrm) -> None:
    populate(crm)
    text = export_text(crm)
    before, stamp = snapshot(crm), crm.current_stamp()
    report = jsonl.import_lines(crm, io.StringIO(text))
    assert report.ok and report.imported == 0 and report.unchanged == len(text.splitlines())
    assert snapshot(crm) == before
    # Nothing changed, so the change feed has nothing new for the sync either.
    side = crm.side(crm.list_users()[0].id, "contact")  # type: ignore[arg-type]
    assert side.changes(str(stamp), {}).items == ()


def test_reimport_with_edits_updates_and_moves(crm: BuiltinCrm) -> None:
    ann = crm.create_user("ann@example.com")
    bob = crm.create_user("bob@example.com")
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    line = json.loads(export_text(crm, ("contact",)))
    line.update(owner="BOB@example.com", title="Chair")
    report = jsonl.import_lines(crm, [json.dumps(line)])
    assert report.ok and report.imported == 1
    now = crm.get_contact(stored.id)
    assert now.owner_id == bob.id and now.record.title == "Chair"
    side = crm.side(ann.id, "contact")  # type: ignore[arg-type]
    assert side.changes(stored.version, {}).deleted == (stored.id,)


def test_custom_values_travel_and_undefined_fields_are_refused(crm: BuiltinCrm) -> None:
    populate(crm)
    (line,) = [
        json.loads(t) for t in export_text(crm, ("contact",)).splitlines() if '"custom"' in t
    ]
    assert line["custom"] == {"direct_line": "+33 1 23 45", "renewal": "2027-01-31"}
    line["custom"] = {"direct_line": "+33 9 99"}  # renewal cleared by omission
    bad = {**line, "id": None, "custom": {"shoe_size": "44"}}
    report = jsonl.import_lines(crm, [json.dumps(line), json.dumps(bad)])
    assert report.imported == 1
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, "custom field(s) not defined: shoe_size")
    ]
    assert crm.custom_values(line["id"]) == {"direct_line": "+33 9 99"}


def test_hand_written_lines(crm: BuiltinCrm) -> None:
    lines = [
        '{"kind": "user", "email": "ann@example.com", "name": "Ann", "profile": "Sales",'
        ' "time_zone": "Europe/Paris"}',
        '{"kind": "contact", "owner": "ANN@example.com", "first_name": "Bo",'
        ' "mailing_address": {"city": "Lyon"}, "birthdate": "1990-01-31"}',
        '{"kind": "event", "owner": "ann@example.com", "subject": "Local time",'
        ' "start": "2024-07-01T09:00", "end": "2024-07-01T10:00", "tzid": "Europe/Paris",'
        ' "recurrence": {"rule": "FREQ=DAILY;COUNT=3", "exdates": ["2024-07-02T09:00"]}}',
        '{"kind": "event", "owner": "ann@example.com", "subject": "All day",'
        ' "start": "2024-07-01", "end": "2024-07-02"}',
        "",
    ]
    report = jsonl.import_lines(crm, lines)
    assert report.ok, report.errors
    (user,) = crm.list_users()
    assert crm.get_profile(user.profile_id or "").name == "Sales"
    (contact,) = crm.list_contacts()
    assert contact.record.mailing_address == Address(city="Lyon")
    assert contact.record.birthdate == dt.date(1990, 1, 31)
    local, all_day = crm.list_events()
    assert local.record.timing.start == dt.datetime(2024, 7, 1, 7, tzinfo=dt.UTC)
    assert local.record.recurrence is not None
    assert local.record.recurrence.exdates == (dt.datetime(2024, 7, 2, 7, tzinfo=dt.UTC),)
    assert all_day.record.timing == EventTiming(dt.date(2024, 7, 1), dt.date(2024, 7, 2))
    # Users without an id are matched by email: importing again adds nobody.
    assert jsonl.import_lines(crm, lines[:1]).unchanged == 1


BAD_LINES = {
    2: ("{not json", "not valid JSON"),
    3: ('{"kind": "widget"}', "kind must be one of"),
    4: ('{"kind": "contact", "owner": "ann@example.com", "frist_name": "x"}', "frist_name"),
    5: ('{"kind": "contact", "owner": "nobody@example.com"}', "nobody@example.com"),
    6: ('{"kind": "contact", "owner": "ann@example.com", "birthdate": "31/01/1990"}', "birthdate"),
    7: (
        '{"kind": "event", "owner": "ann@example.com", "subject": "x",'
        ' "start": "2024-01-01T10:00", "end": "2024-01-01T11:00"}',
        "no UTC offset",
    ),
    8: (
        '{"kind": "event", "owner": "ann@example.com", "subject": "x",'
        ' "start": "2024-01-02", "end": "2024-01-01"}',
        "before start",
    ),
    9: (
        '{"kind": "event", "owner": "ann@example.com", "subject": "x", "start": "2024-01-01",'
        ' "end": "2024-01-02", "related_contacts": ["con_missing"]}',
        "con_missing",
    ),
    10: ('{"kind": "user", "email": "ANN@example.com", "id": "usr_other"}', "already has"),
    11: ('{"kind": "lead", "owner": "ann@example.com", "company": 7}', "company must be a string"),
    12: ('["a list"]', "must be an object"),
    13: ('{"kind": "user", "email": "x@example.com", "time_zone": "Mars/Base"}', "time_zone"),
}


def test_bad_lines_are_reported_by_number_and_the_rest_imported(crm: BuiltinCrm) -> None:
    good = '{"kind": "user", "email": "ann@example.com"}'
    last = '{"kind": "contact", "owner": "ann@example.com", "first_name": "Kept"}'
    lines = [good] + [BAD_LINES[n][0] for n in sorted(BAD_LINES)] + [last]
    report = jsonl.import_lines(crm, lines)
    assert [e.line for e in report.errors] == sorted(BAD_LINES)
    for error in report.errors:
        assert BAD_LINES[error.line][1] in error.reason, error
    assert report.imported == 2 and report.error_count == len(BAD_LINES)
    assert [s.record.first_name for s in crm.list_contacts()] == ["Kept"]


def test_a_database_refusal_skips_only_its_line(crm: BuiltinCrm) -> None:
    if crm.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    ann = crm.create_user("ann@example.com")
    lines = [
        json.dumps({"kind": "contact", "owner": ann.email, "id": "c1", "first_name": "One"}),
        json.dumps({"kind": "contact", "owner": ann.email, "id": "x" * 80}),  # id too long
        json.dumps({"kind": "contact", "owner": ann.email, "id": "c3"}),
    ]
    report = jsonl.import_lines(crm, lines)
    assert [e.line for e in report.errors] == [2] and report.imported == 2


def test_import_of_10000_lines_is_streamed(crm: BuiltinCrm) -> None:
    ann = crm.create_user("ann@example.com")
    committed_midway: list[int] = []

    def lines() -> Iterator[str]:
        for i in range(1, 10_001):
            if i == 5_000:
                # Earlier chunks are committed before later lines are even read.
                committed_midway.append(len(crm.list_contacts(owner_id=ann.id)))
            yield json.dumps({"kind": "contact", "owner": ann.email, "first_name": f"n{i}"})

    report = jsonl.import_lines(crm, lines())
    assert report.ok and report.imported == 10_000
    assert committed_midway[0] >= 5_000 - jsonl.CHUNK_SIZE
    assert len(crm.list_contacts()) == 10_000
    assert sum(1 for _ in jsonl.export_lines(crm, ["contact"])) == 10_000


def test_import_path_reads_a_file_with_a_bom(crm: BuiltinCrm, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('\ufeff{"kind": "profile", "name": "Sales"}\n', encoding="utf-8")
    assert jsonl.import_path(crm, path).imported == 1


# ---- property: export -> import reproduces any records --------------------------------

text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
addresses = st.builds(Address, text, text, text, text, text)
contacts = st.builds(
    Contact,
    first_name=text,
    last_name=text,
    salutation=text,
    title=text,
    department=text,
    account_name=text,
    email=text,
    phone=text,
    mobile_phone=text,
    home_phone=text,
    other_phone=text,
    fax=text,
    mailing_address=addresses,
    other_address=addresses,
    birthdate=st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    description=text,
    is_person_account=st.booleans(),
)
leads = st.builds(Lead, text, text, text, text, text, text, text)
zones = st.sampled_from(
    [None, "Europe/Paris", "America/New_York", "Asia/Kolkata", "W. Europe Standard Time"]
)
instants = st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))
days = st.dates(dt.date(1970, 1, 1), dt.date(2100, 1, 1))


@st.composite
def timings(draw: st.DrawFn, all_day: bool) -> EventTiming:
    if all_day:
        start = draw(days)
        return EventTiming(start, start + dt.timedelta(days=draw(st.integers(0, 30))))
    start = draw(instants)
    return EventTiming(
        start, start + dt.timedelta(seconds=draw(st.integers(0, 10**6))), draw(zones)
    )


@st.composite
def events(draw: st.DrawFn) -> Event:
    all_day = draw(st.booleans())
    points = days if all_day else instants
    recurrence = draw(
        st.none()
        | st.builds(
            Recurrence,
            rule=st.sampled_from(["FREQ=DAILY;COUNT=5", "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=YEARLY"]),
            exdates=st.lists(points, max_size=3).map(tuple),
            overrides=st.lists(
                st.builds(Occurrence, points, timings(all_day), text, text, text), max_size=2
            ).map(tuple),
        )
    )
    return Event(
        subject=draw(text),
        timing=draw(timings(all_day)),
        location=draw(text),
        description=draw(text),
        is_private=draw(st.booleans()),
        show_as=draw(st.sampled_from(ShowAs)),
        categories=tuple(draw(st.lists(text, max_size=3))),
        attendees=tuple(
            draw(
                st.lists(
                    st.builds(Attendee, text, text, st.sampled_from(AttendeeStatus), st.booleans()),
                    max_size=3,
                )
            )
        ),
        organizer=draw(text),
        recurrence=recurrence,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(
        st.tuples(st.sampled_from(["ann", "bob"]), contacts | leads | events()), max_size=6
    )
)
def test_round_trip_of_generated_records(records: list[tuple[str, object]]) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        BuiltinCrm(f"sqlite:///{folder}/a.sqlite") as source,
        BuiltinCrm(f"sqlite:///{folder}/b.sqlite") as target,
    ):
        users = {
            "ann": source.create_user("ann@example.com", time_zone="Asia/Kolkata"),
            "bob": source.create_user("bob@example.com"),
        }
        for owner, record in records:
            add_any(source, users[owner], record)
        report = jsonl.import_lines(target, io.StringIO(export_text(source)))
        assert report.ok, report.errors
        assert snapshot(target) == snapshot(source)


def add_any(crm: BuiltinCrm, owner: User, record: object) -> None:
    if isinstance(record, Contact):
        crm.create_contact(owner.id, record)
    elif isinstance(record, Lead):
        crm.create_lead(owner.id, record)
    else:
        assert isinstance(record, Event)
        crm.create_event(owner.id, record)
