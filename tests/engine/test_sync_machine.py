"""Hypothesis state machine over two in-memory sides: the planner and executor together.

People create, edit, delete and "touch" (new version, same content) items on either side
between syncs, or put back a stale copy (an earlier state of an item, version and all);
writes may fail for a passing reason, and a cycle may crash at any write, before it
reaches the side or just after it landed (nothing after the crash reaches the state
store), with either kind of cursor: a cycle cut short must leave cursors that answer for
what it linked, or a content-state cursor hides those items' later deletion for good.
Either side may take a batch's writes in one call per operation (as Salesforce's
collections do) or one by one, and its cursors may name positions in a log or content
states (as Xandikos' sync tokens do). After every successful sync: both sides converge, a
second sync (where one follows) writes nothing, no item exists twice on a side, and no
edit is lost except to the configured conflict behaviour; an edit or deletion a person
made after a crashed cycle's write landed wins.
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.settings import ConflictBehaviour
from crmsync.domain.sync import ServerUnavailable, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.executor import KindReport
from crmsync.engine.hashing import content_hash
from crmsync.engine.planner import Policy
from tests.engine.memory import (
    BatchingMemorySide,
    ContentStateSide,
    Crash,
    MemorySide,
    MemoryState,
)

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
side_kinds = st.sampled_from([MemorySide, BatchingMemorySide, ContentStateSide])


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
        # Which person-made item each item descends from (engine-made ones inherit their
        # source's through the marker): two live items of one origin on a side are a duplicate.
        self.origins: dict[tuple[Side, str], tuple[Side, str]] = {}
        # After a crash, a person's change to an item the crashed write landed on:
        # (side, id) -> the record they left, or None for a deletion.
        self.after_crash: dict[tuple[Side, str], Contact | None] = {}

    @initialize(crm_kind=side_kinds, mail_kind=side_kinds)
    def choose_sides(self, crm_kind: type[MemorySide], mail_kind: type[MemorySide]) -> None:
        """Either side may take a batch's writes in one call (`BatchWrites`) or one by one,
        and its cursors may name content states (`ContentStateSide`)."""
        self.sides = {Side.CRM: crm_kind("c"), Side.MAIL: mail_kind("m")}

    @rule(conflict=st.sampled_from(list(ConflictBehaviour)))
    def choose_conflict(self, conflict: ConflictBehaviour) -> None:
        self.conflict = conflict

    @rule(side=sides, record=contacts)
    def create(self, side: Side, record: Contact) -> None:
        item_id = self.sides[side].put(record)
        self.edits[side, item_id] = record
        self.origins[side, item_id] = (side, item_id)
        self.after_crash.clear()

    @rule(side=sides, record=contacts, data=st.data())
    def edit(self, side: Side, record: Contact, data: st.DataObject) -> None:
        items = sorted(self.sides[side].items)
        if items:
            item_id = data.draw(st.sampled_from(items))
            if self.sides[side].items[item_id].record == record:
                self.sides[side].touch(item_id)  # saving without a change is no edit
                return
            self.sides[side].put(record, item_id)
            self._person_left(side, item_id, record)

    @rule(side=sides, data=st.data())
    def put_back_stale_copy(self, side: Side, data: st.DataObject) -> None:
        """A client saves its stale copy over an item: an earlier state of it, with the
        version (ETag) it had then. From a content-state cursor read at that state, the
        item has not changed at all."""
        target = self.sides[side]
        items = sorted(target.items)
        if not items:
            return
        item_id = data.draw(st.sampled_from(items))
        now = target.items[item_id]
        earlier = [stored for stored in target.history[item_id] if stored.version != now.version]
        if earlier:
            stored = data.draw(st.sampled_from(earlier))
            target.put_back(item_id, stored)
            if stored.record != now.record:  # else only the version changed: a touch
                self._person_left(side, item_id, stored.record)

    @rule(side=sides, data=st.data())
    def delete(self, side: Side, data: st.DataObject) -> None:
        items = sorted(self.sides[side].items)
        if items:
            item_id = data.draw(st.sampled_from(items))
            self.sides[side].remove(item_id)
            self.edits[side, item_id] = None
            self.after_crash.clear()

    def _person_left(self, side: Side, item_id: str, record: Contact) -> None:
        """Bookkeeping of a person's edit of a linked or new item. One back at the content
        last synced is no edit at all (the planner compares content with the link's)."""
        synced = [link for link in self.state.links(REP, KIND) if link.id_on(side) == item_id]
        if synced and synced[0].hash_on(side) == content_hash(record):
            self.edits.pop((side, item_id), None)
        else:
            self.edits[side, item_id] = record
        self.after_crash.clear()

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

    @rule(
        side=sides,
        at_write=st.integers(1, 3),
        landed=st.booleans(),
        then=st.sampled_from(["nothing", "edit", "delete"]),
        record=contacts,
        data=st.data(),
    )
    def crash_between_write_and_link(
        self,
        side: Side,
        at_write: int,
        landed: bool,
        then: str,
        record: Contact,
        data: st.DataObject,
    ) -> None:
        """The cycle dies at a write to ``side``; then a person may change what it wrote."""
        target = self.sides[side]
        target.crash_at_write, target.crash_after_landing = at_write, landed
        target.frozen, target.written_ids = self.state, []
        before = {side: dict(s.items) for side, s in self.sides.items()}
        after_crash, self.after_crash = self.after_crash, {}
        try:
            report = self._sync()
        except Crash:
            report = None
            self.outage_since_check = True
        finally:
            target.crash_at_write, target.frozen, self.state.down = None, None, False
        if report is not None:  # it had fewer writes: no crash
            self._verify(report, before, after_crash)
            return
        self._note_origins()
        written = sorted(set(target.written_ids) & set(target.items))
        if then == "nothing" or not written:
            return
        item_id = data.draw(st.sampled_from(written))
        if then == "delete":
            target.remove(item_id)
            self.after_crash = {(side, item_id): None}
        else:
            earlier = before[side].get(item_id)
            if record in (target.items[item_id].record, earlier and earlier.record):
                # Back to what it held before our write: a server rewriting its etag looks
                # the same, and crmsync then takes the write as never landed (see
                # crmsync.engine.intents). Only a real change is modelled here.
                return
            target.put(record, item_id)
            self.after_crash = {(side, item_id): record}
        self.edits[side, item_id] = self.after_crash[side, item_id]

    @rule(look_again=st.booleans())
    def sync(self, look_again: bool = True) -> None:
        """A sync, checked; ``look_again`` syncs once more, which must write nothing. That
        second read lies after the first one's writes, so without it people act from the
        cursors the cycle saved, as between the cycles of the service."""
        before = {side: dict(s.items) for side, s in self.sides.items()}
        after_crash, self.after_crash = self.after_crash, {}
        self._verify(self._sync(), before, after_crash, look_again)

    def _verify(
        self,
        report: KindReport,
        before: dict[Side, dict],
        after_crash: dict[tuple[Side, str], Contact | None],
        look_again: bool = True,
    ) -> None:
        """The checks after a sync that ran to its end."""
        self._note_origins()
        if report.transient_failures:
            # Part of the edits went through: which ones is no longer a simple model.
            self.outage_since_check = True
            self.after_crash = after_crash
            return
        self._check_converged()
        self._check_no_duplicates()
        self._check_later_change_won(after_crash)
        if not self.outage_since_check:
            self._check_no_edit_lost(before)
        self.edits.clear()
        self.outage_since_check = False
        self.synced_once = True
        if look_again:
            again = self._sync()
            assert again.total_writes == 0, again.writes
            assert not again.transient_failures

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

    def _note_origins(self) -> None:
        for side, items in ((side, self.sides[side].items) for side in (Side.CRM, Side.MAIL)):
            for item_id, stored in items.items():
                if (side, item_id) not in self.origins and stored.marker is not None:
                    source = self.origins.get((side.other, stored.marker))
                    assert source is not None, f"{item_id} made from unknown {stored.marker}"
                    self.origins[side, item_id] = source

    def _check_no_duplicates(self) -> None:
        for side in (Side.CRM, Side.MAIL):
            seen: dict[tuple[Side, str], str] = {}
            for item_id in sorted(self.sides[side].items):
                origin = self.origins[side, item_id]
                assert origin not in seen, f"{item_id} duplicates {seen[origin]} on {side}"
                seen[origin] = item_id

    def _check_later_change_won(self, after_crash: dict[tuple[Side, str], Contact | None]) -> None:
        """A change made after a crashed cycle's write landed is the last word on its pair."""
        links = self.state.links(REP, KIND)
        for (side, item_id), record in after_crash.items():
            event(f"a {'deletion' if record is None else 'edit'} after a crash")
            items = self.sides[side].items
            if record is None:
                assert item_id not in items
                assert all(link.id_on(side) != item_id for link in links)
                continue
            (link,) = [link for link in links if link.id_on(side) == item_id]
            partner = self.sides[side.other].items[link.id_on(side.other)]
            assert items[item_id].record == record == partner.record

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
