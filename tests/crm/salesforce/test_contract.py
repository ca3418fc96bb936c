"""Salesforce passes the CRM-side contract (`tests.crm.contract`): against the fake on
127.0.0.1, or against a real org in live mode (see `harness`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.contact_map import write_fields
from crmsync.crm.salesforce.query import plain, query, quote
from crmsync.crm.salesforce.series import series_key
from crmsync.crm.salesforce.versions import parse_instant, wire_instant
from crmsync.domain.records import Contact, ItemKind
from crmsync.engine.ports import ItemSide
from tests.crm.contract import CrmSideContract
from tests.crm.salesforce.harness import OrgHarness, org_harness


class SalesforceHarness:
    """The contract's view of an org; edits "as a person" go straight to the fake's
    records, or, live, through the REST API as another client would."""

    def __init__(self, org: OrgHarness) -> None:
        self.org = org
        crm = org.crm
        self.other = next(u for u in crm.list_users(active=True) if u.id != org.rep.id)
        self.contacts: ItemSide = crm.side(org.rep.id, ItemKind.CONTACT)
        self.events: ItemSide = crm.side(org.rep.id, ItemKind.EVENT)
        self.other_contacts: ItemSide = crm.side(self.other.id, ItemKind.CONTACT)

    def request_count(self) -> int:
        return self.org.crm.calls_made

    def _edit(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        if self.org.fake is not None:
            self.org.fake.org.edit(record_id, **fields)
            return
        (result,) = collections.update(self.org.crm.conn, sobject, [{"Id": record_id, **fields}])
        assert result.error is None, result.error

    def _row(self, sobject: str, record_id: str, fields: str) -> dict[str, Any]:
        soql = f"SELECT {fields} FROM {sobject} WHERE Id = {quote(record_id)}"
        return plain(next(iter(query(self.org.crm.conn, soql))))

    def edit_contact(self, item_id: str, **fields: object) -> None:
        row = self._row("Contact", item_id, "Id, AccountId, IsPersonAccount")
        person = bool(row.get("IsPersonAccount"))
        target = row["AccountId"] if person else item_id
        self._edit("Account" if person else "Contact", target, write_fields(fields, person=person))

    def _ids(self, kind: ItemKind, item_id: str) -> list[str]:
        if kind is ItemKind.EVENT and item_id.startswith("series:"):
            soql = (
                "SELECT Id, OwnerId, IsRecurrence2, Recurrence2PatternText, "
                "Recurrence2PatternStartDate, Recurrence2PatternTimeZone FROM Event "
                "WHERE IsRecurrence2 = true"
            )
            return [
                str(r["Id"])
                for r in query(self.org.crm.conn, soql)
                if series_key(plain(r)) == item_id
            ]
        return [item_id]

    def delete_item(self, kind: ItemKind, item_id: str) -> None:
        for record_id in self._ids(kind, item_id):
            if self.org.fake is not None:
                self.org.fake.org.remove(record_id)
            else:
                collections.delete(self.org.crm.conn, [record_id])

    def give_to_other_rep(self, kind: ItemKind, item_id: str) -> None:
        sobject = "Contact" if kind is ItemKind.CONTACT else "Event"
        for record_id in self._ids(kind, item_id):
            self._edit(sobject, record_id, {"OwnerId": self.other.id})

    def add_person_account(self, contact: Contact) -> str:
        values = {k: getattr(contact, k) for k in ("first_name", "last_name", "email")}
        fields = {**write_fields(values, person=True), "OwnerId": self.org.rep.id}
        (result,) = collections.create(self.org.crm.conn, "Account", [fields])
        assert result.error is None and result.id, result.error
        return str(self._row("Account", result.id, "Id, PersonContactId")["PersonContactId"])

    def move_occurrence(self, series_id: str, original: dt.datetime, to: dt.datetime) -> None:
        for record_id in self._ids(ItemKind.EVENT, series_id):
            row = self._row("Event", record_id, "Id, StartDateTime, EndDateTime")
            start, end = parse_instant(row["StartDateTime"]), parse_instant(row["EndDateTime"])
            if start == original:
                assert end is not None
                fields = {
                    "StartDateTime": wire_instant(to),
                    "EndDateTime": wire_instant(to + (end - start)),
                }
                self._edit("Event", record_id, fields)
                return
        raise AssertionError(f"no occurrence of {series_id} starts at {original}")

    def invalid_cursor(self) -> str:
        return "sfwm:not-a-time"


class TestSalesforceContract(CrmSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[SalesforceHarness]:
        org = org_harness()
        try:
            yield SalesforceHarness(org)
        finally:
            org.close()
