"""Leases and fences: a worker that lost its rep can no longer write for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import Direction
from crmsync.domain.sync import ErrorEntry, ErrorType, Link, Side
from crmsync.engine.ports import SyncState
from crmsync.store import LeaseLost, StateStore, SyncStatus
from tests.store.conftest import Clock

TTL = dt.timedelta(minutes=5)
LINK = Link("rep-1", ItemKind.CONTACT, "c1", "m1", "1", "1", "h", "h")


def test_claim_is_exclusive_until_expiry(store: StateStore, clock: Clock) -> None:
    first = store.claim_rep("rep-1", "worker-a", TTL)
    assert first is not None
    assert store.claim_rep("rep-1", "worker-b", TTL) is None
    assert store.rep_status("rep-1").lease_owner == "worker-a"
    clock.advance(minutes=5)
    second = store.claim_rep("rep-1", "worker-b", TTL)
    assert second is not None and second > first
    assert store.claim_rep("rep-2", "worker-a", TTL) is not None  # other reps are free


def test_release_and_reclaim(store: StateStore) -> None:
    fence = store.claim_rep("rep-1", "worker-a", TTL)
    assert fence is not None
    again = store.claim_rep("rep-1", "worker-a", TTL)
    assert again == fence + 1  # a re-claim retires the older fence
    assert store.release_rep("rep-1", fence) is False
    assert store.release_rep("rep-1", again) is True
    assert store.rep_status("rep-1").lease_owner is None
    assert store.claim_rep("rep-1", "worker-b", TTL) == again + 1


def test_a_cycle_opens_only_under_the_lease_its_fence_holds(store: StateStore) -> None:
    with pytest.raises(LeaseLost):
        store.open_cycle("rep-1", fence=1)  # never claimed
    old = store.claim_rep("rep-1", "worker-a", TTL)
    assert old is not None
    assert store.open_cycle("rep-1", fence=old).rep_id == "rep-1"
    new = store.claim_rep("rep-1", "worker-a", TTL)
    assert new is not None
    with pytest.raises(LeaseLost):
        store.open_cycle("rep-1", fence=old)  # claimed again since
    assert store.release_rep("rep-1", new)
    with pytest.raises(LeaseLost):
        store.open_cycle("rep-1", fence=new)  # given up
    assert store.open_cycle("rep-1").rep_id == "rep-1"  # unfenced: read as always


def test_fenced_writes_pass_while_the_lease_holds(store: StateStore) -> None:
    fence = store.claim_rep("rep-1", "worker-a", TTL)
    assert fence is not None
    state: SyncState = store.fenced("rep-1", fence)
    state.save_link(LINK)
    state.save_cursor("rep-1", ItemKind.CONTACT, Side.MAIL, "token")
    assert state.links("rep-1", ItemKind.CONTACT) == [LINK]
    assert state.cursor("rep-1", ItemKind.CONTACT, Side.MAIL) == "token"
    fenced = store.fenced("rep-1", fence)
    fenced.drop_link("rep-1", ItemKind.CONTACT, "c1")
    assert store.count_links("rep-1", ItemKind.CONTACT) == 0
    record = store.open_cycle("rep-1")
    record.set_status(ItemKind.CONTACT, Direction.CRM_TO_MAIL, SyncStatus.IN_SYNC)
    assert store.renew_lease("rep-1", fence, TTL)  # keeps the fence
    fenced.close_cycle(record)
    status = store.rep_status("rep-1")
    assert status.sync_status(ItemKind.CONTACT, Direction.CRM_TO_MAIL) is SyncStatus.IN_SYNC
    assert status.lease_owner is None  # the closing write gave the lease up


def test_stale_worker_is_refused(store: StateStore, clock: Clock) -> None:
    old = store.claim_rep("rep-1", "worker-a", TTL)
    assert old is not None
    stale = store.fenced("rep-1", old)
    clock.advance(minutes=10)
    assert store.claim_rep("rep-1", "worker-b", TTL) is not None

    entry = ErrorEntry("rep-1", None, None, "cycle", ErrorType.INTERNAL, "m", "s", clock.now)
    record = store.open_cycle("rep-1")
    record.set_status(ItemKind.EVENT, Direction.MAIL_TO_CRM, SyncStatus.IN_SYNC)
    record.set_checks(recognized=True)
    writes: list[Callable[[], object]] = [
        lambda: stale.save_link(LINK),
        lambda: stale.drop_link("rep-1", ItemKind.CONTACT, "c1"),
        lambda: stale.save_cursor("rep-1", ItemKind.CONTACT, Side.CRM, "t"),
        lambda: stale.record_error(entry),
        lambda: stale.clear_rep("rep-1"),
        lambda: stale.write_statuses(record),
        lambda: stale.close_cycle(record, error="late"),
        lambda: stale.cycle_finished("rep-1", error="late"),
    ]
    for write in writes:
        with pytest.raises(LeaseLost):
            write()
    assert store.links("rep-1", ItemKind.CONTACT) == []
    assert store.cursor("rep-1", ItemKind.CONTACT, Side.CRM) is None
    assert store.errors() == []
    status = store.rep_status("rep-1")
    assert status.sync == {} and status.recognized is None and status.last_error is None
    assert status.last_cycle_finished is None
    assert not store.renew_lease("rep-1", old, TTL)


def test_fenced_state_serves_one_rep_only(store: StateStore) -> None:
    fence = store.claim_rep("rep-1", "worker-a", TTL)
    assert fence is not None
    with pytest.raises(ValueError):
        store.fenced("rep-1", fence).save_link(
            Link("rep-2", ItemKind.CONTACT, "c", "m", "1", "1", "h", "h")
        )


def test_concurrent_claims_have_one_winner(open_store: Callable[[], StateStore]) -> None:
    stores = [open_store() for _ in range(6)]
    stores[0].set_next_due("rep-1", None)  # the rep exists before the race

    def claim(i: int) -> int | None:
        return stores[i].claim_rep("rep-1", f"worker-{i}", TTL)

    with ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(claim, range(len(stores))))
    assert sum(r is not None for r in results) == 1
