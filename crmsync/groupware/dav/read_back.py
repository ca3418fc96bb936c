"""Which records an item crmsync renders new reads back as exactly, without parsing it.

After a create the engine keeps the record the new item holds (its content hash is
compared with the next read). Parsing the text just written to find it was a seventh of
an initial sync's client CPU; for the records below it is the record written itself, as
the property tests in tests/groupware/dav/test_read_back.py hold over the vCard and
iCalendar mappings. Anything else is parsed back as before: values with control
characters (a lone CR reads back as a line break), a nameless contact with a company
(read back named after the company), a contact named by nothing but blanks (unreadable),
phone numbers written as ``tel:`` URIs, fields the contact map does not sync, series,
zones crmsync would write another way, an end's own zone after a UTC start.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.records import MAX_ATTENDEES, Address, Contact, Event, EventTiming
from crmsync.groupware.dav.vtimezone import known_zone
from crmsync.groupware.dav.zone_names import iana_candidates

_UTC = dt.UTC
# Addresses written as mailto: URIs and read back as they are: no URI syntax to decode.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
# Years whose dates and instants the formats write as four digits and read back.
_FIRST_YEAR, _LAST_YEAR = 1900, 2100


def _plain(value: str, line_breaks: bool) -> bool:
    """No control character (a line break ``\\n`` only where ``line_breaks``), no lone
    surrogate, no byte order mark."""
    if value.isprintable():  # most values: nothing to look at character by character
        return True
    for ch in value:
        if ch == "\n" and line_breaks:
            continue
        if ch == "\ufeff" or unicodedata.category(ch) in ("Cc", "Cs"):
            return False
    return True


def _line(value: str) -> bool:
    return _plain(value, line_breaks=False)


def _text(value: str) -> bool:
    return _plain(value, line_breaks=True)


def _address(address: Address) -> bool:
    return _text(address.street) and all(
        _line(v) for v in (address.city, address.state, address.postal_code, address.country)
    )


def contact_reads_back(contact: Contact, field_map: ContactFieldMap) -> bool:
    """Whether a new vCard of ``contact`` reads back (through ``field_map``) as
    ``contact``."""
    if not (contact.first_name or contact.last_name) and contact.account_name:
        return False  # read back as a company's card, the company its last name
    phones = (
        contact.phone,
        contact.mobile_phone,
        contact.home_phone,
        contact.other_phone,
        contact.fax,
    )
    if any(p[:4].lower() == "tel:" or not _line(p) for p in phones):
        return False
    identifying = (contact.first_name, contact.last_name, contact.account_name)
    if not any(v.replace(";", "").strip() for v in (*identifying, contact.email, *phones)):
        return False  # unreadable: a vCard that names no one (a whitespace name, say)
    names = (
        contact.first_name,
        contact.last_name,
        contact.salutation,
        contact.department,
        contact.account_name,
        contact.email,
    )
    if not all(_line(v) for v in names):
        return False
    if not (_text(contact.title) and _text(contact.description)):
        return False
    if not (_address(contact.mailing_address) and _address(contact.other_address)):
        return False
    birthdate = contact.birthdate
    if birthdate is not None and not _FIRST_YEAR <= birthdate.year <= _LAST_YEAR:
        return False
    return field_map.blank_unsynced(contact) == contact


@lru_cache(maxsize=256)
def _zone_reads_back(tzid: str) -> bool:
    """Whether ``tzid`` is a zone written by its name and read back as itself."""
    candidates = iana_candidates(tzid)
    return bool(candidates) and candidates[0] == tzid and known_zone(tzid) is not None


def _instant(value: dt.datetime, tzid: str | None) -> bool:
    """A UTC instant in whole seconds, in a zone written and read back by its name. (An
    instant a zone's local time names twice is written in UTC: it reads back too.)"""
    if value.tzinfo is not _UTC or value.microsecond or value.fold:
        return False
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        return False
    return tzid is None or _zone_reads_back(tzid)


def _timing(timing: EventTiming) -> bool:
    start, end = timing.start, timing.end
    if not isinstance(start, dt.datetime):
        return (
            not isinstance(end, dt.datetime)
            and start <= end
            and start.year >= _FIRST_YEAR
            and end.year <= _LAST_YEAR
        )
    if not isinstance(end, dt.datetime) or end < start:
        return False
    if timing.end_tzid and not timing.tzid:
        return False  # an end's zone after a UTC start reads back as the event's zone
    return _instant(start, timing.tzid) and _instant(end, timing.end_zone)


def event_reads_back(event: Event) -> bool:
    """Whether a new VCALENDAR of ``event`` reads back as ``event`` (series are always
    read back)."""
    if event.recurrence is not None or not _timing(event.timing):
        return False
    if not (_line(event.subject) and _line(event.location) and _text(event.description)):
        return False
    if not all(c and _line(c) for c in event.categories):
        return False
    if event.organizer and not _PLAIN_ADDRESS.fullmatch(event.organizer):
        return False
    if len(event.attendees) > MAX_ATTENDEES:
        return False
    seen: set[str] = set()
    for attendee in event.attendees:
        addresses = (attendee.email, *attendee.delegated_to, *attendee.delegated_from)
        if not all(_PLAIN_ADDRESS.fullmatch(a) for a in addresses) or not _line(attendee.name):
            return False
        if attendee.email.lower() in seen:
            return False
        seen.add(attendee.email.lower())
    return True
