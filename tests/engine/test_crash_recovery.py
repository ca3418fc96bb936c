"""A cycle that dies between a write and its link, then a person changes the target.

Each case: a synced world, a person's change on one side, a cycle that crashes at its
write to the other side (before the write reaches it, or just after it landed; nothing
after the crash reaches the state store), a person's change to the target, and a cycle
run to the end. The promise (DESIGN rule 5): no item twice, and the person's change made
after our write is the last word, whatever the conflict setting.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.settings import ConflictBehaviour
from crmsync.domain.sync import Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from tests.engine.memory import Crash, MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT
PEOPLE = ("Ann", "Bo", "Cy")


class World:
    def __init__(self, conflict: ConflictBehaviour, planned_ids: bool = True) -> None:
        self.sides = {
            Side.CRM: MemorySide("c", planned_ids=planned_ids),
            Side.MAIL: MemorySide("m", planned_ids=planned_ids),
        }
        self.state = MemoryState()
        self.policy = Policy(conflict=conflict)
        for name in PEOPLE:
            self.sides[Side.CRM].put(Contact(first_name=name, last_name="Lee"))
        self.sync()

    def sync(self) -> None:
        report = sync_kind(
            REP, KIND, self.sides[Side.CRM], self.sides[Side.MAIL], self.state, self.policy
        )
        assert not report.transient_failures and report.errors == 0

    def sync_and_crash(self, side: Side, at_write: int, landed: bool) -> list[str]:
        """A cycle that dies at its ``at_write``-th write to ``side``; the ids it wrote."""
        target = self.sides[side]
        target.crash_at_write, target.crash_after_landing = at_write, landed
        target.frozen, target.written_ids = self.state, []
        with pytest.raises(Crash):
            self.sync()
        target.crash_at_write, target.frozen, self.state.down = None, None, False
        return target.written_ids

    def partner(self, side: Side, item_id: str) -> str:
        (link,) = [link for link in self.state.links(REP, KIND) if link.id_on(side) == item_id]
        return link.id_on(side.other)

    def check_converged(self) -> None:
        links = self.state.links(REP, KIND)
        crm, mail = self.sides[Side.CRM].items, self.sides[Side.MAIL].items
        assert sorted(link.crm_id for link in links) == sorted(crm)
        assert sorted(link.mail_id for link in links) == sorted(mail)
        for link in links:
            assert crm[link.crm_id].record == mail[link.mail_id].record
        # No person-made item has two copies on a side.
        for side in Side:
            names = [s.record.first_name for s in self.sides[side].items.values()]
            assert len(names) == len(set(names)), names
        again = sync_kind(
            REP, KIND, self.sides[Side.CRM], self.sides[Side.MAIL], self.state, self.policy
        )
        assert again.total_writes == 0


def contact(name: str, title: str) -> Contact:
    return Contact(first_name=name, last_name="Lee", title=title)


@settings(max_examples=150, deadline=None)
@given(
    conflict=st.sampled_from(list(ConflictBehaviour)),
    source=st.sampled_from([Side.CRM, Side.MAIL]),
    change=st.sampled_from(["edit", "new"]),
    landed=st.booleans(),
    later=st.sampled_from(["edit", "delete", "nothing"]),
)
def test_a_change_made_after_a_crashed_write_is_the_last_word(
    conflict: ConflictBehaviour, source: Side, change: str, landed: bool, later: str
) -> None:
    world = World(conflict)
    target = source.other
    if change == "edit":
        item = sorted(world.sides[source].items)[0]
        name = world.sides[source].items[item].record.first_name
        world.sides[source].put(contact(name, "CFO"), item)
    else:
        name = "Dee"
        world.sides[source].put(contact(name, "CFO"))

    written = world.sync_and_crash(target, at_write=1, landed=landed)
    assert bool(written) is landed
    on_target = [i for i, s in world.sides[target].items.items() if s.record.first_name == name]
    expected: Contact | None = contact(name, "CFO")
    if later == "edit" and on_target:
        (target_id,) = on_target
        expected = contact(name, "CEO")
        world.sides[target].put(expected, target_id)
    elif later == "delete" and on_target:
        (target_id,) = on_target
        world.sides[target].remove(target_id)
        expected = None

    world.sync()

    world.check_converged()
    for side in Side:
        found = [s.record for s in world.sides[side].items.values() if s.record.first_name == name]
        assert found == ([] if expected is None else [expected]), (side, found)


def test_an_item_re_created_before_a_crash_is_not_created_again() -> None:
    """The issue's minimal case: E0 deleted in the CRM and edited in the calendar, E1
    edited in the CRM; the cycle re-creates E0 in the CRM and dies at E1's update."""
    for conflict in ConflictBehaviour:
        world = World(conflict)
        crm, mail = world.sides[Side.CRM], world.sides[Side.MAIL]
        e0, e1 = sorted(crm.items)[:2]
        e0_mail = world.partner(Side.CRM, e0)
        crm.remove(e0)
        mail.put(contact("Ann", "edited in the calendar"), e0_mail)
        crm.put(contact("Bo", "edited in the CRM"), e1)

        world.sync_and_crash(Side.MAIL, at_write=1, landed=False)
        assert [s.record.title for s in crm.items.values()].count("edited in the calendar") == 1

        world.sync()

        world.check_converged()
        assert [s.record for s in mail.items.values() if s.record.first_name == "Ann"] == [
            contact("Ann", "edited in the calendar")
        ]


