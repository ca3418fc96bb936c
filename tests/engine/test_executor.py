"""Named edge cases of execution, on in-memory sides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import AuditEntry, ErrorType, ServerUnavailable, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.executor import Executor, LinkBatch
from crmsync.engine.planner import DeleteGuard, Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT


def test_a_dead_server_stops_the_cycle_after_a_few_failed_writes() -> None:
    crm, mail, state = MemorySide("c"), MemorySide("m"), MemoryState()
    for n in range(10):
        crm.put(Contact(first_name=f"P{n}"))
    mail.fail_next_writes = 100

    with pytest.raises(ServerUnavailable, match="3 writes in a row"):
        sync_kind(REP, KIND, crm, mail, state, Policy())

    assert len(state.errors) == Executor.OUTAGE_LIMIT
    assert state.cursors == {}  # everything is read and planned again next cycle
    mail.fail_next_writes = 0
    report = sync_kind(REP, KIND, crm, mail, state, Policy())
    assert report.written_to(Side.MAIL) == 10 and len(mail.items) == 10


def test_an_item_failing_alone_does_not_stop_the_others() -> None:
    crm, mail, state = MemorySide("c"), MemorySide("m"), MemoryState()
    for n in range(10):
        crm.put(Contact(first_name=f"P{n}"))
    mail.fail_next_writes = Executor.OUTAGE_LIMIT - 1

    report = sync_kind(REP, KIND, crm, mail, state, Policy())

    assert report.transient_failures == Executor.OUTAGE_LIMIT - 1
    assert len(mail.items) == 10 - (Executor.OUTAGE_LIMIT - 1)


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def apply_links(self, rep_id, kind, saves, drops, settled=()) -> None:  # type: ignore[override]
        self.batches.append(len(saves) + len(drops))
        super().apply_links(rep_id, kind, saves, drops, settled)


def test_links_reach_the_store_in_batches_and_at_the_end() -> None:
    state = CountingState()
    crm, mail = MemorySide("c"), MemorySide("m")
    for n in range(LinkBatch.SIZE + 5):
        crm.put(Contact(first_name=f"P{n}"))

    sync_kind(REP, KIND, crm, mail, state, Policy())

    assert state.batches == [LinkBatch.SIZE, 5]
    assert len(state.links(REP, KIND)) == LinkBatch.SIZE + 5


@pytest.mark.parametrize(
    ("deletes", "linked", "trips"),
    [
        (5, 6, False),
        (6, 100, False),
        (11, 100, True),
        (6, 50, True),
        (6, 60, False),
        (51, 10_000, True),
        (50, 10_000, False),
        (0, 0, False),
    ],
)
def test_the_mass_delete_guard_thresholds(deletes: int, linked: int, trips: bool) -> None:
    assert DeleteGuard(percent=10, count=50, minimum=5).trips(deletes, linked) is trips


def test_a_mass_deletion_is_held_until_confirmed() -> None:
    crm, mail, state = MemorySide("c"), MemorySide("m"), MemoryState()
    ids = [crm.put(Contact(first_name=f"P{n}")) for n in range(20)]
    policy = Policy(propagate_deletions=True)
    sync_kind(REP, KIND, crm, mail, state, policy)
    cursors = dict(state.cursors)
    for item_id in ids[:8]:
        crm.remove(item_id)

    held = sync_kind(REP, KIND, crm, mail, state, policy)

    assert held.held_deletes == 8 and held.written_to(Side.MAIL) == 0
    assert len(mail.items) == 20 and state.cursors == cursors
    (row,) = state.errors
    assert row.error_type is ErrorType.MASS_DELETE and "confirm-deletes" in row.suggestion
    # Held again on the next cycle, then carried out once an admin confirms.
    assert sync_kind(REP, KIND, crm, mail, state, policy).held_deletes == 8
    confirmed = sync_kind(REP, KIND, crm, mail, state, replace(policy, delete_guard=None))
    assert confirmed.written_to(Side.MAIL) == 8 and len(mail.items) == 12


class AuditWrites(MemoryState):
    """Notes which call brought each batch of audit entries (the state's transactions)."""

    def __init__(self) -> None:
        super().__init__()
        self.audit_writes: list[tuple[str, int]] = []

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        self.audit_writes.append(("save_cursors", len(audit)))
        super().save_cursors(rep_id, kind, cursors, audit)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.audit_writes.append(("record_audit", len(entries)))
        super().record_audit(entries)


def test_a_rounds_audit_entries_go_with_its_cursors_and_a_failed_rounds_on_their_own() -> None:
    crm, mail, state = MemorySide("c"), MemorySide("m"), AuditWrites()
    for n in range(3):
        crm.put(Contact(first_name=f"P{n}"))
    sync_kind(REP, KIND, crm, mail, state, Policy())
    # The writing round's cursors and entries, then the settling round's cursor.
    assert state.audit_writes == [("save_cursors", 3), ("save_cursors", 0)]

    state.audit_writes.clear()
    crm.put(Contact(first_name="P3"))
    mail.fail_next_writes = 1  # a passing failure: the round keeps its cursors
    assert sync_kind(REP, KIND, crm, mail, state, Policy()).transient_failures == 1
    assert state.audit_writes == [("record_audit", 1)]


def test_every_action_and_skip_lands_in_the_audit_trail_with_both_ids() -> None:
    crm, mail, state = MemorySide("c"), MemorySide("m"), MemoryState()
    ada = crm.put(Contact(first_name="Ada"))
    policy = Policy(out_of_scope=lambda side, r: "filtered" if r.first_name == "Bo" else None)
    crm.put(Contact(first_name="Bo"))

    sync_kind(REP, KIND, crm, mail, state, policy)

    (created,) = [e for e in state.audit if e.action == "create"]
    assert (created.crm_id, created.target, created.rule) == (ada, Side.MAIL, "new in crm")
    assert created.mail_id in mail.items
    (skipped,) = [e for e in state.audit if e.action == "skip"]
    assert skipped.rule == "filtered" and skipped.mail_id is None
