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

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from crmsync.crm.builtin import tables
from crmsync.crm.builtin.changefeed import allocate_stamps, record_owner_moves
from crmsync.crm.builtin.crm import BuiltinCrm
from crmsync.crm.builtin.jsonl_lines import (  # the line format, and jsonl's API for it
    EXPORT_ORDER,
    BadLine,
    CustomFieldLine,
    ParsedLine,
    ProfileLine,
    RecordLine,
    UserLine,
    custom_field_line,
    parse_line,
    profile_line,
    record_line,
    user_line,
)
from crmsync.crm.builtin.relations import EventRelations
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored
from crmsync.crm.builtin.writes import custom_values_of, new_id, replace_custom_values
from crmsync.domain.contact_fields import FieldType
from crmsync.domain.records import (
    Profile,
    User,
)

CHUNK_SIZE = 500


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
