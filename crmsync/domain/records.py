"""The records every layer shares: contacts, leads, events, users and profiles.

Plain frozen dataclasses, no I/O. Times are stored as instants in UTC together with the
zone id the item was written in; all-day events carry dates, never midnights.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Marks a field added after records were first hashed and stored: `to_plain` leaves it out
# while it holds its default, so a record that does not use it keeps the content hash its
# links hold and the JSON the built-in CRM stored.
_ADDED = {"added": True}


class ItemKind(StrEnum):
    CONTACT = "contact"
    EVENT = "event"


class ShowAs(StrEnum):
    BUSY = "busy"
    FREE = "free"
    TENTATIVE = "tentative"
    OUT_OF_OFFICE = "out_of_office"


class AttendeeStatus(StrEnum):
    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    # Passed the invitation on to someone else (``Attendee.delegated_to``).
    DELEGATED = "delegated"


@dataclass(frozen=True, slots=True)
class Address:
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def is_empty(self) -> bool:
        return self == NO_ADDRESS


# The empty address, shared (it is frozen): most contacts have no other address, and a
# listing of 50,000 contacts held an empty Address object for each on each side.
NO_ADDRESS = Address()


def shared_text(value: str) -> str:
    """One copy of a value many records repeat (a company, a city, a title), for readers
    building records by the thousand: a full listing held a copy per record per side."""
    return sys.intern(value) if value else value


def shared_address(street: str, city: str, state: str, postal_code: str, country: str) -> Address:
    """An address whose city, state, postal code and country are `shared_text`;
    `NO_ADDRESS` when it is empty."""
    if not (street or city or state or postal_code or country):
        return NO_ADDRESS
    return Address(
        street,
        shared_text(city),
        shared_text(state),
        shared_text(postal_code),
        shared_text(country),
    )


@dataclass(frozen=True, slots=True)
class Contact:
    """A CRM contact or person account, as the mail server's address book sees it."""

    first_name: str = ""
    last_name: str = ""
    salutation: str = ""
    title: str = ""
    department: str = ""
    account_name: str = ""
    email: str = ""
    phone: str = ""
    mobile_phone: str = ""
    home_phone: str = ""
    other_phone: str = ""
    fax: str = ""
    mailing_address: Address = NO_ADDRESS
    other_address: Address = NO_ADDRESS
    birthdate: dt.date | None = None
    description: str = ""
    is_person_account: bool = False

    @property
    def display_name(self) -> str:
        """The name to show: the person's, else the company's, else the email.

        Chinese, Japanese and Korean names are shown family name first, as their cards
        write them: without a space after a one-character family name or a Korean one
        (王小明, 김민준), with one after a longer family name or beside kana (山田 太郎).
        """
        first, last = self.first_name, self.last_name
        if first and last and _east_asian(first + last):
            joined = len(last) == 1 or _hangul(first + last)
            return last + ("" if joined and not _kana(first + last) else " ") + first
        names = " ".join(p for p in (first, last) if p)
        return names or self.account_name or self.email

    @property
    def is_company(self) -> bool:
        """Whether this contact stands for a company, not a person: the company is its last
        name (the CRM needs one) and it has no other part of a person's name. A mail
        server's item for it carries the company and no person's name (`as_written`,
        `named_after_company`)."""
        return (
            bool(self.last_name)
            and self.last_name == self.account_name
            and not (self.first_name or self.salutation or self.is_person_account)
        )

    def as_written(self) -> Contact:
        """The contact as a mail server's item holds it: a company's without the last name
        that only repeats the company, so it is never written as a person's surname
        (`named_after_company` reads it back as this contact)."""
        return dataclasses.replace(self, last_name="") if self.is_company else self


def named_after_company(contact: Contact) -> Contact:
    """A contact read from a mail server with a company and no person's name (Outlook's and
    Google's company contacts) takes the company as its last name, which the CRM needs;
    `Contact.as_written` keeps it from being written back as a person's name."""
    person = contact.first_name or contact.last_name or contact.salutation
    if person or contact.is_person_account or not contact.account_name:
        return contact
    return dataclasses.replace(contact, last_name=contact.account_name)


def _east_asian(text: str) -> bool:
    """Whether every letter of ``text`` is Han, kana or Hangul."""
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and all(_han(c) or _kana(c) or _hangul(c) for c in letters)


def _han(text: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)


def _kana(text: str) -> bool:
    return any("\u3040" <= c <= "\u30ff" for c in text)


def _hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7af" or "\u1100" <= c <= "\u11ff" for c in text)


@dataclass(frozen=True, slots=True)
class Lead:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    title: str = ""
    email: str = ""
    phone: str = ""
    status: str = "Open"


# At most this many attendees of an event are carried across; the rest stay where they are.
MAX_ATTENDEES = 50


@dataclass(frozen=True, slots=True)
class Attendee:
    """One attendee; ``delegated_to`` / ``delegated_from`` are the emails of the people
    this attendee passed the invitation to or received it from."""

    email: str
    name: str = ""
    status: AttendeeStatus = AttendeeStatus.NEEDS_ACTION
    required: bool = True
    delegated_to: tuple[str, ...] = field(default=(), metadata=_ADDED)
    delegated_from: tuple[str, ...] = field(default=(), metadata=_ADDED)


