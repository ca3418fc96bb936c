"""JSON Lines import and export for the built-in CRM.

One JSON object per line; ``kind`` says what it is and owned records name their owner by
email. Omitted fields take the record's defaults, unknown fields are refused::

    {"kind": "profile", "name": "Sales"}
    {"kind": "custom_field", "name": "direct_line", "type": "phone"}
    {"kind": "user", "email": "ann@example.com", "name": "Ann", "profile": "Sales",
     "time_zone": "Europe/Paris", "active": true}
    {"kind": "contact", "owner": "ann@example.com", "first_name": "Bo",
     "mailing_address": {"street": "1 Main St", "city": "Paris"}, "birthdate": "1980-02-29",
     "custom": {"direct_line": "+33 1 23 45 67 89"}}
    {"kind": "lead", "owner": "ann@example.com", "company": "Acme", "status": "Open"}
    {"kind": "event", "owner": "ann@example.com", "subject": "Review",
     "start": "2024-05-02T09:00:00+02:00", "end": "2024-05-02T10:00:00+02:00",
     "tzid": "Europe/Paris", "attendees": [{"email": "bo@example.com", "status": "accepted"}],
     "recurrence": {"rule": "FREQ=WEEKLY;COUNT=5", "exdates": ["2024-05-09T09:00:00+02:00"],
                    "overrides": [{"recurrence_id": "2024-05-16T09:00:00+02:00",
                                   "start": "2024-05-16T11:00:00+02:00",
                                   "end": "2024-05-16T12:00:00+02:00", "subject": "Moved"}]},
     "related_contacts": ["con_..."], "related_lead": "lea_..."}

A ``recurrence.rdates`` entry may be an ISO 8601 interval, ``start/end``: an extra
instance with its own end. An attendee's ``status`` is one of needs_action, accepted,
declined, tentative, delegated; ``delegated_to`` / ``delegated_from`` list the emails an
invitation was passed to or from.

Event times: an ISO datetime with an offset is an instant; one without an offset is read in
``tzid`` (which must then be a known IANA zone), an ``end`` in ``end_tzid`` when the event
ends in another zone than it starts; plain dates make an all-day event (``end``
exclusive, no ``tzid``). Export writes datetimes in ``tzid``'s local time with its offset.

Idempotence: a line with an ``id`` creates or replaces that record, so importing a file
twice changes nothing the second time. Without an ``id``, users are matched by email and
profiles by name; contacts, leads and events are always added. Relations name records by id
and must refer to records created earlier in the file (export writes them in that order).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from crmsync.crm.builtin import tables
from crmsync.crm.builtin.changefeed import allocate_stamps, record_owner_moves
from crmsync.crm.builtin.crm import BuiltinCrm, EventRelations
from crmsync.crm.builtin.errors import InvalidRecord
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored
from crmsync.crm.builtin.writes import custom_values_of, new_id, replace_custom_values
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
    Profile,
    Recurrence,
    ShowAs,
    User,
)

# The order export writes kinds in, so that every line refers only to earlier ones.
EXPORT_ORDER = ("profile", "custom_field", "user", "contact", "lead", "event")
CHUNK_SIZE = 500


class BadLine(ValueError):
    """A line that is not a valid record; the message is the reason shown to the admin."""


@dataclass(frozen=True)
class LineError:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did. ``errors`` keeps the first ``max_errors`` bad lines in order;
    ``error_count`` counts them all."""

    imported: int = 0
    unchanged: int = 0
    error_count: int = 0
    errors: list[LineError] = field(default_factory=list)
    max_errors: int = 1000

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(LineError(line, reason))


# ---- parsed lines ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLine:
    number: int
    id: str | None
    name: str


@dataclass(frozen=True)
class CustomFieldLine:
    number: int
    name: str
    type: FieldType


@dataclass(frozen=True)
class UserLine:
    number: int
    id: str | None
    email: str
    name: str
    profile: str | None
    time_zone: str
    active: bool


