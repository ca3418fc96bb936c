"""Contact ↔ exchangelib `Contact`.

Mapped: given name, surname, salutation (PidTagDisplayNamePrefix), job title, department,
company, EmailAddress1, the Business/Mobile/Home/OtherTelephone/BusinessFax phones, the
Business (mailing) and Home (other) addresses, birthday, the text body (description) and
the person-account flag. A company contact (a company and no person's name) reads with
the company as its last name, never written as the surname. Everything else on the item
(EmailAddress2/3, other phones and addresses, photo, ...) is left alone: `changed_fields`
names only the exchangelib fields whose mapped value differs, and indexed lists are
rewritten with their unmapped entries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from exchangelib import Contact as EwsContact
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.records import Address, Contact
from crmsync.groupware.ews.properties import PERSON_ACCOUNT_FIELD, SALUTATION_FIELD
from crmsync.groupware.ews.text import body_text

PHONES = {
    "phone": "BusinessPhone",
    "mobile_phone": "MobilePhone",
    "home_phone": "HomePhone",
    "other_phone": "OtherTelephone",
    "fax": "BusinessFax",
}
ADDRESSES = {"mailing_address": "Business", "other_address": "Home"}
EMAIL_LABEL = "EmailAddress1"
SIMPLE = {
    "first_name": "given_name",
    "last_name": "surname",
    "title": "job_title",
    "department": "department",
    "account_name": "company_name",
    "salutation": SALUTATION_FIELD,
}


def _text(value: Any) -> str:
    # Outlook breaks street lines with CR LF; the CRM (and every other backend) uses LF.
    return "" if value is None else str(value).replace("\r\n", "\n")


def _labelled(entries: Any, label: str) -> Any:
    for entry in entries or ():
        if entry.label == label:
            return entry
    return None


def _address(entry: PhysicalAddress | None) -> Address:
    if entry is None:
        return Address()
    return Address(
        _text(entry.street),
        _text(entry.city),
        _text(entry.state),
        _text(entry.zipcode),
        _text(entry.country),
    )


def to_contact(item: EwsContact, fields: ContactFieldMap) -> Contact:
    """The synced contact an Exchange contact holds (unsynced fields empty)."""
    values: dict[str, Any] = {name: _text(getattr(item, attr)) for name, attr in SIMPLE.items()}
    email = _labelled(item.email_addresses, EMAIL_LABEL)
    values["email"] = _text(email.email if email else "")
    for name, label in PHONES.items():
        phone = _labelled(item.phone_numbers, label)
        values[name] = _text(phone.phone_number if phone else "")
    for name, label in ADDRESSES.items():
        values[name] = _address(_labelled(item.physical_addresses, label))
    birthday = item.birthday
    values["birthdate"] = dt.date(birthday.year, birthday.month, birthday.day) if birthday else None
    values["description"] = body_text(item.body)
    values["is_person_account"] = bool(getattr(item, PERSON_ACCOUNT_FIELD))
    return fields.synced_of_item(Contact(**values))


def _merged(entries: Any, label: str, value: Any) -> list[Any]:
    """``entries`` with the one labelled ``label`` replaced by ``value`` (``None``: removed)."""
    kept = [e for e in entries or () if e.label != label]
    return kept + ([value] if value is not None else [])


def apply_contact(
    item: EwsContact, old: Contact | None, new: Contact, fields: ContactFieldMap
) -> list[str]:
    """Set on ``item`` the synced fields of ``new`` that differ from ``old`` (``None``: all);
    returns the exchangelib field names changed, for ``save(update_fields=...)``."""
    changed: list[str] = []
    # Compared and written as the item holds them: a company contact has no surname.
    new = fields.blank_unsynced(new).as_written()
    old = None if old is None else old.as_written()

    def differs(name: str) -> bool:
        return name in fields.synced and (old is None or getattr(old, name) != getattr(new, name))

    for name, attr in SIMPLE.items():
        if differs(name):
            setattr(item, attr, getattr(new, name) or None)
            changed.append(attr)
    if differs("email"):
        value = EmailAddress(label=EMAIL_LABEL, email=new.email) if new.email else None
        item.email_addresses = _merged(item.email_addresses, EMAIL_LABEL, value) or None
        changed.append("email_addresses")
    phones = item.phone_numbers
    for name, label in PHONES.items():
        if differs(name):
            value = getattr(new, name)
            phones = _merged(
                phones, label, PhoneNumber(label=label, phone_number=value) if value else None
            )
            if "phone_numbers" not in changed:
                changed.append("phone_numbers")
    item.phone_numbers = phones or None
    addresses = item.physical_addresses
    for name, label in ADDRESSES.items():
        if differs(name):
            a: Address = getattr(new, name)
            value = (
                None
                if a.is_empty()
                else PhysicalAddress(
                    label=label,
                    street=a.street or None,
                    city=a.city or None,
                    state=a.state or None,
                    country=a.country or None,
                    zipcode=a.postal_code or None,
                )
            )
            addresses = _merged(addresses, label, value)
            if "physical_addresses" not in changed:
                changed.append("physical_addresses")
    item.physical_addresses = addresses or None
    if differs("birthdate"):
        item.birthday = new.birthdate
        changed.append("birthday")
    if differs("description"):
        item.body = new.description or None
        changed.append("body")
    if differs("is_person_account"):
        setattr(item, PERSON_ACCOUNT_FIELD, True if new.is_person_account else None)
        changed.append(PERSON_ACCOUNT_FIELD)
    if old is None or {"given_name", "surname", "company_name"} & set(changed):
        item.display_name = new.display_name or "(no name)"
        changed.append("display_name")
    return changed


def written_contact(record: Contact, fields: ContactFieldMap) -> Contact:
    """What reading back a contact written from ``record`` gives."""
    return fields.blank_unsynced(dataclasses.replace(record))