@dataclass(frozen=True, slots=True)
class EventTiming:
    """When an event (or one occurrence of it) happens.

    Timed: ``start``/``end`` are aware datetimes in UTC and ``tzid`` is the IANA zone the
    organiser used (``None`` for UTC); ``end_tzid`` is the end's zone where it differs
    (a flight from Frankfurt to New York), else ``None``. All-day: ``start``/``end`` are
    dates, ``end`` exclusive as in iCalendar, and both zones are ``None``.
    """

    start: dt.datetime | dt.date
    end: dt.datetime | dt.date
    tzid: str | None = None
    end_tzid: str | None = field(default=None, metadata=_ADDED)

    def __post_init__(self) -> None:
        # One spelling per meaning: an end in the start's zone (or an all-day end) has none.
        if self.end_tzid == self.tzid or not isinstance(self.start, dt.datetime):
            object.__setattr__(self, "end_tzid", None)
        elif self.end_tzid:
            object.__setattr__(self, "end_tzid", shared_text(self.end_tzid))
        if self.tzid:  # a few zones for thousands of events: held once (`shared_text`)
            object.__setattr__(self, "tzid", shared_text(self.tzid))

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, dt.datetime)

    @property
    def end_zone(self) -> str | None:
        """The zone the end is written in: ``end_tzid``, else ``tzid``."""
        return self.end_tzid or self.tzid


@dataclass(frozen=True, slots=True)
class Occurrence:
    """An overridden instance of a series: the original start it replaces and its new content."""

    recurrence_id: dt.datetime | dt.date
    timing: EventTiming
    subject: str = ""
    location: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A series: the RRULE value text (``""`` for dates given only as ``rdates``), the
    cancelled instances, the overridden ones and the extra ones (RDATE).

    ``rdate_periods`` are the (start, end) of extra instances that have their own end
    (RDATE;VALUE=PERIOD); their starts are in ``rdates`` too, so a reader that knows
    only ``rdates`` still has each instance, with the series' length. A period whose
    start is not in ``rdates`` is dropped.
    """

    rule: str
    exdates: tuple[dt.datetime | dt.date, ...] = ()
    overrides: tuple[Occurrence, ...] = ()
    rdates: tuple[dt.datetime | dt.date, ...] = ()
    rdate_periods: tuple[tuple[dt.datetime, dt.datetime], ...] = field(default=(), metadata=_ADDED)

    def __post_init__(self) -> None:
        # The order of these sets means nothing (a server may keep overrides in any
        # order): one canonical order makes equal series compare and hash equal.
        object.__setattr__(self, "exdates", tuple(sorted(self.exdates, key=_instant_key)))
        object.__setattr__(self, "rdates", tuple(sorted(self.rdates, key=_instant_key)))
        starts = set(self.rdates)
        periods = {p[0]: (p[0], p[1]) for p in self.rdate_periods if p[0] in starts}
        object.__setattr__(
            self, "rdate_periods", tuple(periods[k] for k in sorted(periods, key=_instant_key))
        )
        object.__setattr__(
            self,
            "overrides",
            tuple(sorted(self.overrides, key=lambda o: _instant_key(o.recurrence_id))),
        )


def _instant_key(value: dt.datetime | dt.date) -> str:
    # Instants are UTC and a series uses one kind, so the ISO text orders them.
    return value.isoformat()


@dataclass(frozen=True, slots=True)
class Event:
    subject: str
    timing: EventTiming
    location: str = ""
    description: str = ""
    is_private: bool = False
    show_as: ShowAs = ShowAs.BUSY
    categories: tuple[str, ...] = ()
    attendees: tuple[Attendee, ...] = ()
    organizer: str = ""
    recurrence: Recurrence | None = None


@dataclass(frozen=True, slots=True)
class User:
    """A CRM user; reps are users whose mailbox syncs."""

    id: str
    email: str
    name: str = ""
    profile_id: str | None = None
    time_zone: str = "UTC"
    active: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    name: str


Record = Contact | Event


def to_plain(value: Any) -> Any:
    """A JSON-ready view of a record (dates as ISO text, enums as values, tuples as lists).

    Used for content hashes and JSON Lines export; the output is stable for equal records.
    """
    # Every write hashes its record: plain values return at once, and a dataclass's fields
    # are looked up once per type (the generic checks were a twentieth of a first sync).
    if type(value) in _AS_THEY_ARE:
        return value
    fields = record_fields(type(value))
    if fields is not None:
        plain = {}
        for name, added, default in fields:
            field_value = getattr(value, name)
            if not (added and field_value == default):
                plain[name] = to_plain(field_value)
        return plain
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    return value


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})


@functools.cache
def record_fields(kind: type) -> tuple[tuple[str, bool, Any], ...] | None:
    """The fields of a dataclass type as (name, added after the first hashes, default);
    None for any other type. Looked up once per type: record walks ask for every value."""
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(
        (f.name, bool(f.metadata.get("added")), f.default) for f in dataclasses.fields(kind)
    )
