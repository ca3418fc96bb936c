"""A deletion that is not carried over leaves the pair detached (issue 12, item 6).

Whatever a person later does to the surviving item (edit it, or nothing while the
server lists everything again, or the admin resets the rep), the deleted item never
comes back and nothing is written; once the survivor is deleted too, the pair is forgotten.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.settings import Direction
from crmsync.domain.sync import Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT
ANN = Contact(first_name="Ann", last_name="Lee")

people_later = st.lists(
    st.sampled_from(["edit", "touch", "full listing", "reset", "sync"]), max_size=8
)


def _reset(state: MemoryState) -> None:
    """What `StateStore.clear_rep` does: links and cursors go, detached links stay."""
    state.link_rows = {key: link for key, link in state.link_rows.items() if link.detached}
    state.cursors.clear()


def _detached_pair(gone: Side, policy: Policy) -> tuple[dict[Side, MemorySide], MemoryState, str]:
    sides = {Side.CRM: MemorySide("c"), Side.MAIL: MemorySide("m")}
    state = MemoryState()
    sides[Side.CRM].put(ANN)
    sync_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, Policy())
    (link,) = state.links(REP, KIND)
    sides[gone].remove(link.id_on(gone))
    sync_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, policy)
    return sides, state, link.id_on(gone.other)


@given(
    gone=st.sampled_from(list(Side)),
    direction_forbids=st.booleans(),
    actions=people_later,
    titles=st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), min_size=8, max_size=8),
)
def test_a_detached_survivor_is_never_synced_again(
    gone: Side, direction_forbids: bool, actions: list[str], titles: list[str]
) -> None:
    # Either deletions do not propagate, or they do but the direction forbids the write.
    policy = (
        Policy(
            propagate_deletions=True,
            direction=Direction.CRM_TO_MAIL if gone is Side.MAIL else Direction.MAIL_TO_CRM,
        )
        if direction_forbids
        else Policy(propagate_deletions=False)
    )
    sides, state, survivor = _detached_pair(gone, policy)
    assert [link.detached for link in state.links(REP, KIND)] == [gone]

    for action, title in zip(actions, titles, strict=False):
        if action == "edit":
            sides[gone.other].put(Contact(first_name="Ann", last_name="Lee", title=title), survivor)
        elif action == "touch":
            sides[gone.other].touch(survivor)
        elif action == "full listing":
            for side in sides.values():
                side.forget_history()
        elif action == "reset":
            _reset(state)
        report = sync_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, policy)
        assert report.total_writes == 0
        assert sides[gone].items == {}
        assert [link.detached for link in state.links(REP, KIND)] == [gone]

    sides[gone.other].remove(survivor)
    sync_kind(REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, policy)
    assert state.links(REP, KIND) == []
    assert any("detached" in entry.rule for entry in state.audit if entry.action == "unlink")


def test_a_new_item_is_still_created_beside_a_detached_pair() -> None:
    sides, state, _ = _detached_pair(Side.CRM, Policy(propagate_deletions=False))
    sides[Side.CRM].put(Contact(first_name="Bo", last_name="Ng"))
    report = sync_kind(
        REP, KIND, sides[Side.CRM], sides[Side.MAIL], state, Policy(propagate_deletions=False)
    )
    assert report.total_writes == 1
    assert sorted(str(link.detached) for link in state.links(REP, KIND)) == ["None", "crm"]
