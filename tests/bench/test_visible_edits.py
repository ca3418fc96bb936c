"""bench/steady_visible.py's edits: each on an item of its own, on both sides and kinds, as
many as the reps' items allow (`--reps 1 --items 1 --edits 2` asked for a second contact
of a rep that had one and crashed), and more refused before seeding."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from crmsync.domain.records import ItemKind

BENCH = Path(__file__).parents[2] / "bench"


@pytest.fixture
def steady_visible(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/steady_visible.py, which imports ``common`` from its own folder."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("steady_visible")


def planned(module: ModuleType, reps: int, items: int, edits: int) -> list[Any]:
    """The edits planned on ``reps`` reps with ``items`` linked contacts and events each."""

    def links(rep_id: str, kind: ItemKind) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(crm_id=f"{rep_id}-{kind.value}-{n}", mail_id=f"/{rep_id}/{n}")
            for n in range(items)
        ]

    service = SimpleNamespace(store=SimpleNamespace(links=links))
    chosen = [SimpleNamespace(id=f"rep{r}") for r in range(reps)]
    return module.plan_edits(service, chosen, SimpleNamespace(seed=1, window=2.0, edits=edits))


def test_one_rep_with_one_contact_and_one_event_takes_two_edits(
    steady_visible: ModuleType,
) -> None:
    edits = planned(steady_visible, reps=1, items=1, edits=2)
    assert [(e.kind, e.crm_id, e.on_server) for e in edits] == [
        (ItemKind.CONTACT, "rep0-contact-0", True),
        (ItemKind.EVENT, "rep0-event-0", False),
    ]
    assert steady_visible.edits_problem(2, reps=1, items=1) is None


def test_every_item_takes_one_edit_on_both_sides_and_kinds(steady_visible: ModuleType) -> None:
    edits = planned(steady_visible, reps=3, items=2, edits=12)
    assert len({(e.rep_id, e.kind, e.crm_id) for e in edits}) == 12
    assert [e.rep_id for e in edits[:4]] == ["rep0", "rep1", "rep2", "rep0"]
    sides_and_kinds = {(e.on_server, e.kind) for e in edits}
    assert sides_and_kinds == {(s, k) for s in (True, False) for k in steady_visible.KINDS}


@pytest.mark.parametrize("edits", [0, 13])
def test_edits_beyond_the_items_are_refused_saying_how_many_fit(
    steady_visible: ModuleType, edits: int
) -> None:
    problem = steady_visible.edits_problem(edits, reps=3, items=2)
    assert problem is not None and "between 1 and 12" in problem
