"""Contact ↔ Graph contact JSON (https://learn.microsoft.com/graph/api/resources/contact).

A contact's mapped content is a set of *slots* (a JSON property, the first entry of a
list, or an extended property); an update PATCHes only the slots that changed, and the
rest of a list (a second email the rep added) is kept. Fields that do not sync (see
`ContactFieldMap`) are read as empty and never written.

first_name givenName · last_name surname · salutation title · title jobTitle ·
department department · account_name companyName · email emailAddresses[0] · phone
businessPhones[0] · mobile_phone mobilePhone · home_phone homePhones[0] · fax and
other_phone: Outlook's MAPI properties · mailing_address businessAddress ·
other_address homeAddress · birthdate birthday · description personalNotes ·
is_person_account: a crmsync extended property. A company contact (a company and no
person's name) reads with the company as its last name, which is never written as surname.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.records import Address, Contact
from crmsync.groupware.graph import properties as props

_TEXT = {
    "first_name": "givenName",
    "last_name": "surname",
    "salutation": "title",
    "title": "jobTitle",
    "department": "department",
    "account_name": "companyName",
    "mobile_phone": "mobilePhone",
    "description": "personalNotes",
}
_FIRST_OF = {"email": "emailAddresses", "phone": "businessPhones", "home_phone": "homePhones"}
_EXTENDED = {"fax": props.BUSINESS_FAX, "other_phone": props.OTHER_PHONE}
_ADDRESSES = {"mailing_address": "businessAddress", "other_address": "homeAddress"}
EXPANDED = (props.MARKER, props.PERSON_ACCOUNT, props.BUSINESS_FAX, props.OTHER_PHONE)


def _text(value: Any) -> str:
    return "" if value is None else str(value).replace("\r\n", "\n")


def _address(json: Mapping[str, Any] | None) -> Address:
    json = json or {}
    return Address(
        _text(json.get("street")),
        _text(json.get("city")),
        _text(json.get("state")),
        _text(json.get("postalCode")),
        _text(json.get("countryOrRegion")),
    )


def _address_json(address: Address) -> dict[str, str]:
    return {
        "street": address.street,
        "city": address.city,
        "state": address.state,
        "postalCode": address.postal_code,
        "countryOrRegion": address.country,
    }


def _first(json: Mapping[str, Any], key: str) -> str:
    values = json.get(key) or []
    if not values:
        return ""
    first = values[0]
    return _text(first.get("address") if isinstance(first, dict) else first)


def read_contact(json: Mapping[str, Any], fields: ContactFieldMap) -> tuple[Contact, str | None]:
    """The synced contact and crmsync's marker of a Graph contact."""
    ext = props.read(json)
    values: dict[str, Any] = {name: _text(json.get(key)) for name, key in _TEXT.items()}
    values.update({name: _first(json, key) for name, key in _FIRST_OF.items()})
    values.update({name: props.value(ext, prop) for name, prop in _EXTENDED.items()})
    values.update({name: _address(json.get(key)) for name, key in _ADDRESSES.items()})
    birthday = _text(json.get("birthday"))
    values["birthdate"] = dt.date.fromisoformat(birthday[:10]) if birthday else None
    values["is_person_account"] = props.value(ext, props.PERSON_ACCOUNT) == "true"
    contact = fields.synced_of_item(Contact(**values))
    return contact, props.value(ext, props.MARKER) or None


def contact_slots(contact: Contact, fields: ContactFieldMap) -> dict[str, Any]:
    """The mapped content of ``contact`` as slot → JSON value (synced fields only)."""
    slots: dict[str, Any] = {}
    written = contact.as_written()
    for name in fields.synced:
        value = getattr(written, name)
        if name in _TEXT:
            slots[_TEXT[name]] = value or None
        elif name in _FIRST_OF:
            slots[_FIRST_OF[name] + "[0]"] = value
        elif name in _EXTENDED:
            slots["ext:" + _EXTENDED[name]] = value
        elif name in _ADDRESSES:
            slots[_ADDRESSES[name]] = _address_json(value)
        elif name == "birthdate":
            slots["birthday"] = f"{value.isoformat()}T00:00:00Z" if value else None
        elif name == "is_person_account":
            slots["ext:" + props.PERSON_ACCOUNT] = "true" if value else ""
    return slots


def contact_body(
    slots: Mapping[str, Any], current: Mapping[str, Any] | None, display_name: str
) -> dict[str, Any]:
    """The JSON to POST (``current`` None) or PATCH for ``slots``, keeping list tails."""
    body: dict[str, Any] = {}
    ext: dict[str, str] = {}
    for slot, value in slots.items():
        if slot.startswith("ext:"):
            ext[slot[4:]] = value
        elif slot.endswith("[0]"):
            key = slot[:-3]
            rest = list((current or {}).get(key) or [])[1:]
            if key == "emailAddresses":
                head = [{"address": value, "name": display_name}] if value else []
            else:
                head = [value] if value else []
            body[key] = head + rest
        else:
            body[slot] = value
    if ext:
        body["singleValueExtendedProperties"] = props.body(ext)
    return body
