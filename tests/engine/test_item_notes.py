"""What a side notes about an item reaches the audit trail: a repair it made while reading,
or the rule that leaves the item out (a group card, a cancelled event), which for a synced
pair means the item is gone."""

from __future__ import annotations

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import Seen, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT
REPAIRED = "repaired: the vCard has no FN (the name is taken from N)"
GROUP = "a group card (KIND:group), not a contact"


class NotingSide(MemorySide):
    """A mail side whose reader notes repairs (``notes``) and leaves items out by a rule
    (``left_out``), as the DAV formats do."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.notes: dict[str, str] = {}
        self.left_out: dict[str, str] = {}

    def _seen(self, item_id: str) -> Seen:
        seen = super()._seen(item_id)
        if item_id in self.left_out:
            return Seen(seen.id, seen.version, None, seen.marker, note=self.left_out[item_id])
        return Seen(
            seen.id, seen.version, seen.record, seen.marker, note=self.notes.get(item_id, "")
        )


def _rules(state: MemoryState, action: str) -> list[str]:
    return [entry.rule for entry in state.audit if entry.action == action]


def test_a_repair_made_while_reading_is_in_the_audit_trail_of_the_create() -> None:
    crm, mail, state = MemorySide("c"), NotingSide("m"), MemoryState()
    item = mail.put(Contact(first_name="Henrik", last_name="Brandt"))
    mail.notes[item] = REPAIRED

    sync_kind(REP, KIND, crm, mail, state, Policy())

    assert len(crm.items) == 1
    (rule,) = _rules(state, "create")
    assert rule.startswith("new in mail") and REPAIRED in rule


def test_an_item_left_out_by_a_rule_is_skipped_with_that_rule_and_no_error() -> None:
    crm, mail, state = MemorySide("c"), NotingSide("m"), MemoryState()
    item = mail.put(Contact(last_name="Key Accounts Team"))
    mail.left_out[item] = GROUP

    report = sync_kind(REP, KIND, crm, mail, state, Policy())

    assert crm.items == {} and state.errors == [] and report.skipped == 1
    (rule,) = _rules(state, "skip")
    assert GROUP in rule and "skipped" in rule


def test_a_synced_item_later_left_out_is_deleted_per_the_delete_setting() -> None:
    for propagate, action, consequence in (
        (True, "delete", "treated as deleted"),
        (False, "relink", "deletions do not propagate"),
    ):
        crm, mail, state = MemorySide("c"), NotingSide("m"), MemoryState()
        item = mail.put(Contact(first_name="Ann", last_name="Lee"))
        policy = Policy(propagate_deletions=propagate)
        sync_kind(REP, KIND, crm, mail, state, policy)
        assert len(crm.items) == 1

        mail.left_out[item] = "cancelled on the mail server (STATUS:CANCELLED)"
        mail.touch(item)
        sync_kind(REP, KIND, crm, mail, state, policy)

        assert len(crm.items) == (0 if propagate else 1)
        # Not carried over: the pair stays, detached, so the CRM copy is never re-created.
        assert [link.detached for link in state.links(REP, KIND)] == (
            [] if propagate else [Side.MAIL]
        )
        (rule,) = _rules(state, action)
        assert "STATUS:CANCELLED" in rule and consequence in rule, rule
        assert state.errors == []


def test_a_left_out_item_and_a_crm_edit_keep_the_edit() -> None:
    """As with a deletion on one side and an edit on the other: the edit wins."""
    crm, mail, state = MemorySide("c"), NotingSide("m"), MemoryState()
    item = mail.put(Contact(first_name="Ann", last_name="Lee"))
    sync_kind(REP, KIND, crm, mail, state, Policy())
    (crm_id,) = crm.items
    crm.put(Contact(first_name="Ann", last_name="Lee", title="CFO"), crm_id)
    mail.left_out[item] = GROUP
    mail.touch(item)

    sync_kind(REP, KIND, crm, mail, state, Policy())

    assert [s.record.title for s in crm.items.values()] == ["CFO"]
    created = [i for i in mail.items if i != item]
    assert len(created) == 1 and mail.items[created[0]].record.title == "CFO"
    assert any(GROUP in rule for rule in _rules(state, "create"))
    assert len(state.links(REP, KIND)) == 1


def test_a_left_out_item_that_returns_syncs_again() -> None:
    """Detached because it was cancelled (deletions kept), it syncs once it reads again."""
    crm, mail, state = MemorySide("c"), NotingSide("m"), MemoryState()
    item = mail.put(Contact(first_name="Ann", last_name="Lee"))
    policy = Policy(propagate_deletions=False)
    sync_kind(REP, KIND, crm, mail, state, policy)
    mail.left_out[item] = GROUP
    mail.touch(item)
    sync_kind(REP, KIND, crm, mail, state, policy)

    del mail.left_out[item]
    mail.put(Contact(first_name="Ann", last_name="Lee", title="CFO"), item)
    sync_kind(REP, KIND, crm, mail, state, policy)

    assert [stored.record.title for stored in crm.items.values()] == ["CFO"]
    assert [link.detached for link in state.links(REP, KIND)] == [None]
