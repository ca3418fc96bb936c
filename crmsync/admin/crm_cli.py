"""``crmsync crm``: import, export, add, edit, delete and list the built-in CRM's records.

Every command opens the CRM at ``Deployment.from_env().crm_url`` (``CRMSYNC_HOME`` /
``CRMSYNC_CRM_URL``). Failures print ``error: ...`` on stderr and exit with status 1;
an import that skipped bad lines exits with status 1 after importing the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from crmsync.crm.builtin import BuiltinCrm, CrmError, EventRelations, OwnedKind, jsonl
from crmsync.crm.builtin.jsonl import BadLine, ProfileLine, RecordLine, UserLine
from crmsync.domain.contact_fields import FieldType
from crmsync.domain.records import Event, EventTiming, Profile, User
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore

crm_app = typer.Typer(
    help="The built-in CRM: import, export and edit its users, contacts, leads and events.",
    no_args_is_help=True,
)
_err = Console(stderr=True)


class Kind(StrEnum):
    """Record kinds as the command line names them (singular or plural)."""

    contact = "contact"
    contacts = "contacts"
    lead = "lead"
    leads = "leads"
    event = "event"
    events = "events"
    user = "user"
    users = "users"
    profile = "profile"
    profiles = "profiles"

    @property
    def singular(self) -> str:
        return self.value.removesuffix("s")


# key=value values for these fields are JSON (true, [..], {..}); all others are text.
_JSON_FIELDS = {
    "is_person_account",
    "is_private",
    "active",
    "categories",
    "attendees",
    "recurrence",
    "related_contacts",
    "mailing_address",
    "other_address",
}
# An empty value clears these optional fields.
_NULLABLE_FIELDS = {"birthdate", "tzid", "profile", "related_lead"}


class CliFailure(Exception):
    """A problem the user can fix; printed as ``error: <message>``."""


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Turn the errors a command can expect into a message and exit status 1."""
    try:
        yield
    except (CliFailure, CrmError, BadLine, ValueError, TypeError, OSError) as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(1) from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        _err.print(f"[red]error:[/red] database: {reason}", highlight=False)
        raise typer.Exit(1) from exc


def open_crm() -> BuiltinCrm:
    """The deployment's built-in CRM (created on first use); `CliFailure` for an org whose
    CRM is Salesforce (its records are edited in Salesforce, not here)."""
    deployment = Deployment.from_env()
    with StateStore(deployment.state_url, deployment.secrets_key_path) as store:
        settings = store.crm_settings()
    if settings.is_salesforce:
        raise CliFailure(
            f"the org {deployment.org!r} syncs Salesforce ({settings.my_domain_url}): "
            "`crmsync crm` works on the built-in CRM only; change records in Salesforce"
        )
    return BuiltinCrm(deployment.crm_url)


