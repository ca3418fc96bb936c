"""When a round's writes are followed by a settling round (`sync_kind`, `CarriesWrites`).

A side whose cursor answers for the writes made after it was read needs no second read;
a side that cannot (or a round writing more than `CARRIED_WRITES` items to it) still gets
the settling round, which reads both sides again from the cursors saved after the writes.
"""

from __future__ import annotations

from collections.abc import Collection

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import Side
from crmsync.engine.cycle import CARRIED_WRITES, sync_kind
from crmsync.engine.planner import Policy
from tests.engine.memory import MemorySide, MemoryState

REP = "rep-1"
KIND = ItemKind.CONTACT


class ReadCounting(MemorySide):
    """A `MemorySide` that counts its reads."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.reads = 0

    def changes(self, cursor, known):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().changes(cursor, known)


class Carrying(ReadCounting):
    """A side whose cursor carries the ids written after it (as a DAV collection's does)."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.carried: list[list[str]] = []

    def cursor_after_writes(self, cursor: str | None, written: Collection[str]) -> str | None:
        self.carried.append(sorted(written))
        return cursor


def test_a_round_whose_written_sides_carry_their_writes_is_not_read_again() -> None:
    crm, mail, state = Carrying("c"), Carrying("m"), MemoryState()
    ids = [crm.put(Contact(first_name=f"P{n}")) for n in range(3)]

    report = sync_kind(REP, KIND, crm, mail, state, Policy())

    assert report.written_to(Side.MAIL) == 3
    assert (crm.reads, mail.reads) == (1, 1)
    assert mail.carried == [sorted(mail.items)] and crm.carried == []
    # Edits on both sides: each side carries the ids written to it, still one read each.
    crm.put(Contact(first_name="P0 edited"), ids[0])
    (link,) = [k for k in state.links(REP, KIND) if k.crm_id == ids[1]]
    mail.put(Contact(first_name="P1 edited"), link.mail_id)
    report = sync_kind(REP, KIND, crm, mail, state, Policy())
    assert report.written_to(Side.MAIL) == 1 and report.written_to(Side.CRM) == 1
    assert (crm.reads, mail.reads) == (2, 2)
    assert crm.carried == [[ids[1]]] and len(mail.carried) == 2


def test_a_written_side_that_cannot_carry_its_writes_gets_a_settling_round() -> None:
    crm, mail, state = Carrying("c"), ReadCounting("m"), MemoryState()
    for n in range(3):
        crm.put(Contact(first_name=f"P{n}"))

    sync_kind(REP, KIND, crm, mail, state, Policy())

    assert (crm.reads, mail.reads) == (2, 2)


def test_more_writes_than_a_cursor_carries_get_a_settling_round() -> None:
    crm, mail, state = Carrying("c"), Carrying("m"), MemoryState()
    for n in range(CARRIED_WRITES + 1):
        crm.put(Contact(first_name=f"P{n}"))

    sync_kind(REP, KIND, crm, mail, state, Policy())

    assert (crm.reads, mail.reads) == (2, 2)
    assert mail.carried == []


def test_a_round_cut_short_keeps_its_cursors_answering_for_what_it_linked() -> None:
    crm, mail, state = Carrying("c"), Carrying("m"), MemoryState()
    ids = [crm.put(Contact(first_name=f"P{n}")) for n in range(3)]
    mail.fail_next_writes = 1  # a passing failure: the round's changes are read again

    report = sync_kind(REP, KIND, crm, mail, state, Policy())

    assert report.transient_failures == 1 and report.written_to(Side.MAIL) == 2
    # The cursors read before are kept, answering for both ends of the two pairs linked.
    linked = state.links(REP, KIND)
    assert crm.carried == [sorted(k.crm_id for k in linked)] and len(linked) == 2
    assert mail.carried == [sorted(k.mail_id for k in linked)]
    assert set(ids) > {k.crm_id for k in linked}
