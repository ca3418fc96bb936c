"""Domain records to table rows and back, one codec per owned kind.

``to_row`` validates what the database cannot (aware instants, end not before start) and
raises `InvalidRecord`; ``from_row`` raises `ValueError`/`TypeError`/`KeyError` when a row
was edited by hand into something that is not a record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Table

from crmsync.crm.builtin import tables
from crmsync.crm.builtin.errors import InvalidRecord
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
    shared_address,
    shared_text,
    to_plain,
)

Row = Mapping[str, Any]
OwnedRecord = Contact | Lead | Event
R = TypeVar("R", Contact, Lead, Event)


class OwnedKind(StrEnum):
    """The record kinds a user owns; the values name them in tombstones, markers and JSONL."""

    CONTACT = "contact"
    LEAD = "lead"
    EVENT = "event"


@dataclass(frozen=True)
class Stored(Generic[R]):
    """An owned record as stored: its id, owner, version (the stamp as text) and content."""

    id: str
    owner_id: str
    version: str
    record: R


# ---- instants -------------------------------------------------------------------------


def utc_instant(value: dt.datetime, what: str) -> dt.datetime:
    """``value`` as an aware UTC datetime; naive values are refused, not guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(f"{what} is a naive datetime; give it a time zone")
    return value.astimezone(dt.UTC)


def instant_to_text(value: dt.datetime | dt.date) -> str:
    """A date as ``YYYY-MM-DD``, a datetime as UTC ISO text (so it always contains ``T``)."""
    if isinstance(value, dt.datetime):
        return utc_instant(value, "an instant").isoformat()
    return value.isoformat()


def instant_from_text(text: str) -> dt.datetime | dt.date:
    """Inverse of `instant_to_text`."""
    if "T" in text:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            raise ValueError(f"stored instant {text!r} has no offset")
        return value.astimezone(dt.UTC)
    return dt.date.fromisoformat(text)


def _period_from_text(text: str) -> tuple[dt.datetime, dt.datetime]:
    """Inverse of the ``start/end`` interval `event_to_row` writes for an RDATE period."""
    start, end = (instant_from_text(part) for part in text.split("/"))
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        raise ValueError(f"stored period {text!r} is not between two instants")
    return start, end


def _check_timing(timing: EventTiming, what: str) -> EventTiming:
    """The timing with instants in UTC; refuses mixed, naive or backwards timings."""
    start, end = timing.start, timing.end
    if isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
        raise InvalidRecord(f"{what}: start and end must both be datetimes or both dates")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        start, end = utc_instant(start, f"{what} start"), utc_instant(end, f"{what} end")
    elif timing.tzid is not None:
        raise InvalidRecord(f"{what}: an all-day event has no tzid")
    if end < start:
        raise InvalidRecord(f"{what}: end {end} is before start {start}")
    return EventTiming(start, end, timing.tzid, timing.end_tzid)


def _timing_to_plain(timing: EventTiming) -> dict[str, Any]:
    plain = {
        "start": instant_to_text(timing.start),
        "end": instant_to_text(timing.end),
        "tzid": timing.tzid,
    }
    if timing.end_tzid:  # only an end in another zone than the start
        plain["end_tzid"] = timing.end_tzid
    return plain


def _timing_from_plain(plain: Mapping[str, Any]) -> EventTiming:
    return EventTiming(
        instant_from_text(plain["start"]),
        instant_from_text(plain["end"]),
        plain.get("tzid"),
        plain.get("end_tzid"),
    )


# ---- contacts -------------------------------------------------------------------------

_CONTACT_SCALARS = tuple(
    f.name
    for f in dataclasses.fields(Contact)
    if f.name not in ("mailing_address", "other_address", "birthdate", "is_person_account")
)


def contact_to_row(contact: Contact) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(contact, name) for name in _CONTACT_SCALARS}
    row["mailing_address"] = to_plain(contact.mailing_address)
    row["other_address"] = to_plain(contact.other_address)
    if isinstance(contact.birthdate, dt.datetime):
        raise InvalidRecord("birthdate must be a date, not a datetime")
    row["birthdate"] = contact.birthdate
    row["is_person_account"] = bool(contact.is_person_account)
    return row


def _address(plain: Mapping[str, str]) -> Address:
    return shared_address(**plain)


# Values many contacts repeat, held once (`shared_text`).
_SHARED_CONTACT_FIELDS = ("salutation", "title", "department", "account_name")


def contact_from_row(row: Row) -> Contact:
    values = {name: row[name] for name in _CONTACT_SCALARS}
    for name in _SHARED_CONTACT_FIELDS:
        values[name] = shared_text(values[name])
    return Contact(
        **values,
        mailing_address=_address(row["mailing_address"]),
        other_address=_address(row["other_address"]),
        birthdate=row["birthdate"],
        is_person_account=bool(row["is_person_account"]),
    )


