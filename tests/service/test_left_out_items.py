"""Items that are no live contact or event, end to end on Radicale and Xandikos: a
cancelled event and a group card never reach the CRM as live records, and the audit trail
says what became of them (skipped, or, once synced, deleted per the delete setting)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import EventSettings
from crmsync.domain.sync import AuditEntry
from tests.fidelity import fixture_text
from tests.servers import DavServerInfo, dav_server
from tests.service.test_bad_input import client_event
from tests.service.worlds import BOTH_WAYS, World

__all__ = ["dav_server"]

CANCELLED = "STATUS:CANCELLED"


@pytest.fixture
def world(dav_server: DavServerInfo, tmp_path: Path) -> Iterator[World]:
    w = World(dav_server, tmp_path / "home", BOTH_WAYS)
    yield w
    w.close()


def _history(world: World, kind: ItemKind, name: str) -> list[AuditEntry]:
    return world.service.store.item_history(world.collection(kind).path + name)


def _cancelled(i: int) -> str:
    return client_event(i).replace("SUMMARY:", f"{CANCELLED}\r\nSUMMARY:")


def test_a_new_cancelled_event_and_a_group_card_are_skipped_with_their_rule(world: World) -> None:
    world.put_raw(ItemKind.EVENT, "cancelled", _cancelled(1))
    world.put_raw(ItemKind.CONTACT, "group", fixture_text("contacts/vcard40_kind_group.vcf"))

    world.sync()

    assert world.crm_records(ItemKind.EVENT) == []
    assert world.crm_records(ItemKind.CONTACT) == []
    assert world.service.store.errors() == []
    for kind, name, rule in (
        (ItemKind.EVENT, "cancelled.ics", CANCELLED),
        (ItemKind.CONTACT, "group.vcf", "KIND:group"),
    ):
        (entry,) = _history(world, kind, name)
        assert entry.action == "skip" and rule in entry.rule and "skipped" in entry.rule


@pytest.mark.parametrize("propagate", [True, False], ids=["deletions-propagate", "kept"])
def test_a_synced_event_cancelled_later_is_deleted_per_the_delete_setting(
    dav_server: DavServerInfo, tmp_path: Path, propagate: bool
) -> None:
    config = replace(
        BOTH_WAYS, events=EventSettings(sync_private=True, delete_synced_events=propagate)
    )
    world = World(dav_server, tmp_path / "home", config)
    try:
        world.put_raw(ItemKind.EVENT, "meeting", client_event(2))
        world.sync()
        assert [e.subject for e in world.crm_records(ItemKind.EVENT)] == ["Client call 2"]

        world.put_raw(ItemKind.EVENT, "meeting", _cancelled(2))
        world.sync()

        kept = world.crm_records(ItemKind.EVENT)
        assert [e.subject for e in kept] == ([] if propagate else ["Client call 2"])
        last = _history(world, ItemKind.EVENT, "meeting.ics")[-1]
        assert last.action == ("delete" if propagate else "relink")
        assert CANCELLED in last.rule and "treated as deleted" in last.rule
        assert world.service.store.errors() == []
        assert world.sync().writes == 0
    finally:
        world.close()
