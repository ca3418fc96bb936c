"""The built-in CRM passes the CRM-side contract (`tests.crm.contract`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest

from crmsync.crm.builtin import BuiltinCrm, OwnedKind
from crmsync.domain.records import Contact, EventTiming, ItemKind, Occurrence
from crmsync.engine.ports import ItemSide
from tests.crm.contract import REP_ZONE, CrmSideContract


class BuiltinHarness:
    def __init__(self, crm: BuiltinCrm) -> None:
        self.crm = crm
        self.ann = crm.create_user("ann@example.com", "Ann", time_zone=REP_ZONE)
        self.bob = crm.create_user("bob@example.com", "Bob")
        self.contacts: ItemSide = crm.side(self.ann.id, ItemKind.CONTACT)
        self.events: ItemSide = crm.side(self.ann.id, ItemKind.EVENT)
        self.other_contacts: ItemSide = crm.side(self.bob.id, ItemKind.CONTACT)

    def request_count(self) -> int:
        return 0

    def edit_contact(self, item_id: str, **fields: object) -> None:
        stored = self.crm.get_contact(item_id)
        self.crm.update_contact(item_id, dataclasses.replace(stored.record, **fields))  # type: ignore[arg-type]

    def delete_item(self, kind: ItemKind, item_id: str) -> None:
        self.crm.delete_record(OwnedKind(kind.value), item_id)

    def give_to_other_rep(self, kind: ItemKind, item_id: str) -> None:
        stored = self.crm.get_record(OwnedKind(kind.value), item_id)
        self.crm.update_record(OwnedKind(kind.value), item_id, stored.record, owner_id=self.bob.id)

    def add_person_account(self, contact: Contact) -> str:
        record = dataclasses.replace(contact, is_person_account=True)
        return self.crm.create_contact(self.ann.id, record).id

    def move_occurrence(self, series_id: str, original: dt.datetime, to: dt.datetime) -> None:
        stored = self.crm.get_event(series_id)
        event = stored.record
        assert event.recurrence is not None
        length = event.timing.end - event.timing.start
        moved = Occurrence(
            original, EventTiming(to, to + length, event.timing.tzid), event.subject, event.location
        )
        rec = dataclasses.replace(
            event.recurrence,
            overrides=(
                *[o for o in event.recurrence.overrides if o.recurrence_id != original],
                moved,
            ),
        )
        self.crm.update_event(series_id, dataclasses.replace(event, recurrence=rec))

    def invalid_cursor(self) -> str:
        return "not-a-stamp"


class TestBuiltinCrmContract(CrmSideContract):
    @pytest.fixture
    def harness(self, crm: BuiltinCrm) -> Iterator[BuiltinHarness]:
        yield BuiltinHarness(crm)