def test_a_lost_link_of_a_re_created_item_is_found_by_its_marker() -> None:
    """Without intents (a state restored from a backup), the planner still pairs the item
    an earlier cycle re-created instead of creating its partner once more."""
    world = World(ConflictBehaviour.CRM_WINS)
    crm, mail = world.sides[Side.CRM], world.sides[Side.MAIL]
    e0 = sorted(crm.items)[0]
    e0_mail = world.partner(Side.CRM, e0)
    crm.remove(e0)
    mail.put(contact("Ann", "edited in the calendar"), e0_mail)
    assert world.sync_and_crash(Side.CRM, at_write=1, landed=True)  # the re-create landed
    world.state.intents.clear()

    world.sync()

    world.check_converged()
    assert len(mail.items) == len(crm.items) == len(PEOPLE)


def test_deleting_what_a_crashed_create_made_needs_a_planned_id() -> None:
    """Where the side picks ids at write time, a created item deleted before its link was
    saved cannot be told from a create that never happened: it is made again (once)."""
    world = World(ConflictBehaviour.CRM_WINS, planned_ids=False)
    crm, mail = world.sides[Side.CRM], world.sides[Side.MAIL]
    crm.put(contact("Dee", "new"))
    (made,) = world.sync_and_crash(Side.MAIL, at_write=1, landed=True)
    mail.remove(made)

    world.sync()

    world.check_converged()
    assert [s.record for s in mail.items.values() if s.record.first_name == "Dee"] == [
        contact("Dee", "new")
    ]


def test_intents_of_a_finished_cycle_are_all_settled() -> None:
    world = World(ConflictBehaviour.MAIL_WINS)
    crm = world.sides[Side.CRM]
    first = sorted(crm.items)[0]
    crm.put(replace(crm.items[first].record, title="CTO"), first)
    world.sync()
    assert world.state.intents == {}


def test_a_refused_cursor_tells_nothing_about_a_re_created_items_deletion() -> None:
    """The item re-created where the deleted one was (same id): when the side no longer
    accepts the crashed read's cursor, its deletion then is no news, and the edit that
    caused the re-create still wins."""
    world = World(ConflictBehaviour.CRM_WINS)
    crm, mail = world.sides[Side.CRM], world.sides[Side.MAIL]
    item = sorted(crm.items)[0]
    mail_id = world.partner(Side.CRM, item)
    mail.remove(mail_id)
    crm.put(contact("Ann", "edited in the CRM"), item)
    world.sync_and_crash(Side.MAIL, at_write=1, landed=False)
    mail.forget_history()

    world.sync()

    world.check_converged()
    assert [s.record for s in mail.items.values() if s.record.first_name == "Ann"] == [
        contact("Ann", "edited in the CRM")
    ]
