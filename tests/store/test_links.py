"""Links and cursors: upsert, uniqueness, reset, and the cost of a save."""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import replace

import pytest
from sqlalchemy import select

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Link, Side, WriteIntent, WriteOperation
from crmsync.engine.ports import SyncState
from crmsync.store import LinkConflict, StateStore
from crmsync.store.exceptions import LeaseLost
from crmsync.store.fencing import FencedState
from crmsync.store.schema import links
from tests.store.conftest import Clock

CONTACT = ItemKind.CONTACT
EVENT = ItemKind.EVENT
HOUR = dt.timedelta(hours=1)


def link(
    crm_id: str = "c1",
    mail_id: str = "m1",
    rep_id: str = "rep-1",
    kind: ItemKind = CONTACT,
    detached: Side | None = None,
    **versions: str,
) -> Link:
    values = {"crm_version": "cv1", "mail_version": "mv1", "crm_hash": "ch", "mail_hash": "mh"}
    return Link(rep_id, kind, crm_id, mail_id, **(values | versions), detached=detached)


def test_store_has_every_sync_state_method() -> None:
    for name, member in inspect.getmembers(SyncState, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = getattr(StateStore, name)
        assert (
            inspect.signature(ours).parameters.keys() == inspect.signature(member).parameters.keys()
        )


def test_save_then_read(store: StateStore) -> None:
    store.save_link(link("c2", "m2"))
    store.save_link(link("c1", "m1"))
    assert store.links("rep-1", CONTACT) == [link("c1", "m1"), link("c2", "m2")]
    assert store.links("rep-1", EVENT) == []
    assert store.links("rep-2", CONTACT) == []


def test_save_replaces_the_link_of_the_crm_id(store: StateStore) -> None:
    store.save_link(link())
    newer = link(mail_id="m1-moved", crm_version="cv2", mail_version="mv2", crm_hash="x")
    store.save_link(newer)
    assert store.links("rep-1", CONTACT) == [newer]
    assert store.count_links("rep-1", CONTACT) == 1


def test_mail_id_links_one_crm_item_only(store: StateStore) -> None:
    store.save_link(link("c1", "m1"))
    with pytest.raises(LinkConflict):
        store.save_link(link("c2", "m1"))
    assert store.links("rep-1", CONTACT) == [link("c1", "m1")]


def test_same_ids_in_other_rep_or_kind_do_not_collide(store: StateStore) -> None:
    store.save_link(link())
    store.save_link(link(rep_id="rep-2"))
    store.save_link(link(kind=EVENT))
    assert store.count_links("rep-1", CONTACT) == 1
    assert store.count_links("rep-2", CONTACT) == 1
    assert store.count_links("rep-1", EVENT) == 1


def test_drop_link(store: StateStore) -> None:
    store.save_link(link("c1", "m1"))
    store.save_link(link("c2", "m2"))
    store.drop_link("rep-1", CONTACT, "c1")
    store.drop_link("rep-1", CONTACT, "never-there")
    assert store.links("rep-1", CONTACT) == [link("c2", "m2")]


def test_cursor_per_rep_kind_and_side(store: StateStore) -> None:
    assert store.cursor("rep-1", CONTACT, Side.CRM) is None
    store.save_cursor("rep-1", CONTACT, Side.CRM, "crm-token")
    store.save_cursor("rep-1", CONTACT, Side.MAIL, "mail-token")
    store.save_cursor("rep-1", CONTACT, Side.CRM, "crm-token-2")
    assert store.cursor("rep-1", CONTACT, Side.CRM) == "crm-token-2"
    assert store.cursor("rep-1", CONTACT, Side.MAIL) == "mail-token"
    assert store.cursor("rep-1", EVENT, Side.CRM) is None
    assert store.cursor("rep-2", CONTACT, Side.CRM) is None
    store.save_cursor("rep-1", CONTACT, Side.CRM, None)
    assert store.cursor("rep-1", CONTACT, Side.CRM) is None


def test_clear_rep_drops_only_that_reps_links_and_cursors(store: StateStore) -> None:
    for rep in ("rep-1", "rep-2"):
        store.save_link(link(rep_id=rep))
        store.save_link(link("e1", "me1", rep_id=rep, kind=EVENT))
        store.save_cursor(rep, CONTACT, Side.MAIL, "token")
    store.cycle_finished("rep-1", error="boom")

    store.clear_rep("rep-1")

    assert store.links("rep-1", CONTACT) == [] and store.links("rep-1", EVENT) == []
    assert store.cursor("rep-1", CONTACT, Side.MAIL) is None
    assert store.count_links("rep-2", CONTACT) == 1 and store.count_links("rep-2", EVENT) == 1
    assert store.cursor("rep-2", CONTACT, Side.MAIL) == "token"
    assert store.rep_status("rep-1").last_error == "boom"


def test_a_detached_link_survives_a_reset_and_is_not_counted_in_sync(store: StateStore) -> None:
    detached = link("c2", "m2", detached=Side.CRM)
    store.apply_links("rep-1", CONTACT, [link(), detached], [])
    store.cycle_finished("rep-1")
    assert store.links("rep-1", CONTACT)[1] == detached
    assert store.count_links("rep-1", CONTACT) == 1
    assert store.rep_status("rep-1").records_in_sync[CONTACT] == 1

    store.clear_rep("rep-1")

    assert store.links("rep-1", CONTACT) == [detached]
    # Synced again, the pair is an ordinary link once more.
    store.save_link(replace(detached, detached=None))
    assert store.count_links("rep-1", CONTACT) == 1


def test_synced_at_is_stamped(store: StateStore, clock: Clock) -> None:
    store.save_link(link())
    with store.engine.connect() as conn:
        assert conn.execute(select(links.c.synced_at)).scalar_one() == clock.now


def test_apply_links_saves_and_drops_in_one_batch(store: StateStore) -> None:
    store.apply_links("rep-1", CONTACT, [link(f"c{i}", f"m{i}") for i in range(500)], [])
    # A replaced pairing: the old CRM item's link goes, a new one takes its mail item.
    store.apply_links(
        "rep-1",
        CONTACT,
        [link("c-new", "m0"), replace(link("c1", "m1"), crm_version="cv2")],
        ["c0", "c2", "never-there"],
    )
    by_crm = {row.crm_id: row for row in store.links("rep-1", CONTACT)}
    assert store.count_links("rep-1", CONTACT) == 499
    assert "c0" not in by_crm and "c2" not in by_crm
    assert by_crm["c-new"].mail_id == "m0"
    assert by_crm["c1"].crm_version == "cv2"


def test_apply_links_refuses_a_mail_item_linked_twice(store: StateStore) -> None:
    store.apply_links("rep-1", CONTACT, [link("c1", "m1")], [])
    with pytest.raises(LinkConflict):
        store.apply_links("rep-1", CONTACT, [link("c2", "m1")], [])
    assert [row.crm_id for row in store.links("rep-1", CONTACT)] == ["c1"]


def intent(crm_id: str, mail_id: str | None = None, **fields: object) -> WriteIntent:
    made = WriteIntent(
        "rep-1",
        CONTACT,
        WriteOperation.CREATE if mail_id is None else WriteOperation.UPDATE,
        Side.MAIL,
        crm_id,
        mail_id,
        "v1",
        "hash-1",
    )
    return replace(made, **fields)  # type: ignore[arg-type]


def test_intents_are_kept_until_a_link_save_settles_them(store: StateStore) -> None:
    made = intent("c1")
    changed = intent("c2", "m2", previous_hash="hash-0", replaces="c0")
    store.record_intents("rep-1", CONTACT, [made, changed])
    assert store.pending_intents("rep-1", CONTACT) == [made, changed]
    assert store.pending_intents("rep-1", EVENT) == []

    store.apply_links("rep-1", CONTACT, [link("c1", "m1")], [], [made.key])

    assert store.pending_intents("rep-1", CONTACT) == [changed]
    assert [x.crm_id for x in store.links("rep-1", CONTACT)] == ["c1"]


def test_an_intent_recorded_again_replaces_the_pending_one(store: StateStore) -> None:
    store.record_intents("rep-1", CONTACT, [intent("c1", "m1")])
    newer = intent("c1", "m1", source_version="v2")
    store.record_intents("rep-1", CONTACT, [newer])
    assert store.pending_intents("rep-1", CONTACT) == [newer]


def test_reset_forgets_intents_with_the_links(store: StateStore) -> None:
    store.record_intents("rep-1", CONTACT, [intent("c1")])
    store.record_intents("rep-2", CONTACT, [intent("c1")])
    store.clear_rep("rep-1")
    assert store.pending_intents("rep-1", CONTACT) == []
    assert len(store.pending_intents("rep-2", CONTACT)) == 1


def test_intents_under_a_lost_lease_are_refused(store: StateStore, clock: Clock) -> None:
    fence = store.claim_rep("rep-1", "worker-a", dt.timedelta(minutes=5), now=clock.now)
    assert fence is not None
    stale = FencedState(store, "rep-1", fence)
    assert store.claim_rep("rep-1", "worker-b", dt.timedelta(minutes=5), now=clock.now + HOUR)
    with pytest.raises(LeaseLost):
        stale.record_intents("rep-1", CONTACT, [intent("c1")])
    with pytest.raises(LeaseLost):
        stale.apply_links("rep-1", CONTACT, [], [], ["create:mail:c1:"])
    assert store.pending_intents("rep-1", CONTACT) == []
