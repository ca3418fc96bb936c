"""The change feed: one modification counter, tombstones and the pruning horizon.

Every write transaction takes its stamps from `allocate_stamps` *before* it reads or writes
anything else. The counter is a single row bumped with ``UPDATE ... RETURNING``; the row
lock that UPDATE takes is held until the transaction ends, so a second writer waits at its
own bump until the first has committed or rolled back. Stamps are therefore handed out in
commit order, on PostgreSQL with concurrent writers as on SQLite (whose write lock does the
same): once a reader sees the committed counter at ``H``, every stamp ``<= H`` is committed
and visible, and a later commit can only carry a stamp ``> H``. That is what makes "rows
with stamp > cursor" a complete answer. The price is that CRM writes are serialised, which
the built-in CRM's write rate (people editing records, sync cycles) never notices.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, ScalarSelect, delete, insert, select, tuple_, update

from crmsync.crm.builtin import tables


def allocate_stamps(conn: Connection, count: int = 1) -> int:
    """Reserve ``count`` consecutive stamps in ``conn``'s transaction; returns the highest.

    The stamps are ``result - count + 1 .. result``. Call it first in a write transaction
    (see the module docstring); a rollback returns the stamps, so stamps may have gaps.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    return conn.execute(
        update(tables.counter)
        .where(tables.counter.c.name == tables.STAMP_COUNTER)
        .values(value=tables.counter.c.value + count)
        .returning(tables.counter.c.value)
    ).scalar_one()


def committed_stamp(conn: Connection) -> int:
    """The highest stamp handed out by a committed transaction: the cursor for a reader."""
    return _counter(conn, tables.STAMP_COUNTER)


def feed_position(conn: Connection) -> tuple[int, int]:
    """`committed_stamp` and the pruning horizon, in one query: tombstones with stamps up
    to the horizon may be gone, so older cursors must be refused."""
    head, pruned = conn.execute(_FEED_POSITION).one()
    return head, pruned


def _counter(conn: Connection, name: str) -> int:
    return conn.execute(
        select(tables.counter.c.value).where(tables.counter.c.name == name)
    ).scalar_one()


def _counter_value(name: str) -> ScalarSelect[int]:
    counter = tables.counter
    return select(counter.c.value).where(counter.c.name == name).scalar_subquery()


# Built once: every incremental listing runs it.
_FEED_POSITION = select(_counter_value(tables.STAMP_COUNTER), _counter_value(tables.PRUNED_COUNTER))


def ensure_counters(conn: Connection) -> None:
    """Insert the counter rows a fresh database lacks (both start at 0)."""
    have = set(conn.execute(select(tables.counter.c.name)).scalars())
    missing = [
        {"name": name, "value": 0}
        for name in (tables.STAMP_COUNTER, tables.PRUNED_COUNTER)
        if name not in have
    ]
    if missing:
        conn.execute(insert(tables.counter), missing)


def record_deletions(
    conn: Connection, kind: str, gone: Iterable[tuple[str, str | None]], stamp: int
) -> None:
    """Leave tombstones for ``(record id, owner id)`` pairs and drop the records' markers."""
    gone = list(gone)
    if not gone:
        return
    conn.execute(
        insert(tables.tombstones),
        [
            {"kind": kind, "record_id": rid, "owner_id": owner, "stamp": stamp}
            for rid, owner in gone
        ],
    )
    conn.execute(
        delete(tables.markers).where(
            tables.markers.c.kind == kind,
            tables.markers.c.record_id.in_([rid for rid, _ in gone]),
        )
    )


def record_owner_moves(
    conn: Connection, kind: str, moves: Iterable[tuple[str, str, str]], stamp: int
) -> None:
    """Note ``(record id, old owner, new owner)`` moves in the feed.

    The old owner's feed sees a tombstone (the record left its scope), and the old owner's
    marker goes: an idempotent create by that rep must not find a record it no longer owns.
    """
    moves = [m for m in moves if m[1] != m[2]]
    if not moves:
        return
    conn.execute(
        insert(tables.tombstones),
        [
            {"kind": kind, "record_id": rid, "owner_id": old, "stamp": stamp}
            for rid, old, _ in moves
        ],
    )
    conn.execute(
        delete(tables.markers).where(
            tables.markers.c.kind == kind,
            tuple_(tables.markers.c.record_id, tables.markers.c.rep_id).in_(
                [(rid, old) for rid, old, _ in moves]
            ),
        )
    )


def prune_tombstones(conn: Connection, through_stamp: int) -> int:
    """Delete tombstones with stamps ``<= through_stamp``; returns how many went.

    Readers whose cursor is older than the horizon then get a full listing instead of an
    incomplete delta.
    """
    allocate_stamps(conn)  # takes the writers' lock, so no tombstone lands mid-prune
    removed = conn.execute(
        delete(tables.tombstones).where(tables.tombstones.c.stamp <= through_stamp)
    ).rowcount
    conn.execute(
        update(tables.counter)
        .where(
            tables.counter.c.name == tables.PRUNED_COUNTER,
            tables.counter.c.value < through_stamp,
        )
        .values(value=through_stamp)
    )
    return removed
