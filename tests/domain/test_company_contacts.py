"""The company-contact rule every mail backend shares (Exchange, Microsoft 365, Google): a
contact that is a company is written with no person's name and read back with the company
as its last name, the one rule in the domain each backend calls."""

from __future__ import annotations

import dataclasses

from crmsync.domain.contact_fields import IDENTITY_MAP, MAIL_FIELDS, ContactFieldMap
from crmsync.domain.records import Contact

COMPANY = Contact(last_name="Umbrella Corp", account_name="Umbrella Corp", email="i@u.test")
NO_COMPANY_FIELD = ContactFieldMap(
    {name: (name, kind) for name, kind in MAIL_FIELDS.items() if name != "account_name"}
)


def test_a_company_is_written_without_its_last_name_and_read_back_as_itself() -> None:
    written = COMPANY.as_written()
    assert written == dataclasses.replace(COMPANY, last_name="")
    assert IDENTITY_MAP.synced_of_item(written) == COMPANY


def test_a_person_is_written_and_read_back_as_given() -> None:
    for person in (
        dataclasses.replace(COMPANY, first_name="Tina"),
        dataclasses.replace(COMPANY, salutation="Dr."),
        dataclasses.replace(COMPANY, is_person_account=True),
        dataclasses.replace(COMPANY, last_name="Toys"),
        Contact(email="nobody@u.test"),
    ):
        assert person.as_written() is person
        assert IDENTITY_MAP.synced_of_item(person) == person


def test_an_item_read_through_a_map_keeps_only_the_fields_that_sync() -> None:
    # Named after its company first: the company need not sync to name the contact.
    item = Contact(account_name="Umbrella Corp", title="Supplier")
    assert NO_COMPANY_FIELD.synced_of_item(item) == Contact(
        last_name="Umbrella Corp", title="Supplier"
    )
