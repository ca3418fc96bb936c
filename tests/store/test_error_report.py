"""The error report: recording, filters, sort order and retention."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorEntry, ErrorType
from crmsync.store import ErrorSort, StateStore

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def entry(
    rep_id: str,
    kind: ItemKind | None,
    error_type: ErrorType,
    minutes: int,
    operation: str = "create",
) -> ErrorEntry:
    return ErrorEntry(
        rep_id=rep_id,
        kind=kind,
        item_id=f"item-{minutes}" if kind else None,
        operation=operation,
        error_type=error_type,
        message=f"failed at {minutes}",
        suggestion="Check the item.",
        at=T0 + dt.timedelta(minutes=minutes),
    )


@pytest.fixture
def entries(store: StateStore) -> list[ErrorEntry]:
    rows = [
        entry("rep-1", ItemKind.CONTACT, ErrorType.REJECTED_WRITE, 0),
        entry("rep-1", ItemKind.EVENT, ErrorType.MALFORMED_ITEM, 10, "update"),
        entry("rep-2", ItemKind.CONTACT, ErrorType.REJECTED_WRITE, 20),
        entry("rep-2", None, ErrorType.AUTHENTICATION, 30, "cycle"),
    ]
    for row in rows:
        store.record_error(row)
    return rows


def test_round_trip_newest_first(store: StateStore, entries: list[ErrorEntry]) -> None:
    assert store.errors() == entries[::-1]


def test_filters(store: StateStore, entries: list[ErrorEntry]) -> None:
    assert store.errors(rep_id="rep-1", descending=False) == entries[:2]
    assert store.errors(kind=ItemKind.CONTACT, descending=False) == [entries[0], entries[2]]
    assert store.errors(error_type=ErrorType.AUTHENTICATION) == [entries[3]]
    assert store.errors(since=T0 + dt.timedelta(minutes=10), descending=False) == entries[1:]
    assert store.errors(rep_id="rep-2", kind=ItemKind.CONTACT) == [entries[2]]
    assert store.errors(rep_id="nobody") == []


def test_sort_and_paging(store: StateStore, entries: list[ErrorEntry]) -> None:
    by_type = store.errors(sort=ErrorSort.ERROR_TYPE, descending=False)
    assert [e.error_type for e in by_type] == sorted(e.error_type.value for e in entries)
    by_kind = store.errors(sort=ErrorSort.KIND, descending=False)
    assert by_kind[-1].kind is None  # rows without a kind sort last on every database
    by_rep = store.errors(sort=ErrorSort.REP)
    assert [e.rep_id for e in by_rep] == ["rep-2", "rep-2", "rep-1", "rep-1"]
    assert store.errors(limit=2, offset=1) == [entries[2], entries[1]]


def test_prune_keeps_newer_rows(store: StateStore, entries: list[ErrorEntry]) -> None:
    assert store.prune_errors(T0 + dt.timedelta(minutes=20)) == 2
    assert store.errors(descending=False) == entries[2:]


def test_a_repeated_failure_is_one_row_with_a_count(store: StateStore) -> None:
    first = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    entry = ErrorEntry(
        "rep-1",
        None,
        None,
        "sync",
        ErrorType.MASS_DELETE,
        "12 deletions held back",
        "Confirm or reset.",
        first,
    )
    for minutes in range(3):
        store.record_error(dataclasses.replace(entry, at=first + dt.timedelta(minutes=minutes)))
    store.record_error(dataclasses.replace(entry, message="13 deletions held back"))
    rows = store.errors()
    assert [(r.message, r.occurrences) for r in rows] == [
        ("12 deletions held back", 3),
        ("13 deletions held back", 1),
    ]
    assert rows[0].at == first + dt.timedelta(minutes=2) and rows[0].first_at == first
