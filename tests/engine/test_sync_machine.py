"""Hypothesis state machine over two in-memory sides: the planner and executor together.

People create, edit, delete and "touch" (new version, same content) items on either side
between syncs; writes may fail for a passing reason. After every successful sync:
both sides converge, a second sync writes nothing, and no edit is lost except to the
configured conflict behaviour.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.settings import ConflictBehaviour
from crmsync.domain.sync import ServerUnavailable, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.executor import KindReport
from crmsync.engine.hashing import content_hash
from crmsync.engine.planner import Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT

contacts = st.builds(
    Contact,
    first_name=st.sampled_from(["Ann", "Bo", "Cy"]),
    last_name=st.sampled_from(["Lee", "Ng"]),
    email=st.sampled_from(["", "a@x.test", "b@x.test"]),
    title=st.text(alphabet="xyz", max_size=2),
)
sides = st.sampled_from([Side.CRM, Side.MAIL])


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sides = {Side.CRM: MemorySide("c"), Side.MAIL: MemorySide("m")}
        self.state = MemoryState()
        self.conflict = ConflictBehaviour.CRM_WINS
        # What people did since the last complete sync: (side, id) -> record or None.
        self.edits: dict[tuple[Side, str], Contact | None] = {}
        self.synced_once = False
        self.outage_since_check = False

    @rule(conflict=st.sampled_from(list(ConflictBehaviour)))
    def choose_conflict(self, conflict: ConflictBehaviour) -> None:
        self.conflict = conflict

    @rule(side=sides, record=contacts)
    def create(self, side: Side, record: Contact) -> None:
        item_id = self.sides[side].put(record)
        self.edits[side, item_id] = record

    @rule(side=sides, record=contacts, data=st.data())
    def edit(self, side: Side, record: Contact, data: st.DataObject) -> None:
        items = sorted(self.sides[side].items)
        if items:
            item_id = data.draw(st.sampled_from(items))
            if self.sides[side].items[item_id].record == record:
                self.sides[side].touch(item_id)  # saving without a change is no edit
                return
            self.sides[side].put(record, item_id)
            self.edits[side, item_id] = record

    @rule(side=sides, data=st.data())
    def delete(self, side: Side, data: st.DataObject) -> None:
        items = sorted(self.sides[side].items)
        if items:
            item_id = data.draw(st.sampled_from(items))
            self.sides[side].remove(item_id)
            self.edits[side, item_id] = None

    @rule(side=sides, data=st.data())
    def touch(self, side: Side, data: st.DataObject) -> None:
        items = sorted(self.sides[side].items)
        if items:
            self.sides[side].touch(data.draw(st.sampled_from(items)))

    @rule(side=sides, failures=st.integers(1, 4))
    def sync_with_outage(self, side: Side, failures: int) -> None:
        """Some writes fail for a passing reason; the next syncs must repair everything."""
        self.sides[side].fail_next_writes = failures
        self.sync()
        self.sides[side].fail_next_writes = 0

    @rule()
    def sync(self) -> None:
        before = {side: dict(s.items) for side, s in self.sides.items()}
        report = self._sync()
        if report.transient_failures:
            # Part of the edits went through: which ones is no longer a simple model.
            self.outage_since_check = True
            return
        self._check_converged()
        if not self.outage_since_check:
            self._check_no_edit_lost(before)
        self.edits.clear()
        self.outage_since_check = False
        again = self._sync()
        assert again.total_writes == 0, again.writes
        assert not again.transient_failures
        self.synced_once = True

    @precondition(lambda self: self.synced_once)
    @invariant()
    def links_point_at_distinct_items(self) -> None:
        links = self.state.links(REP, KIND)
        assert len({link.mail_id for link in links}) == len(links)

    def _sync(self) -> KindReport:
        policy = Policy(conflict=self.conflict, propagate_deletions=True)
        try:
            return sync_kind(
                REP, KIND, self.sides[Side.CRM], self.sides[Side.MAIL], self.state, policy
            )
        except ServerUnavailable:
            # Too many writes failed in a row: the cycle stopped early, like an outage.
            return KindReport(KIND, transient_failures=1)

    def _check_converged(self) -> None:
        links = self.state.links(REP, KIND)
        crm, mail = self.sides[Side.CRM].items, self.sides[Side.MAIL].items
        assert {link.crm_id for link in links} == set(crm)
        assert {link.mail_id for link in links} == set(mail)
        for link in links:
            assert crm[link.crm_id].record == mail[link.mail_id].record

    def _check_no_edit_lost(self, before) -> None:
        partner = {}
        for link in self.state.links(REP, KIND):
            partner[Side.CRM, link.crm_id] = (Side.MAIL, link.mail_id)
            partner[Side.MAIL, link.mail_id] = (Side.CRM, link.crm_id)
        winner = Side.CRM if self.conflict is ConflictBehaviour.CRM_WINS else Side.MAIL
        for (side, item_id), record in self.edits.items():
            if record is None or item_id not in before[side]:
                continue  # deleted, or deleted again before the sync
            if item_id not in self.sides[side].items:
                # Its partner was deleted: only an edit on the winning side could lose it.
                continue
            other = partner[side, item_id]
            other_edit = self.edits.get(other)
            value = self.sides[side].items[item_id].record
            if other_edit is not None and content_hash(other_edit) != content_hash(record):
                expected = record if side is winner else other_edit
                assert value == expected
            else:
                assert value == record


SyncMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestSyncMachine = SyncMachine.TestCase