@dataclass(frozen=True)
class RecordLine:
    """A contact, lead or event line. ``relations`` is ``None`` when the line leaves an
    event's relations as they are."""

    number: int
    kind: OwnedKind
    id: str | None
    owner: str
    record: Contact | Lead | Event
    row: dict[str, Any]
    relations: EventRelations | None = None
    # A contact's custom field values; ``None`` leaves the stored ones as they are.
    custom: dict[str, str] | None = None


ParsedLine = ProfileLine | CustomFieldLine | UserLine | RecordLine


# ---- value parsing --------------------------------------------------------------------


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadLine(f"{what} must be a string, not {json.dumps(value)}")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; refuse it everywhere so both databases agree.
        raise BadLine(f"{what} contains a NUL character")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadLine(f"{what} must be true or false, not {json.dumps(value)}")
    return value


def _date(value: Any, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(_str(value, what))
    except ValueError as exc:
        raise BadLine(f"{what} is not an ISO date (YYYY-MM-DD): {value!r}") from exc


@functools.lru_cache(maxsize=256)
def _zone(tzid: str | None) -> ZoneInfo | None:
    """The IANA zone named ``tzid``, or ``None`` when there is none by that name."""
    if not tzid:
        return None
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _instant(value: Any, tzid: str | None, what: str) -> dt.datetime | dt.date:
    text = _str(value, what)
    if len(text) == 10:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadLine(f"{what} is not an ISO date or datetime: {text!r}") from exc
    if when.tzinfo is None:
        zone = _zone(tzid)
        if zone is None:
            raise BadLine(f"{what} {text!r} has no UTC offset and no known tzid to read it in")
        when = when.replace(tzinfo=zone)
    return when.astimezone(dt.UTC)


def _instant_text(value: dt.datetime | dt.date, tzid: str | None) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(_zone(tzid) or dt.UTC).isoformat()
    return value.isoformat()


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadLine(f"{what} must be an object, not {json.dumps(value)}")
    return dict(value)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadLine(f"{what} must be a list, not {json.dumps(value)}")
    return value


def _no_leftovers(fields: Mapping[str, Any], what: str) -> None:
    if fields:
        raise BadLine(f"unknown field(s) in {what}: {', '.join(sorted(fields))}")


def _address(value: Any, what: str) -> Address:
    fields = _object(value, what)
    kwargs = {
        f.name: _str(fields.pop(f.name), f"{what}.{f.name}")
        for f in dataclasses.fields(Address)
        if f.name in fields
    }
    _no_leftovers(fields, what)
    return Address(**kwargs)


_CONTACT_STRINGS = tuple(f.name for f in dataclasses.fields(Contact) if f.type == "str")
_LEAD_STRINGS = tuple(f.name for f in dataclasses.fields(Lead))


def _contact(fields: dict[str, Any]) -> Contact:
    kwargs: dict[str, Any] = {n: _str(fields.pop(n), n) for n in _CONTACT_STRINGS if n in fields}
    for name in ("mailing_address", "other_address"):
        if name in fields:
            kwargs[name] = _address(fields.pop(name), name)
    if "birthdate" in fields:
        value = fields.pop("birthdate")
        kwargs["birthdate"] = None if value is None else _date(value, "birthdate")
    if "is_person_account" in fields:
        kwargs["is_person_account"] = _bool(fields.pop("is_person_account"), "is_person_account")
    return Contact(**kwargs)


def _lead(fields: dict[str, Any]) -> Lead:
    return Lead(**{n: _str(fields.pop(n), n) for n in _LEAD_STRINGS if n in fields})


def _required(fields: dict[str, Any], name: str, what: str = "") -> Any:
    if name not in fields:
        raise BadLine(f"{what + '.' if what else ''}{name} is required")
    return fields.pop(name)


def _timing(fields: dict[str, Any], what: str) -> EventTiming:
    tzid = _opt_str(fields.pop("tzid", None), f"{what}tzid") or None
    # An end in another zone than the start (a flight) is read in that zone.
    end_tzid = _opt_str(fields.pop("end_tzid", None), f"{what}end_tzid") or None
    start = _instant(_required(fields, "start"), tzid, f"{what}start")
    end = _instant(_required(fields, "end"), end_tzid or tzid, f"{what}end")
    if not isinstance(start, dt.datetime) and (tzid or end_tzid) is not None:
        raise BadLine(f"{what}tzid is given but start is a date (all-day events have no tzid)")
    return EventTiming(start, end, tzid, end_tzid)


def _attendee(value: Any, what: str) -> Attendee:
    fields = _object(value, what)
    status = _str(fields.pop("status", AttendeeStatus.NEEDS_ACTION.value), f"{what}.status")
    if status not in AttendeeStatus._value2member_map_:
        raise BadLine(f"{what}.status must be one of {', '.join(AttendeeStatus)}, not {status!r}")
    attendee = Attendee(
        email=_str(_required(fields, "email", what), f"{what}.email"),
        name=_str(fields.pop("name", ""), f"{what}.name"),
        status=AttendeeStatus(status),
        required=_bool(fields.pop("required", True), f"{what}.required"),
        **{
            name: tuple(
                _str(v, f"{what}.{name}[{i}]")
                for i, v in enumerate(_list(fields.pop(name, []), f"{what}.{name}"))
            )
            for name in ("delegated_to", "delegated_from")
        },
    )
    _no_leftovers(fields, what)
    return attendee


def _recurrence(value: Any, tzid: str | None) -> Recurrence:
    fields = _object(value, "recurrence")
    rule = _str(fields.pop("rule", ""), "recurrence.rule")
    exdates = tuple(
        _instant(v, tzid, f"recurrence.exdates[{i}]")
        for i, v in enumerate(_list(fields.pop("exdates", []), "recurrence.exdates"))
    )
    rdates: list[dt.datetime | dt.date] = []
    periods: list[tuple[dt.datetime, dt.datetime]] = []
    for i, v in enumerate(_list(fields.pop("rdates", []), "recurrence.rdates")):
        # "start/end" (an ISO 8601 interval) is an extra instance with its own end.
        what = f"recurrence.rdates[{i}]"
        start, *end = (_instant(part, tzid, what) for part in _str(v, what).split("/", 1))
        rdates.append(start)
        if end:
            if not isinstance(start, dt.datetime) or not isinstance(end[0], dt.datetime):
                raise BadLine(f"{what} is a period, so both its ends are datetimes")
            periods.append((start, end[0]))
    overrides = []
    for i, raw in enumerate(_list(fields.pop("overrides", []), "recurrence.overrides")):
        what = f"recurrence.overrides[{i}]"
        o = _object(raw, what)
        recurrence_id = _instant(_required(o, "recurrence_id", what), tzid, f"{what}.recurrence_id")
        o.setdefault("tzid", tzid)
        timing = _timing(o, f"{what}.")
        overrides.append(
            Occurrence(
                recurrence_id=recurrence_id,
                timing=timing,
                subject=_str(o.pop("subject", ""), f"{what}.subject"),
                location=_str(o.pop("location", ""), f"{what}.location"),
                description=_str(o.pop("description", ""), f"{what}.description"),
            )
        )
        _no_leftovers(o, what)
    _no_leftovers(fields, "recurrence")
    return Recurrence(rule, exdates, tuple(overrides), tuple(rdates), tuple(periods))


def _event(fields: dict[str, Any]) -> tuple[Event, EventRelations | None]:
    subject = _str(_required(fields, "subject"), "subject")
    tzid_before = fields.get("tzid")
    timing = _timing(fields, "")
    show_as = _str(fields.pop("show_as", ShowAs.BUSY.value), "show_as")
    if show_as not in ShowAs._value2member_map_:
        raise BadLine(f"show_as must be one of {', '.join(ShowAs)}, not {show_as!r}")
    recurrence = fields.pop("recurrence", None)
    ev = Event(
        subject=subject,
        timing=timing,
        location=_str(fields.pop("location", ""), "location"),
        description=_str(fields.pop("description", ""), "description"),
        is_private=_bool(fields.pop("is_private", False), "is_private"),
        show_as=ShowAs(show_as),
        categories=tuple(
            _str(c, f"categories[{i}]")
            for i, c in enumerate(_list(fields.pop("categories", []), "categories"))
        ),
        attendees=tuple(
            _attendee(a, f"attendees[{i}]")
            for i, a in enumerate(_list(fields.pop("attendees", []), "attendees"))
        ),
        organizer=_str(fields.pop("organizer", ""), "organizer"),
        recurrence=None if recurrence is None else _recurrence(recurrence, tzid_before),
    )
    relations = None
    if "related_contacts" in fields or "related_lead" in fields:
        contact_ids = tuple(
            _str(c, f"related_contacts[{i}]")
            for i, c in enumerate(_list(fields.pop("related_contacts", []), "related_contacts"))
        )
        relations = EventRelations(
            tuple(dict.fromkeys(contact_ids)),
            _opt_str(fields.pop("related_lead", None), "related_lead"),
        )
    return ev, relations


def parse_line(obj: Any, number: int = 0) -> ParsedLine:
    """Validate one decoded line; raises `BadLine` with the reason."""
    fields = _object(obj, "a line")
    kind = _str(_required(fields, "kind"), "kind")
    record_id = _opt_str(fields.pop("id", None), "id") or None
    parsed: ParsedLine
    if kind == "profile":
        parsed = ProfileLine(number, record_id, _str(_required(fields, "name"), "name"))
    elif kind == "custom_field":
        type_name = _str(_required(fields, "type"), "type")
        try:
            field_type = FieldType(type_name)
        except ValueError:
            raise BadLine(f"type must be text, phone, email or date, not {type_name!r}") from None
        parsed = CustomFieldLine(number, _str(_required(fields, "name"), "name"), field_type)
    elif kind == "user":
        email = _str(_required(fields, "email"), "email")
        if "@" not in email:
            raise BadLine(f"email {email!r} is not an email address")
        time_zone = _str(fields.pop("time_zone", "UTC"), "time_zone")
        if _zone(time_zone) is None:
            raise BadLine(f"time_zone {time_zone!r} is not a known IANA time zone")
        parsed = UserLine(
            number,
            record_id,
            email,
            _str(fields.pop("name", ""), "name"),
            _opt_str(fields.pop("profile", None), "profile") or None,
            time_zone,
            _bool(fields.pop("active", True), "active"),
        )
    elif kind in OwnedKind._value2member_map_:
        owned = OwnedKind(kind)
        owner = _str(_required(fields, "owner"), "owner")
        relations = None
        custom = None
        record: Contact | Lead | Event
        if owned is OwnedKind.CONTACT:
            record = _contact(fields)
            if "custom" in fields:
                values = _object(fields.pop("custom"), "custom")
                custom = {str(k): _str(v, f"custom.{k}") for k, v in values.items()}
        elif owned is OwnedKind.LEAD:
            record = _lead(fields)
        else:
            record, relations = _event(fields)
        try:
            row = CODECS[owned].to_row(record)
        except InvalidRecord as exc:
            raise BadLine(str(exc)) from exc
        parsed = RecordLine(number, owned, record_id, owner, record, row, relations, custom)
    else:
        raise BadLine(f"kind must be one of {', '.join(EXPORT_ORDER)}, not {kind!r}")
    _no_leftovers(fields, kind)
    return parsed


# ---- records to lines -----------------------------------------------------------------


def profile_line(profile: Profile) -> dict[str, Any]:
    return {"kind": "profile", "id": profile.id, "name": profile.name}


def custom_field_line(name: str, field_type: FieldType) -> dict[str, Any]:
    return {"kind": "custom_field", "name": name, "type": field_type.value}


def user_line(user: User, profile_name: str | None) -> dict[str, Any]:
    return {
        "kind": "user",
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "profile": profile_name,
        "time_zone": user.time_zone,
        "active": user.active,
    }


def record_line(
    kind: OwnedKind,
    stored: Stored[Any],
    owner_email: str,
    relations: EventRelations | None = None,
    custom: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The line `parse_line` reads back into the same record (relations, custom values)."""
    line: dict[str, Any] = {"kind": kind.value, "id": stored.id, "owner": owner_email}
    record = stored.record
    if isinstance(record, Event):
        line.update(_event_fields(record))
        if relations is not None and (relations.contact_ids or relations.lead_id):
            line["related_contacts"] = list(relations.contact_ids)
            line["related_lead"] = relations.lead_id
    else:
        for f in dataclasses.fields(record):
            value = getattr(record, f.name)
            if isinstance(value, Address):
                value = dataclasses.asdict(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            line[f.name] = value
        if custom:
            line["custom"] = dict(sorted(custom.items()))
    return line


def _rdate_text(value: dt.datetime | dt.date, rec: Recurrence, tzid: str | None) -> str:
    ends = dict(rec.rdate_periods)
    text = _instant_text(value, tzid)
    return text + (f"/{_instant_text(ends[value], tzid)}" if value in ends else "")


def _attendee_fields(a: Attendee) -> dict[str, Any]:
    fields = {"email": a.email, "name": a.name, "status": a.status.value, "required": a.required}
    # Only delegations that happened: most lines never carry them.
    for name in ("delegated_to", "delegated_from"):
        if getattr(a, name):
            fields[name] = list(getattr(a, name))
    return fields


def _event_fields(ev: Event) -> dict[str, Any]:
    tzid = ev.timing.tzid
    fields: dict[str, Any] = {
        "subject": ev.subject,
        "start": _instant_text(ev.timing.start, tzid),
        "end": _instant_text(ev.timing.end, ev.timing.end_zone),
        "tzid": tzid,
        **({"end_tzid": ev.timing.end_tzid} if ev.timing.end_tzid else {}),
        "location": ev.location,
        "description": ev.description,
        "is_private": ev.is_private,
        "show_as": ev.show_as.value,
        "categories": list(ev.categories),
        "attendees": [_attendee_fields(a) for a in ev.attendees],
        "organizer": ev.organizer,
    }
    if ev.recurrence is not None:
        rec = ev.recurrence
        fields["recurrence"] = {
            **({"rdates": [_rdate_text(d, rec, tzid) for d in rec.rdates]} if rec.rdates else {}),
            "rule": rec.rule,
            "exdates": [_instant_text(d, tzid) for d in rec.exdates],
            "overrides": [
                {
                    "recurrence_id": _instant_text(o.recurrence_id, tzid),
                    "start": _instant_text(o.timing.start, o.timing.tzid),
                    "end": _instant_text(o.timing.end, o.timing.end_zone),
                    "tzid": o.timing.tzid,
                    **({"end_tzid": o.timing.end_tzid} if o.timing.end_tzid else {}),
                    "subject": o.subject,
                    "location": o.location,
                    "description": o.description,
                }
                for o in rec.overrides
            ],
        }
    return fields


# ---- export ---------------------------------------------------------------------------


def export_lines(crm: BuiltinCrm, kinds: Iterable[str] = EXPORT_ORDER) -> Iterator[str]:
    """Every record of ``kinds`` (written in `EXPORT_ORDER`) as JSON text, one per line,
    streamed from the database ``CHUNK_SIZE`` rows at a time."""
    wanted = set(kinds)
    unknown = wanted - set(EXPORT_ORDER)
    if unknown:
        raise ValueError(f"unknown kind(s): {', '.join(sorted(unknown))}")
    for kind in EXPORT_ORDER:
        if kind in wanted:
            for line in _export_kind(crm, kind):
                yield json.dumps(line, ensure_ascii=False)


def _export_kind(crm: BuiltinCrm, kind: str) -> Iterator[dict[str, Any]]:
    p, u = tables.profiles, tables.users
    with crm.reading() as conn:
        conn.execution_options(yield_per=CHUNK_SIZE)
        if kind == "profile":
            for row in conn.execute(select(p).order_by(p.c.name)):
                yield profile_line(Profile(row.id, row.name))
            return
        if kind == "custom_field":
            cf = tables.custom_fields
            for row in conn.execute(select(cf).order_by(cf.c.name)):
                yield custom_field_line(row.name, FieldType(row.type))
            return
        if kind == "user":
            query = (
                select(u, p.c.name.label("profile_name"))
                .select_from(u.outerjoin(p, p.c.id == u.c.profile_id))
                .order_by(u.c.email)
            )
            for row in conn.execute(query):
                user = User(row.id, row.email, row.name, row.profile_id, row.time_zone, row.active)
                yield user_line(user, row.profile_name)
            return
        owned = OwnedKind(kind)
        codec = CODECS[owned]
        query = (
            select(codec.table, u.c.email.label("owner_email"))
            .select_from(codec.table.join(u, u.c.id == codec.table.c.owner_id))
            .order_by(codec.table.c.stamp)
        )
        for batch in conn.execute(query).partitions(CHUNK_SIZE):
            relations = {}
            customs: dict[str, dict[str, str]] = {}
            ids = [row.id for row in batch]
            if owned is OwnedKind.EVENT:
                relations = BuiltinCrm.relations_of(conn, ids)
            elif owned is OwnedKind.CONTACT:
                customs = custom_values_of(conn, ids)
            for row in batch:
                stored = Stored(row.id, row.owner_id, str(row.stamp), codec.from_row(row._mapping))
                yield record_line(
                    owned, stored, row.owner_email, relations.get(row.id), customs.get(row.id)
                )


def export_to(crm: BuiltinCrm, out: TextIO, kinds: Iterable[str] = EXPORT_ORDER) -> int:
    """Write `export_lines` to ``out``; returns the number of lines written."""
    count = 0
    for text in export_lines(crm, kinds):
        out.write(text + "\n")
        count += 1
    return count


# ---- import ---------------------------------------------------------------------------


def import_path(crm: BuiltinCrm, path: Path | str, **options: Any) -> ImportReport:
    """`import_lines` over a UTF-8 file (a leading BOM is ignored)."""
    with open(path, encoding="utf-8-sig") as lines:
        return import_lines(crm, lines, **options)


def import_lines(
    crm: BuiltinCrm, lines: Iterable[str], *, chunk_size: int = CHUNK_SIZE, max_errors: int = 1000
) -> ImportReport:
    """Import JSON Lines read one at a time from ``lines``.

    Memory stays bounded by ``chunk_size``: each chunk of valid lines is written and
    committed in one transaction before more input is read. Bad lines (invalid JSON or
    content, an unknown owner, a missing related record, a clash with stored data) are
    reported by line number and skipped; the rest is imported. Blank lines are ignored.
    """
    report = ImportReport(max_errors=max_errors)
    chunk: list[ParsedLine] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            chunk.append(parse_line(json.loads(text), number))
        except json.JSONDecodeError as exc:
            report.add_error(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
        except BadLine as exc:
            report.add_error(number, str(exc))
        if len(chunk) >= chunk_size:
            _flush(crm, chunk, report)
            chunk = []
    _flush(crm, chunk, report)
    report.errors.sort(key=lambda e: e.line)
    return report


@dataclass
class _Outcome:
    imported: int = 0
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)

    def bad(self, line: int, reason: str) -> None:
        self.errors.append(LineError(line, reason))


def _flush(crm: BuiltinCrm, chunk: list[ParsedLine], report: ImportReport) -> None:
    if not chunk:
        return
    try:
        with crm.writing() as conn:
            outcome = _write_chunk(conn, chunk)
    except SQLAlchemyError:
        # Something only the database caught (a race with another writer, a constraint we
        # do not pre-check): redo the lines one per transaction to find and skip the culprit.
        outcome = _Outcome()
        for line in chunk:
            try:
                with crm.writing() as conn:
                    one = _write_chunk(conn, [line])
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                outcome.bad(line.number, f"the database refused it: {reason}")
            else:
                outcome.imported += one.imported
                outcome.unchanged += one.unchanged
                outcome.errors += one.errors
    report.imported += outcome.imported
    report.unchanged += outcome.unchanged
    for error in outcome.errors:
        report.add_error(error.line, error.reason)


class _Stamps:
    """Hands out a block of stamps allocated in one counter bump at the chunk's start."""

    def __init__(self, conn: Connection, count: int) -> None:
        self._next = allocate_stamps(conn, count) - count + 1

    def take(self) -> int:
        stamp = self._next
        self._next += 1
        return stamp


def _write_chunk(conn: Connection, chunk: list[ParsedLine]) -> _Outcome:
    outcome = _Outcome()
    stamps = _Stamps(conn, len(chunk))
    for line in chunk:
        if isinstance(line, ProfileLine):
            _write_profile(conn, line, stamps, outcome)
    for line in chunk:
        if isinstance(line, CustomFieldLine):
            _write_custom_field(conn, line, outcome)
    for line in chunk:
        if isinstance(line, UserLine):
            _write_user(conn, line, stamps, outcome)
    records = [line for line in chunk if isinstance(line, RecordLine)]
    if records:
        owners = _owner_ids(conn, {line.owner.lower() for line in records})
        for kind in OwnedKind:
            _write_records(
                conn, kind, [r for r in records if r.kind is kind], owners, stamps, outcome
            )
    return outcome


def _write_profile(conn: Connection, line: ProfileLine, stamps: _Stamps, out: _Outcome) -> None:
    p = tables.profiles
    key = p.c.id == line.id if line.id else p.c.name == line.name
    existing = conn.execute(select(p).where(key)).first()
    clash = conn.execute(
        select(p.c.id).where(p.c.name == line.name, p.c.id != (existing.id if existing else ""))
    ).first()
    if clash is not None:
        out.bad(line.number, f"another profile is named {line.name!r}")
    elif existing is None:
        conn.execute(
            insert(p).values(id=line.id or new_id("prf"), name=line.name, stamp=stamps.take())
        )
        out.imported += 1
    elif existing.name == line.name:
        out.unchanged += 1
    else:
        conn.execute(
            update(p).where(p.c.id == existing.id).values(name=line.name, stamp=stamps.take())
        )
        out.imported += 1


def _write_custom_field(conn: Connection, line: CustomFieldLine, out: _Outcome) -> None:
    cf = tables.custom_fields
    current = conn.execute(select(cf.c.type).where(cf.c.name == line.name)).scalar()
    if current == line.type.value:
        out.unchanged += 1
        return
    if current is None:
        conn.execute(insert(cf).values(name=line.name, type=line.type.value))
    else:
        conn.execute(update(cf).where(cf.c.name == line.name).values(type=line.type.value))
    out.imported += 1


def _profile_id(conn: Connection, name: str, stamps: _Stamps) -> str:
    """The id of the profile named ``name``, created if there is none."""
    p = tables.profiles
    found = conn.execute(select(p.c.id).where(p.c.name == name)).scalar()
    if found is None:
        found = new_id("prf")
        conn.execute(insert(p).values(id=found, name=name, stamp=stamps.take()))
    return found


def _write_user(conn: Connection, line: UserLine, stamps: _Stamps, out: _Outcome) -> None:
    u = tables.users
    by_email = conn.execute(select(u).where(func.lower(u.c.email) == line.email.lower())).first()
    if line.id:
        existing = conn.execute(select(u).where(u.c.id == line.id)).first()
        if by_email is not None and by_email.id != line.id:
            out.bad(line.number, f"user {by_email.id} already has the email {line.email!r}")
            return
    else:
        existing = by_email
    values = {
        "email": line.email,
        "name": line.name,
        "profile_id": None if line.profile is None else _profile_id(conn, line.profile, stamps),
        "time_zone": line.time_zone,
        "active": line.active,
    }
    if existing is None:
        user_id = line.id or new_id("usr")
        conn.execute(insert(u).values(id=user_id, **values, stamp=stamps.take()))
        out.imported += 1
    elif all(getattr(existing, k) == v for k, v in values.items()):
        out.unchanged += 1
    else:
        conn.execute(update(u).where(u.c.id == existing.id).values(**values, stamp=stamps.take()))
        out.imported += 1


def _owner_ids(conn: Connection, emails: set[str]) -> dict[str, str]:
    u = tables.users
    rows = conn.execute(select(u.c.id, u.c.email).where(func.lower(u.c.email).in_(sorted(emails))))
    return {row.email.lower(): row.id for row in rows}


def _write_records(
    conn: Connection,
    kind: OwnedKind,
    lines: list[RecordLine],
    owners: dict[str, str],
    stamps: _Stamps,
    out: _Outcome,
) -> None:
    if not lines:
        return
    table = CODECS[kind].table
    if kind is OwnedKind.EVENT:
        lines = _check_relations(conn, lines, out)
    given = sorted({line.id for line in lines if line.id})
    existing = {}
    if given:
        existing = {
            row.id: row._mapping for row in conn.execute(select(table).where(table.c.id.in_(given)))
        }
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    moves: list[tuple[str, str, str]] = []
    relations: dict[str, EventRelations] = {}
    customs: dict[str, dict[str, str]] = {}
    customs_now = custom_values_of(conn, given) if kind is OwnedKind.CONTACT else {}
    defined = set(conn.execute(select(tables.custom_fields.c.name)).scalars())
    for line in lines:
        owner_id = owners.get(line.owner.lower())
        if owner_id is None:
            out.bad(line.number, f"no user has the email {line.owner!r} (owner)")
            continue
        undefined = sorted(set(line.custom or ()) - defined)
        if undefined:
            out.bad(line.number, f"custom field(s) not defined: {', '.join(undefined)}")
            continue
        record_id = line.id or new_id(CODECS[kind].id_prefix)
        same_custom = line.custom is None or {
            k: v for k, v in line.custom.items() if v
        } == customs_now.get(record_id, {})
        if line.custom is not None:
            customs[record_id] = line.custom
        if line.relations is not None:
            relations[record_id] = line.relations
        current = existing.get(record_id)
        if record_id in inserts or current is None:
            # A repeated id in one chunk: the later line wins, as it would across chunks.
            inserts[record_id] = {
                **line.row,
                "id": record_id,
                "owner_id": owner_id,
                "stamp": stamps.take(),
            }
            out.imported += 1
        elif (
            current["owner_id"] == owner_id
            and same_custom
            and all(current[k] == v for k, v in line.row.items())
        ):
            out.unchanged += 1
        else:
            updates[record_id] = {
                **line.row,
                "b_id": record_id,
                "owner_id": owner_id,
                "stamp": stamps.take(),
            }
            if current["owner_id"] != owner_id:
                moves.append((record_id, current["owner_id"], owner_id))
            out.imported += 1
    if inserts:
        conn.execute(insert(table), list(inserts.values()))
    if updates:
        conn.execute(update(table).where(table.c.id == bindparam("b_id")), list(updates.values()))
    for record_id, old, new in moves:
        record_owner_moves(conn, kind.value, [(record_id, old, new)], updates[record_id]["stamp"])
    if relations:
        _write_relations(conn, relations)
    written = inserts.keys() | updates.keys()
    for record_id, values in customs.items():
        if record_id in written:
            cv = tables.contact_custom_values
            conn.execute(delete(cv).where(cv.c.contact_id == record_id))
            replace_custom_values(conn, record_id, values)


def _check_relations(conn: Connection, lines: list[RecordLine], out: _Outcome) -> list[RecordLine]:
    """The event lines whose related contacts and lead all exist; the others are bad."""
    contact_ids = {c for line in lines if line.relations for c in line.relations.contact_ids}
    lead_ids = {
        line.relations.lead_id for line in lines if line.relations and line.relations.lead_id
    }
    found_contacts = _existing(conn, OwnedKind.CONTACT, contact_ids)
    found_leads = _existing(conn, OwnedKind.LEAD, lead_ids)
    good = []
    for line in lines:
        rel = line.relations
        if rel is not None:
            missing = [c for c in rel.contact_ids if c not in found_contacts]
            if rel.lead_id is not None and rel.lead_id not in found_leads:
                missing.append(rel.lead_id)
            if missing:
                out.bad(line.number, f"related record(s) not found: {', '.join(missing)}")
                continue
        good.append(line)
    return good


def _existing(conn: Connection, kind: OwnedKind, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    table = CODECS[kind].table
    return set(conn.execute(select(table.c.id).where(table.c.id.in_(sorted(ids)))).scalars())


def _write_relations(conn: Connection, relations: dict[str, EventRelations]) -> None:
    """Replace the relations of these events with the given ones."""
    rel = tables.event_relations
    conn.execute(delete(rel).where(rel.c.event_id.in_(sorted(relations))))
    rows = [
        {"event_id": eid, "contact_id": cid, "lead_id": None}
        for eid, r in relations.items()
        for cid in r.contact_ids
    ] + [
        {"event_id": eid, "contact_id": None, "lead_id": r.lead_id}
        for eid, r in relations.items()
        if r.lead_id is not None
    ]
    if rows:
        conn.execute(insert(rel), rows)
