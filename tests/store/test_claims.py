"""Claiming due reps in batches (issue 16): on PostgreSQL with ``FOR UPDATE SKIP LOCKED``
(the PostgreSQL variants run with ``CRMSYNC_TEST_POSTGRES_URL``), on SQLite under its
write lock; fenced leases; a cap on the reps leased at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest

from crmsync.store import LeaseLost, StateStore
from tests.store.conftest import Clock

TTL = dt.timedelta(minutes=5)


def due_reps(store: StateStore, count: int) -> list[str]:
    rep_ids = [f"rep-{i:04d}" for i in range(count)]
    store.schedule_reps(rep_ids)
    return rep_ids


def test_concurrent_claimers_never_claim_one_rep_twice(
    open_store: Callable[[], StateStore],
) -> None:
    rep_ids = due_reps(open_store(), 300)
    claimers = [open_store() for _ in range(4)]
    claimed: list[list[tuple[str, int]]] = [[] for _ in claimers]
    start = threading.Barrier(len(claimers))

    def claim(i: int) -> None:
        start.wait()
        while batch := claimers[i].claim_due(f"worker-{i}", TTL, limit=25):
            claimed[i].extend(batch)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everyone = [rep_id for batch in claimed for rep_id, _ in batch]
    assert sorted(everyone) == rep_ids  # each rep once, none left out
    statuses = {s.rep_id: s.lease_owner for s in claimers[0].rep_statuses()}
    for i, batch in enumerate(claimed):
        assert all(statuses[rep_id] == f"worker-{i}" for rep_id, _ in batch)


def test_only_due_reps_are_claimed_earliest_first(store: StateStore, clock: Clock) -> None:
    due_reps(store, 3)
    store.set_next_due("rep-0000", clock.now + dt.timedelta(minutes=1))  # not yet due
    store.set_next_due("rep-0001", clock.now - dt.timedelta(minutes=1))
    store.set_next_due("rep-0002", clock.now - dt.timedelta(minutes=9))
    assert [rep for rep, _ in store.claim_due("w", TTL, limit=1)] == ["rep-0002"]
    assert [rep for rep, _ in store.claim_due("w", TTL)] == ["rep-0001"]
    assert store.claim_due("w", TTL) == []
    clock.advance(minutes=2)
    assert [rep for rep, _ in store.claim_due("w", TTL)] == ["rep-0000"]


def test_a_rep_made_due_at_once_waits_since_then_and_is_claimed_in_its_turn(
    store: StateStore, clock: Clock
) -> None:
    never, backing_off, late, later = due_reps(store, 4)
    store.set_next_due(backing_off, clock.now + dt.timedelta(hours=1))
    store.set_next_due(late, clock.now - dt.timedelta(minutes=9))
    store.set_next_due(later, clock.now + dt.timedelta(hours=1))
    made_due = clock.now
    store.make_due(backing_off, made_due)  # a reset, say
    store.make_due(late, made_due)  # due earlier already: it keeps waiting since then
    assert store.rep_status(backing_off).next_due == made_due
    assert store.rep_status(late).next_due == made_due - dt.timedelta(minutes=9)
    clock.advance(minutes=10)  # no scheduler ran meanwhile
    status = store.rep_status(backing_off)
    assert status.due_since(clock.now) == made_due  # not "since now": it can be overdue
    # Never scheduled first, then earliest due; the other rep backing off waits.
    claimed = [[rep for rep, _ in store.claim_due("w", TTL, limit=1)] for _ in range(4)]
    assert claimed == [[never], [late], [backing_off], []]


def test_an_expired_lease_is_claimed_again_and_fences_the_old_holder(
    store: StateStore, clock: Clock
) -> None:
    due_reps(store, 1)
    [(rep_id, old)] = store.claim_due("stalled", TTL)
    assert store.claim_due("other", TTL) == []  # held
    clock.advance(minutes=6)
    [(again, new)] = store.claim_due("other", TTL)
    assert (again, new) == (rep_id, old + 1)
    assert store.rep_status(rep_id).lease_owner == "other"
    stalled = store.fenced(rep_id, old)
    record = store.open_cycle(rep_id)
    with pytest.raises(LeaseLost):
        stalled.close_cycle(record, error="late")
    assert not store.renew_lease(rep_id, old, TTL)
    assert store.rep_status(rep_id).last_error is None


def test_the_cap_limits_the_reps_leased_at_once(
    open_store: Callable[[], StateStore], clock: Clock
) -> None:
    first, second = open_store(), open_store()
    due_reps(first, 10)
    assert len(first.claim_due("a", TTL, max_in_flight=4)) == 4
    assert len(second.claim_due("b", TTL, max_in_flight=4)) == 0
    [(rep_id, fence)] = first.claim_due("a", TTL, limit=1)  # uncapped claims still go
    assert first.release_rep(rep_id, fence)
    assert second.claim_due("b", TTL, max_in_flight=5) != []
    clock.advance(minutes=6)  # expired leases count no more
    assert len(second.claim_due("b", TTL, max_in_flight=6)) == 6
