"""A preview lists exactly the actions the next cycle performs (Hypothesis property)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.settings import ConflictBehaviour
from crmsync.domain.sync import Side
from crmsync.engine.cycle import preview_kind, sync_kind
from crmsync.engine.planner import Action, Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT

contacts = st.builds(
    Contact,
    first_name=st.sampled_from(["Ann", "Bo"]),
    email=st.sampled_from(["", "a@x.test", "b@x.test"]),
)
edits = st.lists(
    st.tuples(
        st.sampled_from(["create", "edit", "delete"]),
        st.sampled_from([Side.CRM, Side.MAIL]),
        contacts,
        st.integers(0, 10),
    ),
    max_size=12,
)


def apply(sides: dict[Side, MemorySide], history) -> None:
    for op, side, record, pick in history:
        items = sorted(sides[side].items)
        if op == "create" or not items:
            sides[side].put(record)
        elif op == "edit":
            sides[side].put(record, items[pick % len(items)])
        else:
            sides[side].remove(items[pick % len(items)])


@settings(max_examples=150, deadline=None)
@given(edits, edits, st.sampled_from(list(ConflictBehaviour)), st.booleans())
def test_the_preview_is_what_the_cycle_does(before, after, conflict, deletions) -> None:
    sides = {Side.CRM: MemorySide("c"), Side.MAIL: MemorySide("m")}
    state = MemoryState()
    policy = Policy(conflict=conflict, propagate_deletions=deletions)
    apply(sides, before)
    sync_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, policy)
    apply(sides, after)
    writes_before = {side: s.writes for side, s in sides.items()}

    preview = preview_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, policy)
    assert {side: s.writes for side, s in sides.items()} == writes_before  # wrote nothing

    done: list[Action] = []
    sync_kind(
        REP,
        KIND,
        sides[Side.CRM],
        sides[Side.MAIL],
        state,
        policy,
        on_action=lambda action, error: done.append(action),
    )
    assert done == preview
