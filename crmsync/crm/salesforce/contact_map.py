"""Salesforce Contact (and person Account) fields to crmsync's contact values and back.

Pure functions, property-tested. The values are keyed as `ContactFieldMap` expects: the
standard contact fields by their crmsync names, custom fields as ``custom:Foo__c``.
A person account's contact fields are written through its Account, where they carry
``Person`` names and custom contact fields end in ``__pc``:
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_guidelines_personaccounts.htm
Salesforce stores an empty text as null, so ``""`` and null are the same value here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from crmsync.domain.contact_fields import CUSTOM_PREFIX
from crmsync.domain.records import Address

# crmsync's standard text fields: (Contact field, person Account field).
TEXT_FIELDS: dict[str, tuple[str, str]] = {
    "first_name": ("FirstName", "FirstName"),
    "last_name": ("LastName", "LastName"),
    "salutation": ("Salutation", "Salutation"),
    "title": ("Title", "PersonTitle"),
    "department": ("Department", "PersonDepartment"),
    "email": ("Email", "PersonEmail"),
    "phone": ("Phone", "Phone"),
    "mobile_phone": ("MobilePhone", "PersonMobilePhone"),
    "home_phone": ("HomePhone", "PersonHomePhone"),
    "other_phone": ("OtherPhone", "PersonOtherPhone"),
    "fax": ("Fax", "Fax"),
    "description": ("Description", "Description"),
}
ADDRESS_FIELDS: dict[str, tuple[str, str]] = {
    "mailing_address": ("Mailing", "PersonMailing"),
    "other_address": ("Other", "PersonOther"),
}
ADDRESS_PARTS = {
    "street": "Street",
    "city": "City",
    "state": "State",
    "postal_code": "PostalCode",
    "country": "Country",
}
BIRTHDATE = ("Birthdate", "PersonBirthdate")
# Read only: the account's name comes through the relationship; a person account's
# contact is flagged by IsPersonAccount (present only when the org has person accounts).
ACCOUNT_NAME = "Account.Name"


def contact_select(custom_fields: Iterable[str], person_accounts: bool, marker: str) -> list[str]:
    """The Contact fields a listing selects."""
    fields = ["Id", "OwnerId", "SystemModstamp", "IsDeleted", "AccountId", ACCOUNT_NAME, marker]
    fields += [sf for sf, _ in TEXT_FIELDS.values()]
    fields += [
        prefix + part for prefix, _ in ADDRESS_FIELDS.values() for part in ADDRESS_PARTS.values()
    ]
    fields.append(BIRTHDATE[0])
    if person_accounts:
        fields.append("IsPersonAccount")
    fields += [f for f in sorted(set(custom_fields)) if f not in fields]
    return fields


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def crm_values(row: Mapping[str, Any], custom_fields: Iterable[str] = ()) -> dict[str, Any]:
    """The contact values of a Contact row (as a query returns it)."""
    person = bool(row.get("IsPersonAccount"))
    values: dict[str, Any] = {name: _text(row.get(sf)) for name, (sf, _) in TEXT_FIELDS.items()}
    for name, (prefix, _) in ADDRESS_FIELDS.items():
        values[name] = Address(
            **{part: _text(row.get(prefix + sf)) for part, sf in ADDRESS_PARTS.items()}
        )
    birth = row.get(BIRTHDATE[0])
    values["birthdate"] = dt.date.fromisoformat(birth) if birth else None
    account = row.get("Account")
    # A person account's Account.Name is the person's own name, not a company.
    name = account.get("Name") if isinstance(account, Mapping) and not person else None
    values["account_name"] = _text(name)
    values["is_person_account"] = person
    for field in custom_fields:
        raw = row.get(field)
        values[CUSTOM_PREFIX + field] = raw if isinstance(raw, bool) else _text(raw)
    return values


def _wire(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_fields(values: Mapping[str, Any], *, person: bool) -> dict[str, Any]:
    """The Contact (``person=False``) or person Account fields that set ``values``.

    Only the keys present are written, so unmapped fields keep their Salesforce value.
    ``account_name`` and ``is_person_account`` are not fields of either record and are
    left out (the caller resolves the account).
    """
    side = 1 if person else 0
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in TEXT_FIELDS:
            out[TEXT_FIELDS[name][side]] = _wire(value)
        elif name in ADDRESS_FIELDS:
            prefix = ADDRESS_FIELDS[name][side]
            address = value if isinstance(value, Address) else Address()
            for part, sf in ADDRESS_PARTS.items():
                out[prefix + sf] = _wire(getattr(address, part))
        elif name == "birthdate":
            out[BIRTHDATE[side]] = _wire(value)
        elif name.startswith(CUSTOM_PREFIX):
            field = name.removeprefix(CUSTOM_PREFIX)
            if person and field.endswith("__c"):
                field = field[: -len("__c")] + "__pc"
            out[field] = value if isinstance(value, bool) else _wire(value)
    return out
