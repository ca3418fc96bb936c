"""What a fixture *means*, from `fixtures/expected.json` and from a synced record, compared
field by field. Shared by the fidelity tests and `bench/fidelity.py` (the corpus through
a real server: `tests/fidelity_corpus.py`).

The expected side is written by hand (see `fixtures/README.md`); the projection below
states, independently of the format code, which of that meaning the CRM's records can
hold: one email (the preferred one), one phone per kind, two addresses, a birthday with a
year, up to 50 attendees. What the model cannot hold is not compared here; the tests check
instead that it stays untouched on the mail server.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crmsync.domain.records import (
    MAX_ATTENDEES,
    Address,
    Contact,
    Event,
    EventTiming,
)
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import item_text

FIXTURES = Path(__file__).parent / "fixtures"
# Syncs run "as of" this day so no fixture (2025-2028) falls outside the TODAY window.
AS_OF = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
# The rep's zone: floating fixtures are read in it (one with DST on other dates than the US).
REP_ZONE = "Europe/Berlin"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())

EVENT_FIELDS = (
    "summary",
    "timing",
    "recurrence",
    "private",
    "show_as",
    "categories",
    "attendees",
    "organizer",
    "location",
    "description",
)
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "account_name",
    "department",
    "title",
    "email",
    "phones",
    "mailing_address",
    "other_address",
    "birthdate",
    "description",
)


def fixture_names(folder: str) -> list[str]:
    """The valid fixtures of ``events`` or ``contacts`` that sync (or every file of
    ``malformed``)."""
    return sorted(
        key for key in EXPECTED if key.startswith(folder + "/") and "skipped" not in EXPECTED[key]
    )


def skipped_fixture_names() -> list[str]:
    """The valid items that are no live contact or event (a group card, a cancelled
    event): left out by a rule, which the audit trail names."""
    return sorted(key for key, value in EXPECTED.items() if "skipped" in value)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_text(name: str) -> str:
    """The fixture as the DAV backend reads an item; raises `MalformedItem` for bytes
    that are not UTF-8, as it does."""
    return item_text(fixture_bytes(name))


# ---- events ---------------------------------------------------------------------------


def _when(text: str, zone: str | None, rep_zone: str) -> dt.datetime | dt.date:
    if "T" not in text:
        return dt.date.fromisoformat(text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:  # floating: the rep's wall clock
        value = value.replace(tzinfo=ZoneInfo(zone or rep_zone))
    return value.astimezone(dt.UTC)


def expected_event(name: str, rep_zone: str) -> dict[str, Any]:
    """The meaning of an event fixture, in the terms `event_meaning` uses."""
    e = EXPECTED[name]

    def when(text: str) -> dt.datetime | dt.date:
        return _when(text, e["zone"], rep_zone)

    if e["all_day"]:
        timing: tuple[Any, ...] = ("all-day", when(e["start"]), when(e["end"]))
    else:
        floating = e["zone"] is None and "+" not in e["start"][10:] and "-" not in e["start"][10:]
        zone = rep_zone if floating else e["zone"]
        end_zone = e.get("end_zone") or zone
        timing = ("timed", when(e["start"]), when(e["end"]), zone or "UTC", end_zone or "UTC")
    recurrence = None
    if e["rrule"] or e["rdates"] or e["overrides"]:
        removed = {when(x) for x in e["exdates"]}
        removed |= {when(o["recurrence_id"]) for o in e["overrides"] if o["cancelled"]}
        recurrence = (
            e["rrule"] or None,
            frozenset(removed),
            frozenset(when(x) for x in e["rdates"]),
            frozenset((when(a), when(b)) for a, b in e.get("rdate_periods", ())),
            frozenset(
                (when(o["recurrence_id"]), when(o["start"]), when(o["end"]), o["summary"])
                for o in e["overrides"]
                if not o["cancelled"]
            ),
        )
    extra: dict[str, Any] = {}
    if "partstats" in e:
        extra["partstats"] = [
            (p["email"], p["partstat"], tuple(p["delegated_to"]), tuple(p["delegated_from"]))
            for p in e["partstats"]
        ]
    return {
        **extra,
        "summary": e["summary"],
        "timing": timing,
        "recurrence": recurrence,
        "private": e["private"],
        "show_as": e["show_as"],
        "categories": tuple(e["categories"]),
        "attendees": min(e["attendees"], MAX_ATTENDEES),
        "organizer": e["organizer"].casefold(),
        "location": e["location"],
        "description": e["description"],
    }


def _timing(timing: EventTiming) -> tuple[Any, ...]:
    if timing.all_day:
        return ("all-day", timing.start, timing.end)
    return ("timed", timing.start, timing.end, timing.tzid or "UTC", timing.end_zone or "UTC")


def event_meaning(event: Event) -> dict[str, Any]:
    rec = event.recurrence
    recurrence = None
    if rec is not None:
        recurrence = (
            rec.rule or None,
            frozenset(rec.exdates),
            frozenset(rec.rdates),
            frozenset(rec.rdate_periods),
            frozenset(
                (o.recurrence_id, o.timing.start, o.timing.end, o.subject) for o in rec.overrides
            ),
        )
    return {
        "partstats": [
            (
                a.email,
                a.status.value.upper().replace("_", "-"),
                a.delegated_to,
                a.delegated_from,
            )
            for a in event.attendees
        ],
        "summary": event.subject,
        "timing": _timing(event.timing),
        "recurrence": recurrence,
        "private": event.is_private,
        "show_as": event.show_as.value,
        "categories": tuple(event.categories),
        "attendees": len(event.attendees),
        "organizer": event.organizer.casefold(),
        "location": event.location,
        "description": event.description,
    }


# ---- contacts -------------------------------------------------------------------------


def _phone_kind(types: Iterable[str]) -> str | None:
    """The documented TEL mapping: fax, cell, pager (not carried), home, other, else work."""
    kinds = set(types)
    if "fax" in kinds:
        return "fax"
    if kinds & {"cell", "mobile"}:
        return "mobile_phone"
    if "pager" in kinds:
        return None
    if "home" in kinds:
        return "home_phone"
    if "other" in kinds:
        return "other_phone"
    return "phone"


def _first_preferred(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    for item in items:
        if "pref" in item["types"]:
            return item
    return items[0] if items else None


def expected_contact(name: str) -> dict[str, Any]:
    e = EXPECTED[name]
    email = _first_preferred(e["emails"])
    phones: dict[str, list[dict[str, Any]]] = {}
    for phone in e["phones"]:
        kind = _phone_kind(phone["types"])
        if kind is not None:
            phones.setdefault(kind, []).append(phone)
    addresses: dict[str, list[dict[str, Any]]] = {}
    for address in e["addresses"]:
        other = {"home", "other"} & set(address["types"])
        addresses.setdefault("other_address" if other else "mailing_address", []).append(address)

    def address_of(kind: str) -> Address:
        chosen = _first_preferred(addresses.get(kind, []))
        if chosen is None:
            return Address()
        # The CRM's street holds the street lines: the street, then the extended address
        # (suite, building, c/o), then the post office box.
        lines = (chosen["street"], chosen.get("extended", ""), chosen.get("po_box", ""))
        return Address(
            "\n".join(line for line in lines if line),
            chosen["city"],
            chosen["region"],
            chosen["postal_code"],
            chosen["country"],
        )

    birthday = e["birthday"]
    if e.get("is_company"):
        # A company's card: no person's name; the CRM's last name holds the company.
        names: dict[str, str] = {
            "first_name": "",
            "last_name": e["organization"] or e["formatted_name"],
            "display_name": e["formatted_name"],
        }
    elif not (e["first_name"] or e["last_name"]):
        # FN without N: the name is all there is; how it splits is the reader's choice.
        names = {"display_name": e["formatted_name"]}
    else:
        names = {"first_name": e["first_name"], "last_name": e["last_name"]}
    return {
        **names,
        "account_name": e["organization"],
        "department": e["department"],
        "title": e["title"],
        "email": email["value"] if email else "",
        "phones": {
            kind: chosen["value"]
            for kind, found in sorted(phones.items())
            if (chosen := _first_preferred(found)) is not None
        },
        "mailing_address": address_of("mailing_address"),
        "other_address": address_of("other_address"),
        # A birthday without a year (--MM-DD) has no place in the CRM's date field.
        "birthdate": None
        if birthday is None or birthday.startswith("--")
        else dt.date.fromisoformat(birthday),
        "description": e["note"],
    }


def contact_meaning(contact: Contact) -> dict[str, Any]:
    phones = ("phone", "mobile_phone", "home_phone", "other_phone", "fax")
    return {
        "display_name": contact.display_name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "account_name": contact.account_name,
        "department": contact.department,
        "title": contact.title,
        "email": contact.email,
        "phones": {k: getattr(contact, k) for k in sorted(phones) if getattr(contact, k)},
        "mailing_address": contact.mailing_address,
        "other_address": contact.other_address,
        "birthdate": contact.birthdate,
        "description": contact.description,
    }


def expected_meaning(name: str, rep_zone: str) -> dict[str, Any]:
    return expected_event(name, rep_zone) if name.startswith("events/") else expected_contact(name)


def meaning(record: Event | Contact) -> dict[str, Any]:
    return event_meaning(record) if isinstance(record, Event) else contact_meaning(record)


def _name_order(formatted: str, first: str, last: str) -> str | None:
    """Whether a display name puts the family name first (CJK names do)."""
    if not (first and last) or first not in formatted or last not in formatted:
        return None
    return "family first" if formatted.index(last) < formatted.index(first) else "given first"


def copy_differences(name: str, written: str) -> dict[str, tuple[Any, Any]]:
    """What a new card crmsync wrote from the CRM record lost of what that record holds
    (``name`` the contact fixture it came from): the order of the person's names in FN,
    and the mark of the preferred email (the CRM's email is the card's preferred one)."""
    e = EXPECTED[name]
    card = cl.parse(written)
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    order = _name_order(e["formatted_name"], e["first_name"], e["last_name"])
    if order is not None:
        expected["name order"] = order
        fn = cl.unescape_text(card.value("FN") or "")
        actual["name order"] = _name_order(fn, e["first_name"], e["last_name"])
    if e["emails"]:
        expected["email marked preferred"] = True
        email = card.first("EMAIL")
        types = "" if email is None else ",".join(email.param_values("TYPE")).lower()
        actual["email marked preferred"] = "pref" in types or email.param("PREF") is not None
    return differences(expected, actual)


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose meaning differs: name → (expected, actual)."""
    return {k: (v, actual.get(k)) for k, v in expected.items() if actual.get(k) != v}
