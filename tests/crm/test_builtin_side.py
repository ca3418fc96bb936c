"""`BuiltinCrm.side`: one rep's owned contacts or events as the engine's `ItemSide`."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from sqlalchemy import update

from crmsync.crm.builtin import BuiltinCrm, OwnerSide, tables
from crmsync.domain.records import Contact, ItemKind, User
from crmsync.domain.sync import Changes, ErrorType, RejectedWrite, VersionConflict
from crmsync.engine.ports import ItemSide
from tests.crm.samples import EVENTS, FULL_CONTACT, LEAD, PERSON_ACCOUNT


def contacts_of(crm: BuiltinCrm, user: User) -> OwnerSide:
    return crm.side(user.id, ItemKind.CONTACT)


def caught_up(side: OwnerSide) -> str:
    cursor = side.changes(None, {}).cursor
    assert cursor is not None
    return cursor


def test_satisfies_the_engine_port(crm: BuiltinCrm, ann: User) -> None:
    side: ItemSide = crm.side(ann.id, ItemKind.EVENT)  # checked by type checkers
    for name in ("changes", "fetch", "create", "update", "delete"):
        assert callable(getattr(side, name))


def test_first_listing_is_full(crm: BuiltinCrm, ann: User, bob: User) -> None:
    mine = crm.create_contact(ann.id, FULL_CONTACT)
    person = crm.create_contact(ann.id, PERSON_ACCOUNT)
    crm.create_contact(bob.id, Contact(first_name="Not Ann's"))
    crm.create_lead(ann.id, LEAD)
    changes = contacts_of(crm, ann).changes(None, {})
    assert changes.full and changes.deleted == ()
    assert {(s.id, s.version, s.record) for s in changes.items} == {
        (mine.id, mine.version, FULL_CONTACT),
        (person.id, person.version, PERSON_ACCOUNT),
    }
    assert changes.cursor == str(crm.current_stamp())


def test_full_listing_skips_known_versions_and_reports_deletions(
    crm: BuiltinCrm, ann: User
) -> None:
    same = crm.create_contact(ann.id, Contact(first_name="Same"))
    changed = crm.create_contact(ann.id, Contact(first_name="Changed"))
    new = crm.create_contact(ann.id, Contact(first_name="New"))
    gone = crm.create_contact(ann.id, Contact(first_name="Gone"))
    known = {same.id: same.version, changed.id: changed.version, gone.id: gone.version}
    changed = crm.update_contact(changed.id, Contact(first_name="Changed again"))
    crm.delete_contact(gone.id)
    listing = contacts_of(crm, ann).changes(None, known)
    assert listing.full
    assert {s.id: s.version for s in listing.items} == {
        changed.id: changed.version,
        new.id: new.version,
    }
    assert listing.deleted == (gone.id,)


def test_create_edit_delete_each_show_once_after_the_cursor(crm: BuiltinCrm, ann: User) -> None:
    side = contacts_of(crm, ann)
    cursor = caught_up(side)

    created = crm.create_contact(ann.id, FULL_CONTACT)
    changes = side.changes(cursor, {})
    assert not changes.full
    assert [(s.id, s.version, s.record) for s in changes.items] == [
        (created.id, created.version, FULL_CONTACT)
    ]
    cursor = changes.cursor
    assert side.changes(cursor, {}).items == ()

    edited = crm.update_contact(created.id, dataclasses.replace(FULL_CONTACT, title="CEO"))
    changes = side.changes(cursor, {})
    assert [(s.id, s.version) for s in changes.items] == [(created.id, edited.version)]
    assert changes.deleted == ()
    cursor = changes.cursor

    crm.delete_contact(created.id)
    changes = side.changes(cursor, {})
    assert changes == Changes(items=(), deleted=(created.id,), cursor=changes.cursor)
    assert side.changes(changes.cursor, {}) == Changes((), (), changes.cursor)


def test_no_change_read_returns_nothing(crm: BuiltinCrm, ann: User, bob: User) -> None:
    crm.create_contact(ann.id, FULL_CONTACT)
    side = contacts_of(crm, ann)
    cursor = caught_up(side)
    crm.create_contact(bob.id, FULL_CONTACT)  # someone else's change
    crm.create_event(ann.id, EVENTS["timed"])  # another kind
    changes = side.changes(cursor, {})
    assert changes.items == () and changes.deleted == () and not changes.full


def test_owner_change_is_a_deletion_for_the_old_owner(
    crm: BuiltinCrm, ann: User, bob: User
) -> None:
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    ann_side, bob_side = contacts_of(crm, ann), contacts_of(crm, bob)
    ann_cursor, bob_cursor = caught_up(ann_side), caught_up(bob_side)

    moved = crm.update_contact(stored.id, FULL_CONTACT, owner_id=bob.id)
    ann_changes = ann_side.changes(ann_cursor, {})
    assert ann_changes.items == () and ann_changes.deleted == (stored.id,)
    bob_changes = bob_side.changes(bob_cursor, {})
    assert [(s.id, s.version) for s in bob_changes.items] == [(stored.id, moved.version)]
    assert ann_side.fetch(stored.id) is None
    assert ann_side.changes(None, {stored.id: stored.version}).deleted == (stored.id,)

    # Moved back before Ann's next read: it is present, not deleted.
    crm.update_contact(stored.id, FULL_CONTACT, owner_id=bob.id)
    ann_cursor = ann_changes.cursor
    crm.update_contact(stored.id, FULL_CONTACT, owner_id=ann.id)
    again = ann_side.changes(ann_cursor, {})
    assert [s.id for s in again.items] == [stored.id] and again.deleted == ()


def test_deletions_come_from_tombstones(crm: BuiltinCrm, ann: User) -> None:
    side = contacts_of(crm, ann)
    ids = [crm.create_contact(ann.id, Contact(first_name=str(i))).id for i in range(3)]
    cursor = caught_up(side)
    for record_id in ids:
        crm.delete_contact(record_id)
    assert side.changes(cursor, {}).deleted == tuple(ids)


def test_unreadable_cursor_gets_a_full_listing(crm: BuiltinCrm, ann: User) -> None:
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    side = contacts_of(crm, ann)
    for cursor in ("not-a-stamp", "999999"):  # garbage, or ahead of the database
        changes = side.changes(cursor, {stored.id: stored.version})
        assert changes.full and changes.items == () and changes.deleted == ()


def test_cursor_older_than_pruned_tombstones_gets_a_full_listing(
    crm: BuiltinCrm, ann: User
) -> None:
    keep = crm.create_contact(ann.id, Contact(first_name="Keep"))
    gone = crm.create_contact(ann.id, Contact(first_name="Gone"))
    side = contacts_of(crm, ann)
    cursor = caught_up(side)
    crm.delete_contact(gone.id)
    assert crm.prune_tombstones(crm.current_stamp()) == 1
    changes = side.changes(cursor, {keep.id: keep.version, gone.id: gone.version})
    assert changes.full and changes.items == () and changes.deleted == (gone.id,)
    assert not side.changes(changes.cursor, {}).full


def test_create_is_idempotent_per_marker(crm: BuiltinCrm, ann: User, bob: User) -> None:
    side = contacts_of(crm, ann)
    first = side.create(FULL_CONTACT, "mail-1")
    again = side.create(dataclasses.replace(FULL_CONTACT, title="Other"), "mail-1")
    assert again == first
    assert len(crm.list_contacts()) == 1
    seen = side.fetch(first.id)
    assert seen is not None and seen.marker == "mail-1" and seen.record == FULL_CONTACT
    assert [s.marker for s in side.changes(None, {}).items] == ["mail-1"]
    # The marker is per rep: Bob's side creating with the same marker makes his own record.
    assert contacts_of(crm, bob).create(FULL_CONTACT, "mail-1").id != first.id


def test_marker_of_a_deleted_record_can_be_used_again(crm: BuiltinCrm, ann: User) -> None:
    side = contacts_of(crm, ann)
    first = side.create(FULL_CONTACT, "mail-1")
    side.delete(first.id, first.version)
    again = side.create(FULL_CONTACT, "mail-1")
    # A new record, under the id planned for the marker (the deleted one's, now free).
    assert again.id == first.id == side.planned_id("mail-1")
    assert int(again.version) > int(first.version)
    seen = side.fetch(again.id)
    assert seen is not None and seen.marker == "mail-1"
    changes = side.changes(first.version, {})
    assert [s.id for s in changes.items] == [again.id] and changes.deleted == ()


def test_marker_leaves_with_the_owner(crm: BuiltinCrm, ann: User, bob: User) -> None:
    side = contacts_of(crm, ann)
    first = side.create(FULL_CONTACT, "mail-1")
    crm.update_contact(first.id, FULL_CONTACT, owner_id=bob.id)
    assert side.create(FULL_CONTACT, "mail-1").id != first.id


def test_concurrent_creates_with_one_marker_make_one_record(crm: BuiltinCrm, ann: User) -> None:
    results = []

    def create() -> None:
        results.append(contacts_of(crm, ann).create(FULL_CONTACT, "mail-1").id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(crm.list_contacts()) == 1


def test_update_checks_the_version(crm: BuiltinCrm, ann: User) -> None:
    side = contacts_of(crm, ann)
    written = side.create(FULL_CONTACT, "mail-1")
    updated = side.update(written.id, written.version, dataclasses.replace(FULL_CONTACT, fax=""))
    assert int(updated.version) > int(written.version)
    assert updated.record.fax == ""
    with pytest.raises(VersionConflict):
        side.update(written.id, written.version, FULL_CONTACT)
    crm.update_contact(written.id, FULL_CONTACT)  # a CRM user's edit
    with pytest.raises(VersionConflict):
        side.update(written.id, updated.version, FULL_CONTACT)


def test_update_of_a_record_gone_or_moved_is_a_conflict(
    crm: BuiltinCrm, ann: User, bob: User
) -> None:
    side = contacts_of(crm, ann)
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    moved = crm.update_contact(stored.id, FULL_CONTACT, owner_id=bob.id)
    with pytest.raises(VersionConflict):
        side.update(stored.id, moved.version, FULL_CONTACT)
    with pytest.raises(VersionConflict):
        side.update("con_missing", "1", FULL_CONTACT)


def test_update_keeps_the_person_account_flag(crm: BuiltinCrm, ann: User) -> None:
    stored = crm.create_contact(ann.id, PERSON_ACCOUNT)
    from_mail = dataclasses.replace(PERSON_ACCOUNT, is_person_account=False, phone="123")
    written = contacts_of(crm, ann).update(stored.id, stored.version, from_mail)
    assert written.record.is_person_account and written.record.phone == "123"
    assert crm.get_contact(stored.id).record == written.record


def test_delete(crm: BuiltinCrm, ann: User, bob: User) -> None:
    side = contacts_of(crm, ann)
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    edited = crm.update_contact(stored.id, PERSON_ACCOUNT)
    with pytest.raises(VersionConflict):
        side.delete(stored.id, stored.version)  # would lose the CRM edit
    side.delete(stored.id, edited.version)
    assert side.fetch(stored.id) is None
    side.delete(stored.id, edited.version)  # already gone: fine
    bobs = crm.create_contact(bob.id, FULL_CONTACT)
    side.delete(bobs.id, bobs.version)  # not Ann's: left alone
    assert crm.get_contact(bobs.id) == bobs


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_event_round_trip_through_the_side(crm: BuiltinCrm, ann: User, name: str) -> None:
    side = crm.side(ann.id, ItemKind.EVENT)
    cursor = caught_up(side)
    written = side.create(EVENTS[name], f"uid-{name}")
    assert written.record == EVENTS[name]
    (seen,) = side.changes(cursor, {}).items
    assert seen.record == EVENTS[name] and seen.marker == f"uid-{name}"
    fetched = side.fetch(written.id)
    assert fetched is not None and fetched.record == EVENTS[name]


def test_event_side_lists_events_only(crm: BuiltinCrm, ann: User) -> None:
    crm.create_contact(ann.id, FULL_CONTACT)
    event = crm.create_event(ann.id, EVENTS["timed"])
    assert [s.id for s in crm.side(ann.id, ItemKind.EVENT).changes(None, {}).items] == [event.id]
    with pytest.raises(TypeError):
        crm.side(ann.id, ItemKind.EVENT).create(FULL_CONTACT, "m")


def test_bad_content_from_the_mail_side_is_rejected(crm: BuiltinCrm, ann: User) -> None:
    import datetime as dt

    from crmsync.domain.records import Event, EventTiming

    naive = Event("x", EventTiming(dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 10)))
    with pytest.raises(RejectedWrite):
        crm.side(ann.id, ItemKind.EVENT).create(naive, "m")


def test_rep_who_is_not_a_user_is_rejected(crm: BuiltinCrm) -> None:
    with pytest.raises(RejectedWrite):
        crm.side("usr_missing", ItemKind.CONTACT).create(FULL_CONTACT, "m")


def test_unreadable_row_is_reported_not_raised(crm: BuiltinCrm, ann: User) -> None:
    stored = crm.create_contact(ann.id, FULL_CONTACT)
    with crm.writing() as conn:  # as if someone edited the database by hand
        conn.execute(
            update(tables.contacts)
            .where(tables.contacts.c.id == stored.id)
            .values(mailing_address={"planet": "Mars"})
        )
    (seen,) = contacts_of(crm, ann).changes(None, {}).items
    assert seen.record is None and seen.problem is not None
    assert seen.problem.error_type is ErrorType.MALFORMED_ITEM


def test_contacts_side_refuses_leads_kind(crm: BuiltinCrm, ann: User) -> None:
    with pytest.raises(ValueError):
        OwnerSide(crm, ann.id, "lead")  # type: ignore[arg-type]