# ---- leads ----------------------------------------------------------------------------

_LEAD_FIELDS = tuple(f.name for f in dataclasses.fields(Lead))


def lead_to_row(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in _LEAD_FIELDS}


def lead_from_row(row: Row) -> Lead:
    return Lead(**{name: row[name] for name in _LEAD_FIELDS})


# ---- events ---------------------------------------------------------------------------


def event_to_row(event: Event) -> dict[str, Any]:
    timing = _check_timing(event.timing, "event")
    row: dict[str, Any] = {
        "subject": event.subject,
        "location": event.location,
        "description": event.description,
        "organizer": event.organizer,
        "is_private": bool(event.is_private),
        "show_as": ShowAs(event.show_as).value,
        "categories": list(event.categories),
        "attendees": [to_plain(a) for a in event.attendees],
        "tzid": timing.tzid,
        "end_tzid": timing.end_tzid,
        "start_at": None,
        "end_at": None,
        "start_date": None,
        "end_date": None,
        "recurrence_rule": None,
        "recurrence_exdates": [],
        "recurrence_overrides": [],
        "recurrence_rdates": [],
    }
    if timing.all_day:
        row["start_date"], row["end_date"] = timing.start, timing.end
    else:
        row["start_at"], row["end_at"] = timing.start, timing.end
    if event.recurrence is not None:
        rec = event.recurrence
        if not rec.rule and not rec.rdates:
            raise InvalidRecord("a recurrence needs a rule or extra dates")
        row["recurrence_rule"] = rec.rule
        row["recurrence_exdates"] = [instant_to_text(d) for d in rec.exdates]
        # An extra instance with its own end (RDATE;VALUE=PERIOD) as an ISO 8601 interval.
        ends = dict(rec.rdate_periods)
        row["recurrence_rdates"] = [
            instant_to_text(d) + (f"/{instant_to_text(ends[d])}" if d in ends else "")
            for d in rec.rdates
        ]
        row["recurrence_overrides"] = [
            {
                "recurrence_id": instant_to_text(o.recurrence_id),
                **_timing_to_plain(_check_timing(o.timing, "override")),
                "subject": o.subject,
                "location": o.location,
                "description": o.description,
            }
            for o in rec.overrides
        ]
    return row


def event_from_row(row: Row) -> Event:
    if row["start_at"] is not None:
        timing = EventTiming(row["start_at"], row["end_at"], row["tzid"], row["end_tzid"])
    else:
        timing = EventTiming(row["start_date"], row["end_date"], None)
    recurrence = None
    if row["recurrence_rule"] is not None:
        rdates = row["recurrence_rdates"] or ()
        recurrence = Recurrence(
            rule=row["recurrence_rule"],
            exdates=tuple(instant_from_text(t) for t in row["recurrence_exdates"]),
            rdates=tuple(instant_from_text(t.split("/")[0]) for t in rdates),
            rdate_periods=tuple(_period_from_text(t) for t in rdates if "/" in t),
            overrides=tuple(
                Occurrence(
                    recurrence_id=instant_from_text(o["recurrence_id"]),
                    timing=_timing_from_plain(o),
                    subject=o.get("subject", ""),
                    location=o.get("location", ""),
                    description=o.get("description", ""),
                )
                for o in row["recurrence_overrides"]
            ),
        )
    return Event(
        subject=row["subject"],
        timing=timing,
        location=row["location"],
        description=row["description"],
        is_private=bool(row["is_private"]),
        show_as=ShowAs(row["show_as"]),
        categories=tuple(shared_text(c) for c in row["categories"]),
        attendees=tuple(
            Attendee(
                email=a["email"],
                name=a.get("name", ""),
                status=AttendeeStatus(a.get("status", AttendeeStatus.NEEDS_ACTION)),
                required=bool(a.get("required", True)),
                delegated_to=tuple(a.get("delegated_to", ())),
                delegated_from=tuple(a.get("delegated_from", ())),
            )
            for a in row["attendees"]
        ),
        organizer=shared_text(row["organizer"]),
        recurrence=recurrence,
    )


# ---- per kind -------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """How one owned kind is stored: its table, id prefix, record type and row mapping."""

    kind: OwnedKind
    table: Table
    id_prefix: str
    record_type: type
    to_row: Callable[[Any], dict[str, Any]]
    from_row: Callable[[Row], Any]


CODECS: dict[OwnedKind, Codec] = {
    OwnedKind.CONTACT: Codec(
        OwnedKind.CONTACT, tables.contacts, "con", Contact, contact_to_row, contact_from_row
    ),
    OwnedKind.LEAD: Codec(OwnedKind.LEAD, tables.leads, "lea", Lead, lead_to_row, lead_from_row),
    OwnedKind.EVENT: Codec(
        OwnedKind.EVENT, tables.events, "evt", Event, event_to_row, event_from_row
    ),
}