def _assignments(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` arguments as line fields; ``a.b=v`` sets a nested field."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliFailure(f"expected key=value, got {pair!r}")
        top = key.split(".", 1)[0]
        value: Any = raw
        if "." not in key and key in _JSON_FIELDS:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CliFailure(f"{key} takes JSON (true, [...], {{...}}), got {raw!r}") from exc
        elif "." not in key and key in _NULLABLE_FIELDS and raw == "":
            value = None
        if "." in key:
            target = fields.setdefault(top, {})
            if not isinstance(target, dict):
                raise CliFailure(f"{top} is not an object")
            target[key.split(".", 1)[1]] = value
        else:
            fields[key] = value
    return fields


def _merge(line: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(line)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _owner_id(crm: BuiltinCrm, email: str) -> str:
    user = crm.get_user_by_email(email)
    if user is None:
        raise CliFailure(f"no user has the email {email!r}")
    return user.id


def _profile_id(crm: BuiltinCrm, name: str | None) -> str | None:
    if name is None:
        return None
    profile = crm.find_profile(name)
    if profile is None:
        raise CliFailure(f"no profile named {name!r}; add it with: crm add profile name={name!r}")
    return profile.id


def _current_line(crm: BuiltinCrm, kind: str, record_id: str) -> dict[str, Any]:
    """The record as a JSONL line, the starting point of an edit."""
    if kind == "profile":
        return jsonl.profile_line(crm.get_profile(record_id))
    if kind == "user":
        user = crm.get_user(record_id)
        profile = None if user.profile_id is None else crm.get_profile(user.profile_id).name
        return jsonl.user_line(user, profile)
    owned = OwnedKind(kind)
    stored = crm.get_record(owned, record_id)
    relations = crm.event_relations(record_id) if owned is OwnedKind.EVENT else None
    custom = crm.custom_values(record_id) if owned is OwnedKind.CONTACT else None
    owner = crm.get_user(stored.owner_id).email
    return jsonl.record_line(owned, stored, owner, relations, custom)


@crm_app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="A JSON Lines file, or - for standard input.")],
) -> None:
    """Import records from JSON Lines; bad lines are reported by number and skipped."""
    with _failures():
        crm = open_crm()
        try:
            if file == "-":
                report = jsonl.import_lines(crm, sys.stdin)
            else:
                path = Path(file)
                if not path.is_file():
                    raise CliFailure(f"no such file: {file}")
                report = jsonl.import_path(crm, path)
        finally:
            crm.close()
    for error in report.errors:
        _err.print(f"line {error.line}: {error.reason}", highlight=False, markup=False)
    if report.error_count > len(report.errors):
        _err.print(f"... and {report.error_count - len(report.errors)} more bad lines")
    typer.echo(
        f"imported {report.imported}, unchanged {report.unchanged}, bad lines {report.error_count}"
    )
    if not report.ok:
        raise typer.Exit(1)


@crm_app.command("export")
def export_command(
    kind: Annotated[
        list[Kind] | None, typer.Option("--kind", help="What to export (repeatable); default all.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Export records as JSON Lines that `import` reads back."""
    kinds = [k.singular for k in kind] if kind else list(jsonl.EXPORT_ORDER)
    with _failures():
        crm = open_crm()
        try:
            if out is None:
                count = jsonl.export_to(crm, sys.stdout, kinds)
            else:
                with open(out, "w", encoding="utf-8") as handle:
                    count = jsonl.export_to(crm, handle, kinds)
        finally:
            crm.close()
    _err.print(f"exported {count} records", highlight=False)


@crm_app.command("add")
def add_command(
    kind: Annotated[Kind, typer.Argument(help="contact, lead, event, user or profile.")],
    assignments: Annotated[list[str] | None, typer.Argument(help="Fields as key=value.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Owner's email (contacts, leads, events).")
    ] = None,
    json_fields: Annotated[
        str | None, typer.Option("--json", help="Fields as one JSON object.")
    ] = None,
) -> None:
    """Add a record and print its id. Fields are those of the JSONL format."""
    with _failures():
        fields: dict[str, Any] = {}
        if json_fields is not None:
            loaded = json.loads(json_fields)
            if not isinstance(loaded, dict):
                raise CliFailure("--json takes a JSON object")
            fields.update(loaded)
        fields.update(_assignments(assignments or []))
        line: dict[str, Any] = {**fields, "kind": kind.singular}
        if kind.singular in OwnedKind._value2member_map_:
            if owner is None:
                raise CliFailure(f"a {kind.singular} needs --owner EMAIL")
            line["owner"] = owner
        elif owner is not None:
            raise CliFailure(f"a {kind.singular} has no owner")
        parsed = jsonl.parse_line(line)
        crm = open_crm()
        try:
            new_id = _add(crm, parsed)
        finally:
            crm.close()
    typer.echo(new_id)


def _add(crm: BuiltinCrm, parsed: jsonl.ParsedLine) -> str:
    if isinstance(parsed, ProfileLine):
        return crm.create_profile(parsed.name, id=parsed.id).id
    if isinstance(parsed, UserLine):
        return crm.create_user(
            parsed.email,
            parsed.name,
            profile_id=_profile_id(crm, parsed.profile),
            time_zone=parsed.time_zone,
            active=parsed.active,
            id=parsed.id,
        ).id
    assert isinstance(parsed, RecordLine)
    stored = crm.add_record(parsed.kind, _owner_id(crm, parsed.owner), parsed.record, id=parsed.id)
    if parsed.relations is not None:
        crm.set_event_relations(stored.id, parsed.relations)
    if parsed.custom:
        crm.set_custom_values(stored.id, parsed.custom)
    return stored.id


@crm_app.command("edit")
def edit_command(
    kind: Annotated[Kind, typer.Argument(help="contact, lead, event, user or profile.")],
    record_id: Annotated[str, typer.Argument(metavar="ID")],
    assignments: Annotated[list[str], typer.Argument(help="Fields to change as key=value.")],
) -> None:
    """Change some fields of a record; ``owner=EMAIL`` reassigns a contact, lead or event."""
    with _failures():
        crm = open_crm()
        try:
            changes = _assignments(assignments)
            if "id" in changes or "kind" in changes:
                raise CliFailure("id and kind cannot be edited")
            line = _merge(_current_line(crm, kind.singular, record_id), changes)
            parsed = jsonl.parse_line(line)
            _edit(crm, parsed, record_id)
        finally:
            crm.close()
    typer.echo(record_id)


def _edit(crm: BuiltinCrm, parsed: jsonl.ParsedLine, record_id: str) -> None:
    if isinstance(parsed, ProfileLine):
        crm.update_profile(Profile(record_id, parsed.name))
    elif isinstance(parsed, UserLine):
        profile_id = _profile_id(crm, parsed.profile)
        crm.update_user(
            User(record_id, parsed.email, parsed.name, profile_id, parsed.time_zone, parsed.active)
        )
    else:
        assert isinstance(parsed, RecordLine)
        owner_id = _owner_id(crm, parsed.owner)
        crm.update_record(parsed.kind, record_id, parsed.record, owner_id=owner_id)
        if parsed.custom is not None and parsed.custom != crm.custom_values(record_id):
            crm.set_custom_values(record_id, parsed.custom)
        if isinstance(parsed.record, Event):
            relations = parsed.relations or EventRelations()
            if relations != crm.event_relations(record_id):
                crm.set_event_relations(record_id, relations)


@crm_app.command("delete")
def delete_command(
    kind: Annotated[Kind, typer.Argument(help="contact, lead, event, user or profile.")],
    record_id: Annotated[str, typer.Argument(metavar="ID")],
) -> None:
    """Delete a record (users and profiles only once nothing refers to them)."""
    with _failures():
        crm = open_crm()
        try:
            if kind.singular == "profile":
                crm.delete_profile(record_id)
            elif kind.singular == "user":
                crm.delete_user(record_id)
            else:
                crm.delete_record(OwnedKind(kind.singular), record_id)
        finally:
            crm.close()
    typer.echo(f"deleted {kind.singular} {record_id}")


@crm_app.command("list")
def list_command(
    kind: Annotated[Kind, typer.Argument(help="contacts, leads, events, users or profiles.")],
    owner: Annotated[str | None, typer.Option(help="Only records this user owns.")] = None,
) -> None:
    """Show records as a table."""
    with _failures():
        crm = open_crm()
        try:
            table = _table(crm, kind.singular, owner)
        finally:
            crm.close()
    Console().print(table)


def _table(crm: BuiltinCrm, kind: str, owner: str | None) -> Table:
    if owner is not None and kind in ("user", "profile"):
        raise CliFailure(f"{kind}s have no owner")
    if kind == "profile":
        table = _records_table("profiles", "name")
        for p in crm.list_profiles():
            table.add_row(p.id, p.name)
        return _ids_whole(table)
    users = crm.list_users()
    if kind == "user":
        profiles = {p.id: p.name for p in crm.list_profiles()}
        table = _records_table("users", "email", "name", "profile", "time zone", "active")
        for u in users:
            profile = profiles.get(u.profile_id or "", "")
            table.add_row(u.id, u.email, u.name, profile, u.time_zone, "yes" if u.active else "no")
        return _ids_whole(table)
    emails = {u.id: u.email for u in users}
    owner_id = None if owner is None else _owner_id(crm, owner)
    owned = OwnedKind(kind)
    records = crm.iter_records(owned, owner_id=owner_id)
    if owned is OwnedKind.CONTACT:
        table = _records_table("contacts", "owner", "name", "email", "account", "person account")
        for s in records:
            c = s.record
            table.add_row(
                s.id,
                emails[s.owner_id],
                c.display_name,
                c.email,
                c.account_name,
                "yes" if c.is_person_account else "",
            )
    elif owned is OwnedKind.LEAD:
        table = _records_table("leads", "owner", "name", "company", "email", "status")
        for s in records:
            ld = s.record
            name = " ".join(p for p in (ld.first_name, ld.last_name) if p)
            table.add_row(s.id, emails[s.owner_id], name, ld.company, ld.email, ld.status)
    else:
        table = _records_table("events", "owner", "subject", "start", "end", "zone", "repeats")
        for s in records:
            ev = s.record
            start, end, zone = _local_times(ev.timing)
            table.add_row(
                s.id,
                emails[s.owner_id],
                ev.subject,
                start,
                end,
                zone,
                ev.recurrence.rule if ev.recurrence else "",
            )
    return _ids_whole(table)


def _records_table(title: str, *columns: str) -> Table:
    """A table whose first column is the record's id: never wrapped nor cut, so it can be
    copied into `crmsync crm edit`; the other columns wrap (fold) rather than lose text."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _ids_whole(table: Table) -> Table:
    ids = table.columns[0]
    ids.min_width = max((len(str(cell)) for cell in ids.cells), default=2)
    return table


def _local_times(timing: EventTiming) -> tuple[str, str, str]:
    """Start, end and zone as a person reads them: a timed event's wall-clock times in its
    own zone (the end in the end's zone), an all-day event's dates (the end exclusive, as
    stored and as `crm edit` takes it)."""
    if timing.all_day:
        return timing.start.isoformat(), timing.end.isoformat(), "all day"
    start_zone = timing.tzid or "UTC"
    end_zone = timing.end_zone or "UTC"
    start = _wall_clock(timing.start, start_zone)
    end = _wall_clock(timing.end, end_zone)
    zone = start_zone if end_zone == start_zone else f"{start_zone} → {end_zone}"
    return start, end, zone


def _wall_clock(instant: dt.date, zone: str) -> str:
    assert isinstance(instant, dt.datetime)
    try:
        local = instant.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = instant.astimezone(dt.UTC)  # an unknown zone name: say UTC rather than guess
        return local.strftime("%Y-%m-%d %H:%M UTC")
    return local.strftime("%Y-%m-%d %H:%M")


fields_app = typer.Typer(help="Custom contact fields.", no_args_is_help=True)
crm_app.add_typer(fields_app, name="field")


@fields_app.command("add")
def field_add(
    name: str,
    field_type: Annotated[FieldType, typer.Argument(metavar="TYPE")] = FieldType.TEXT,
) -> None:
    """Define (or retype) a custom contact field: text, phone, email or date."""
    with _failures():
        crm = open_crm()
        try:
            crm.define_custom_field(name, field_type)
        finally:
            crm.close()
    typer.echo(f"custom:{name} ({field_type.value})")


@fields_app.command("list")
def field_list() -> None:
    """The custom contact fields and their types."""
    with _failures():
        crm = open_crm()
        try:
            for name, field_type in sorted(crm.custom_field_types().items()):
                typer.echo(f"custom:{name}\t{field_type.value}")
        finally:
            crm.close()
