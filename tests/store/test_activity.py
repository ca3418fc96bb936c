"""Activity counters in hour buckets for the org status tables."""

from __future__ import annotations

import datetime as dt

from crmsync.domain.records import ItemKind
from crmsync.store import StateStore, hour_of

NOW = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def test_hour_of() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    assert hour_of(dt.datetime(2026, 1, 1, 12, 59, 59, tzinfo=cet)) == dt.datetime(
        2026, 1, 1, 11, tzinfo=dt.UTC
    )


def test_nothing_synced_yet(store: StateStore) -> None:
    assert store.synced_since(ItemKind.CONTACT, NOW - H) == 0
    assert store.last_activity(ItemKind.CONTACT) is None


def test_windows_count_the_buckets_they_touch(store: StateStore) -> None:
    store.record_synced(ItemKind.CONTACT, 5, NOW)
    store.record_synced(ItemKind.CONTACT, 2, NOW - dt.timedelta(minutes=20))  # same bucket
    store.record_synced(ItemKind.CONTACT, 3, NOW - H)
    store.record_synced(ItemKind.CONTACT, 7, NOW - 5 * H)
    store.record_synced(ItemKind.CONTACT, 100, NOW - 30 * H)
    store.record_synced(ItemKind.EVENT, 11, NOW)

    assert store.synced_since(ItemKind.CONTACT, NOW - dt.timedelta(minutes=10)) == 7
    assert store.synced_since(ItemKind.CONTACT, NOW - dt.timedelta(minutes=60)) == 10
    assert store.synced_since(ItemKind.CONTACT, NOW - 24 * H) == 17
    assert store.synced_since(ItemKind.EVENT, NOW - 24 * H) == 11


def test_last_activity_is_exact_and_never_goes_back(store: StateStore) -> None:
    store.record_synced(ItemKind.EVENT, 1, NOW)
    store.record_synced(ItemKind.EVENT, 1, NOW - dt.timedelta(minutes=5))
    assert store.last_activity(ItemKind.EVENT) == NOW
    assert store.last_activity(ItemKind.CONTACT) is None


def test_hourly_series_for_the_chart(store: StateStore) -> None:
    store.record_synced(ItemKind.CONTACT, 4, NOW)
    store.record_synced(ItemKind.CONTACT, 6, NOW - 23 * H)
    store.record_synced(ItemKind.CONTACT, 9, NOW - 24 * H)  # just outside the 24 buckets
    series = store.hourly_synced(ItemKind.CONTACT, now=NOW)
    assert len(series) == 24
    assert series[0] == (hour_of(NOW - 23 * H), 6)
    assert series[-1] == (hour_of(NOW), 4)
    assert sum(n for _, n in series) == 10


def test_prune_activity(store: StateStore) -> None:
    store.record_synced(ItemKind.CONTACT, 1, NOW - 48 * H)
    store.record_synced(ItemKind.CONTACT, 1, NOW)
    assert store.prune_activity(NOW - 24 * H) == 1
    assert store.synced_since(ItemKind.CONTACT, NOW - 100 * H) == 1
