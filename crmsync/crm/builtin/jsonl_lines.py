"""The JSON Lines format of the built-in CRM, one line at a time: a line's JSON object to
a record (`parse_line`, which raises `BadLine` with the reason) and back (`record_line`
and friends). The file format is described in `jsonl`, which reads and writes whole files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmsync.crm.builtin.errors import InvalidRecord
from crmsync.crm.builtin.relations import EventRelations
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored
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


class BadLine(ValueError):
    """A line that is not a valid record; the message is the reason shown to the admin."""


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
