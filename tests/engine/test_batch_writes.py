"""A side offering `BatchWrites` gets a batch's writes in one call per operation; each
item's outcome then goes where the item-by-item write's would have gone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from crmsync.domain.records import Contact, ItemKind, Record
from crmsync.domain.settings import ConflictBehaviour
from crmsync.domain.sync import (
    AuthenticationFailed,
    ErrorType,
    RejectedWrite,
    ServerUnavailable,
    Side,
    SyncError,
    Written,
)
from crmsync.engine.cycle import sync_kind
from crmsync.engine.executor import Executor, LinkBatch
from crmsync.engine.planner import Policy
from tests.engine.memory import BatchingMemorySide, MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT


def people(side: MemorySide, count: int) -> list[str]:
    return [side.put(Contact(first_name=f"P{n}", last_name="Lee")) for n in range(count)]


def sync(crm: MemorySide, mail: MemorySide, state: MemoryState) -> None:
    report = sync_kind(REP, KIND, crm, mail, state, Policy(propagate_deletions=True))
    assert report.errors == 0 and not report.transient_failures


def test_creates_updates_and_deletes_go_in_one_call_per_batch() -> None:
    crm, mail, state = MemorySide("c"), BatchingMemorySide("m"), MemoryState()
    count = 2 * LinkBatch.SIZE + 50
    ids = people(crm, count)

    sync(crm, mail, state)

    assert mail.batch_calls == [("create", 200), ("create", 200), ("create", 50)]
    assert len(mail.items) == count == len(state.links(REP, KIND))
    assert {s.record for s in mail.items.values()} == {s.record for s in crm.items.values()}

    mail.batch_calls.clear()
    for item_id in ids[:3]:
        crm.put(Contact(first_name=crm.items[item_id].record.first_name, title="CEO"), item_id)
    for item_id in ids[3:5]:
        crm.remove(item_id)
    sync(crm, mail, state)

    assert sorted(mail.batch_calls) == [("delete", 2), ("update", 3)]
    assert len(mail.items) == count - 2
    assert sum(s.record.title == "CEO" for s in mail.items.values()) == 3
    mail.batch_calls.clear()
    sync(crm, mail, state)
    assert mail.batch_calls == []


class RefusingSide(BatchingMemorySide):
    """Refuses records of one name, as Salesforce refuses a record with a bad value."""

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        outcomes = super().create_many([i for i in items if i[0].first_name != "Bad"])
        refused = RejectedWrite("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Fix the name.")
        answered = iter(outcomes)
        return [refused if r.first_name == "Bad" else next(answered) for r, _ in items]


def test_a_refused_record_becomes_an_error_row_and_the_others_land() -> None:
    crm, mail, state = MemorySide("c"), RefusingSide("m"), MemoryState()
    people(crm, 4)
    bad = crm.put(Contact(first_name="Bad", last_name="Lee"))

    report = sync_kind(REP, KIND, crm, mail, state, Policy())

    assert report.errors == 1 and report.written_to(Side.MAIL) == 4
    (row,) = state.errors
    assert (row.item_id, row.error_type) == (bad, ErrorType.REJECTED_WRITE)
    assert row.operation == "create in mail server" and row.suggestion == "Fix the name."
    assert state.intents == {}  # a refusal is a known outcome: nothing left to settle
    assert [a.error for a in state.audit if a.crm_id == bad] == [
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    ]


class EditedWhileWriting(BatchingMemorySide):
    """A person edits one item between the cycle's read and its batch update."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.edit_first: tuple[str, Contact] | None = None

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        if self.edit_first is not None:
            (item_id, record), self.edit_first = self.edit_first, None
            self.put(record, item_id)
        return super().update_many(items)


def test_a_stale_version_in_a_batch_update_is_planned_again_for_that_item() -> None:
    crm, mail, state = MemorySide("c"), EditedWhileWriting("m"), MemoryState()
    ids = people(crm, 3)
    sync(crm, mail, state)
    for item_id in ids:
        crm.put(Contact(first_name=crm.items[item_id].record.first_name, title="CEO"), item_id)
    link = next(link for link in state.links(REP, KIND) if link.crm_id == ids[0])
    person = Contact(first_name="P0", last_name="Lee", email="p0@x.test")
    mail.edit_first = (link.mail_id, person)

    report = sync_kind(REP, KIND, crm, mail, state, Policy(conflict=ConflictBehaviour.MAIL_WINS))

    # Read again and decided afresh: the person's edit wins, and reaches the CRM.
    assert report.errors == 0 and not report.transient_failures
    assert mail.items[link.mail_id].record == crm.items[ids[0]].record == person
    assert sum(s.record.title == "CEO" for s in mail.items.values()) == 2
    assert mail.batch_calls == [("create", 3), ("update", 3)]


class DeadServer(BatchingMemorySide):
    def __init__(self, prefix: str, failure: SyncError) -> None:
        super().__init__(prefix)
        self.failure: SyncError | None = failure

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        if self.failure is not None:
            raise self.failure
        return super().create_many(items)


def test_a_whole_call_failing_stands_for_each_item_and_the_next_cycle_writes_them() -> None:
    crm, state = MemorySide("c"), MemoryState()
    mail = DeadServer("m", ServerUnavailable("503 from the server", "Wait."))
    people(crm, 10)

    with pytest.raises(ServerUnavailable, match="3 writes in a row"):
        sync_kind(REP, KIND, crm, mail, state, Policy())

    assert len(state.errors) == Executor.OUTAGE_LIMIT
    assert len(state.intents) == 10  # nothing known about the call: all settled next cycle
    mail.failure = None
    sync(crm, mail, state)
    assert len(mail.items) == 10 and state.intents == {}


def test_a_refused_sign_in_during_a_batch_call_stops_the_rep() -> None:
    crm, state = MemorySide("c"), MemoryState()
    mail = DeadServer("m", AuthenticationFailed("token refused", "Check the key."))
    people(crm, 3)

    with pytest.raises(AuthenticationFailed):
        sync_kind(REP, KIND, crm, mail, state, Policy())
    assert state.errors == []


class KeepsLess(BatchingMemorySide):
    """Stores contacts without their title, as Salesforce keeps no attendees."""

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        return super().create_many([(replace(r, title=""), m) for r, m in items])

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        return super().update_many([(i, v, replace(r, title="")) for i, v, r in items])


def test_creates_holding_other_content_are_brought_up_to_date_in_one_call() -> None:
    crm, mail, state = MemorySide("c"), KeepsLess("m"), MemoryState()
    for n in range(5):
        crm.put(Contact(first_name=f"P{n}", title="CEO"))

    sync_kind(REP, KIND, crm, mail, state, Policy())

    # What the single-item path does per create (update what differs), once per batch.
    assert mail.batch_calls == [("create", 5), ("update", 5)]
    assert len(state.links(REP, KIND)) == 5 and state.errors == []
    mail.batch_calls.clear()
    sync_kind(REP, KIND, crm, mail, state, Policy())
    assert mail.batch_calls == []
