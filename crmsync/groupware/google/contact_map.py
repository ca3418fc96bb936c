"""Contact ↔ People API person JSON (https://developers.google.com/people/api/rest/v1/people).

first_name, last_name, salutation: ``names[0]`` (givenName, familyName,
honorificPrefix) · account_name, title, department: ``organizations[0]`` · email:
``emailAddresses[0]`` · phone, mobile_phone, home_phone, fax, other_phone: the first
phone number of type work, mobile, home, workFax, other · mailing_address,
other_address: the first address of type work, other · birthdate: ``birthdays[0]`` (a
birthday without a year is no date and reads as none) · description: ``biographies[0]``
· is_person_account: crmsync's clientData. A company contact (an organisation and no
person's name) reads with the company as its last name, never written as familyName.

``updateContact`` replaces every field it names, whole: an update sends each changed
field's complete list with crmsync's entries changed in place and the rest (a second
email, a pager number, a middle name) kept as they were. Fields that do not sync (see
`ContactFieldMap`) are read as empty and never written.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.records import Address, Contact
from crmsync.groupware.google import markers

_NAMES = {"first_name": "givenName", "last_name": "familyName", "salutation": "honorificPrefix"}
_ORG = {"account_name": "name", "title": "title", "department": "department"}
_PHONES = {
    "phone": "work",
    "mobile_phone": "mobile",
    "home_phone": "home",
    "fax": "workFax",
    "other_phone": "other",
}
_ADDRESSES = {"mailing_address": "work", "other_address": "other"}
_ADDRESS_KEYS = {
    "street": "streetAddress",
    "city": "city",
    "state": "region",
    "postal_code": "postalCode",
    "country": "country",
}
# Which top-level person field each contact field lives in (updatePersonFields).
FIELD_OF = {
    **dict.fromkeys(_NAMES, "names"),
    **dict.fromkeys(_ORG, "organizations"),
    "email": "emailAddresses",
    **dict.fromkeys(_PHONES, "phoneNumbers"),
    **dict.fromkeys(_ADDRESSES, "addresses"),
    "birthdate": "birthdays",
    "description": "biographies",
    "is_person_account": "clientData",
}
# Computed by Google from the structured parts: stale once a part changes.
_DERIVED_NAME_KEYS = ("displayName", "displayNameLastFirst", "unstructuredName")


def _text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n")


def _first(person: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    values = [v for v in person.get(key) or () if isinstance(v, Mapping)]
    primary = [v for v in values if (v.get("metadata") or {}).get("primary")]
    return (primary or values or [{}])[0]


def _typed(person: Mapping[str, Any], key: str, kind: str) -> Mapping[str, Any]:
    for value in person.get(key) or ():
        if isinstance(value, Mapping) and str(value.get("type", "")).lower() == kind.lower():
            return value
    return {}


def _birthdate(person: Mapping[str, Any]) -> dt.date | None:
    date = _first(person, "birthdays").get("date") or {}
    try:
        return dt.date(int(date["year"]), int(date["month"]), int(date["day"]))
    except (KeyError, TypeError, ValueError):
        return None


def read_contact(person: Mapping[str, Any], fields: ContactFieldMap) -> tuple[Contact, str | None]:
    """The synced contact and crmsync's marker of a person."""
    data = markers.client_data(person)
    name, org = _first(person, "names"), _first(person, "organizations")
    values: dict[str, Any] = {f: _text(name.get(k)) for f, k in _NAMES.items()}
    values.update({f: _text(org.get(k)) for f, k in _ORG.items()})
    values["email"] = _text(_first(person, "emailAddresses").get("value"))
    values.update(
        {f: _text(_typed(person, "phoneNumbers", t).get("value")) for f, t in _PHONES.items()}
    )
    for field, kind in _ADDRESSES.items():
        entry = _typed(person, "addresses", kind)
        values[field] = Address(**{a: _text(entry.get(k)) for a, k in _ADDRESS_KEYS.items()})
    values["birthdate"] = _birthdate(person)
    values["description"] = _text(_first(person, "biographies").get("value"))
    values["is_person_account"] = data.get(markers.PERSON_ACCOUNT) == "true"
    contact = fields.synced_of_item(Contact(**values))
    return contact, data.get(markers.MARKER) or None


def contact_slots(contact: Contact, fields: ContactFieldMap) -> dict[str, Any]:
    """The mapped content of ``contact``: synced field → value."""
    written = contact.as_written()
    return {name: getattr(written, name) for name in fields.synced}


def _set_typed(
    entries: list[dict[str, Any]], kind: str, values: dict[str, Any], drop: tuple[str, ...]
) -> None:
    """Put ``values`` in the first entry of type ``kind`` (its ``drop`` keys replaced, the
    rest kept), add one, or remove it when ``values`` is empty."""
    for i, entry in enumerate(entries):
        if str(entry.get("type", "")).lower() == kind.lower():
            if values:
                entries[i] = {k: v for k, v in entry.items() if k not in drop} | values
            else:
                del entries[i]
            return
    if values:
        entries.append({**values, "type": kind})


def person_body(
    slots: Mapping[str, Any], current: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The person JSON for ``slots`` on top of ``current`` (``None``: a new contact), and
    the top-level fields it replaces."""
    base = copy.deepcopy(dict(current or {}))
    touched = sorted({FIELD_OF[s] for s in slots})
    body: dict[str, Any] = {f: [dict(v) for v in base.get(f) or ()] for f in touched}
    for slot, value in slots.items():
        if slot in _NAMES or slot in _ORG:
            key = "names" if slot in _NAMES else "organizations"
            if not body[key]:
                body[key].append({})
            first = body[key][0]
            sub = _NAMES.get(slot) or _ORG[slot]
            if value:
                first[sub] = value
            else:
                first.pop(sub, None)
            if key == "names":
                for derived in _DERIVED_NAME_KEYS:
                    first.pop(derived, None)
        elif slot == "email":
            head, rest = body["emailAddresses"][:1], body["emailAddresses"][1:]
            first = [{**(head[0] if head else {}), "value": value}] if value else []
            body["emailAddresses"] = first + rest
        elif slot in _PHONES:
            phone = {"value": value} if value else {}
            _set_typed(body["phoneNumbers"], _PHONES[slot], phone, ("value", "canonicalForm"))
        elif slot in _ADDRESSES:
            parts = {k: getattr(value, a) for a, k in _ADDRESS_KEYS.items() if getattr(value, a)}
            # Google's formattedValue would contradict new parts: it is recomputed.
            drop = (*_ADDRESS_KEYS.values(), "formattedValue", "countryCode")
            _set_typed(body["addresses"], _ADDRESSES[slot], parts, drop)
        elif slot == "birthdate":
            body["birthdays"] = (
                [{"date": {"year": value.year, "month": value.month, "day": value.day}}]
                if value
                else []
            )
        elif slot == "description":
            body["biographies"] = [{"value": value, "contentType": "TEXT_PLAIN"}] if value else []
        elif slot == "is_person_account":
            data = [d for d in body["clientData"] if d.get("key") != markers.PERSON_ACCOUNT]
            body["clientData"] = data + (
                [{"key": markers.PERSON_ACCOUNT, "value": "true"}] if value else []
            )
    # An empty name or organisation entry is no entry.
    for key in ("names", "organizations"):
        if key in body:
            body[key] = [e for e in body[key] if any(k != "metadata" for k in e)]
    return body, touched
