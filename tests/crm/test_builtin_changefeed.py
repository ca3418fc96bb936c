"""The change feed: under concurrent writers no change is ever skipped by a cursor reader,
and a reader already caught up costs the database next to nothing."""

from __future__ import annotations

import threading

from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.records import Contact, ItemKind, User
from tests.store.test_cycle_reads import statements


def test_reader_misses_nothing_while_writers_commit(crm_url: str, ann: User) -> None:
    writers, per_writer = 3, 15
    created: list[str] = []
    seen: set[str] = set()
    done = threading.Event()

    def write(n: int) -> None:
        with BuiltinCrm(crm_url) as own:  # its own pool, as another process would have
            for i in range(per_writer):
                stored = own.create_contact(ann.id, Contact(first_name=f"{n}-{i}"))
                own.update_contact(stored.id, Contact(first_name=f"{n}-{i}!"))
                created.append(stored.id)

    with BuiltinCrm(crm_url) as reader:
        side = reader.side(ann.id, ItemKind.CONTACT)
        cursor = side.changes(None, {}).cursor
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()

        def joiner() -> None:
            for t in threads:
                t.join()
            done.set()

        threading.Thread(target=joiner).start()
        while True:
            finished = done.is_set()
            changes = side.changes(cursor, {})
            seen.update(s.id for s in changes.items)
            cursor = changes.cursor
            if finished:
                break
        assert seen == set(created) and len(created) == writers * per_writer
        stamps = [int(s.version) for s in side.changes(None, {}).items]
        assert len(set(stamps)) == len(stamps)


def test_a_caught_up_reader_runs_two_statements_at_most(crm: BuiltinCrm, ann: User) -> None:
    # Every quiet sync cycle asks: the feed's position (head and pruning horizon) is one
    # query, and a cursor at the head looks for no record and no tombstone.
    crm.create_contact(ann.id, Contact(first_name="Ada"))
    side = crm.side(ann.id, ItemKind.CONTACT)
    cursor = side.changes(None, {}).cursor
    with statements(crm) as run:
        changes = side.changes(cursor, {})
    assert changes.items == () and changes.deleted == () and changes.cursor == cursor
    assert len(run) <= 2, run

    added = crm.create_contact(ann.id, Contact(first_name="Grace"))
    gone = crm.create_contact(ann.id, Contact(first_name="Gone"))
    crm.delete_contact(gone.id)
    changes = side.changes(cursor, {})
    assert [s.id for s in changes.items] == [added.id] and changes.deleted == (gone.id,)
