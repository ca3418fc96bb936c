"""The change feed under concurrent writers: no change is ever skipped by a cursor reader."""

from __future__ import annotations

import threading

from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.records import Contact, ItemKind, User


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
