"""A deletion that is not carried over leaves the pair detached, on every DAV server.

The quirk (issue 12, item 6): with deletions not propagated (the contacts default), a
contact deleted in the CRM came back with a new id at the rep's next edit of the card, at
the next full listing (every cycle on a server without sync tokens), or after a reset.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from crmsync.domain.settings import ContactSettings, EventSettings
from crmsync.domain.sync import Side
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World, at

__all__ = ["dav_server"]


def _rules(world: World, item_id: str) -> list[str]:
    return [f"{entry.action}: {entry.rule}" for entry in world.service.store.item_history(item_id)]


def test_a_contact_deleted_in_the_crm_never_comes_back(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    config = replace(BOTH_WAYS, contacts=ContactSettings(propagate_deletions=False))
    world = World(dav_server, tmp_path / "home", config)
    try:
        ann = world.crm.create_contact(world.rep.id, Contact(first_name="Ann", last_name="Lee"))
        bob = world.crm.create_contact(world.rep.id, Contact(first_name="Bob", last_name="Ray"))
        world.sync()
        world.crm.delete_contact(ann.id)
        world.sync()
        (card,) = [s for s in world.mail_items(ItemKind.CONTACT).values() if s.marker == ann.id]
        assert any("deletions do not propagate" in r for r in _rules(world, ann.id))

        # The rep edits the card that stayed: it is not imported again.
        assert card.record is not None
        world.collection(ItemKind.CONTACT).update(
            card.id, card.version, replace(card.record, title="CFO")
        )
        assert world.sync().writes == 0
        # A full listing (every cycle on a server without sync tokens) neither.
        world.service.store.save_cursor(world.rep.id, ItemKind.CONTACT, Side.MAIL, None)
        assert world.sync().writes == 0
        # Nor a reset.
        world.service.mark_for_reset(world.rep)
        world.sync()
        assert [c.first_name for c in world.crm_records(ItemKind.CONTACT)] == ["Bob"]
        assert sorted(c.first_name for c in world.mail_records(ItemKind.CONTACT)) == [
            "Ann",
            "Bob",
        ]
        assert any("not synced: its partner was deleted in crm" in r for r in _rules(world, ann.id))

        # Once the rep deletes the card too, the pair is forgotten.
        edited = world.mail_items(ItemKind.CONTACT)[card.id]
        world.collection(ItemKind.CONTACT).delete(card.id, edited.version)
        world.sync()
        kept = world.service.store.links(world.rep.id, ItemKind.CONTACT)
        assert [link.crm_id for link in kept] == [bob.id]
        assert world.service.store.errors() == []
    finally:
        world.close()


def test_an_event_deleted_in_the_calendar_is_not_written_back_by_a_crm_edit(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    config = replace(BOTH_WAYS, events=EventSettings(sync_private=True, delete_synced_events=False))
    world = World(dav_server, tmp_path / "home", config)
    try:
        meeting = world.crm.create_event(
            world.rep.id, Event("Review", EventTiming(at(4, 9), at(4, 10)))
        )
        world.sync()
        (item,) = world.mail_items(ItemKind.EVENT).values()
        world.collection(ItemKind.EVENT).delete(item.id, item.version)
        world.sync()
        assert [e.subject for e in world.crm_records(ItemKind.EVENT)] == ["Review"]

        world.crm.update_event(meeting.id, Event("Review 2", EventTiming(at(4, 9), at(4, 10))))
        assert world.sync().writes == 0
        assert world.mail_items(ItemKind.EVENT) == {}
        assert world.service.store.count_links(world.rep.id, ItemKind.EVENT) == 0
    finally:
        world.close()
