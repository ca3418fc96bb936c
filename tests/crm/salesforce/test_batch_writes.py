"""The Salesforce sides write a batch in one collection call per 200 records (`BatchWrites`),
through the engine as it syncs a mailbox; a refused record fails alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from crmsync.domain.sync import ErrorType, Side
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from crmsync.engine.ports import BatchWrites
from tests.crm.contract import contact
from tests.crm.salesforce.harness import OrgHarness, fake_harness
from tests.engine.memory import MemorySide, MemoryState

API = "/services/data/v62.0/"
COLLECTIONS = API + "composite/sobjects"
COUNT = 450  # three batches: 200, 200 and 50


@pytest.fixture
def org() -> Iterator[OrgHarness]:
    harness = fake_harness()
    yield harness
    harness.close()


def event(n: int) -> Event:
    start = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(hours=n)
    return Event(f"Meeting {n}", EventTiming(start, start + dt.timedelta(minutes=30)))


def sync(org: OrgHarness, kind: ItemKind, mail: MemorySide, state: MemoryState) -> int:
    """One cycle; the API calls it made."""
    assert org.fake is not None
    before = len(org.fake.calls)
    side = org.crm.side(org.rep.id, kind)
    assert isinstance(side, BatchWrites)
    policy = Policy(propagate_deletions=True)
    report = sync_kind(org.rep.id, kind, side, mail, state, policy)
    assert report.errors == 0, state.errors
    return len(org.fake.calls) - before


def writes(org: OrgHarness, method: str) -> int:
    assert org.fake is not None
    return org.fake.api_calls(method, COLLECTIONS)


def test_contacts_cost_one_call_per_200_creates_updates_and_deletes(org: OrgHarness) -> None:
    mail, state = MemorySide("m"), MemoryState()
    ids = [mail.put(dataclasses.replace(contact(n), last_name=f"Lee {n}")) for n in range(COUNT)]
    batches = math.ceil(COUNT / 200)

    calls = sync(org, ItemKind.CONTACT, mail, state)

    assert writes(org, "PATCH") == batches  # upserts on the marker field
    assert len(org.fake.org.rows["Contact"]) == COUNT  # type: ignore[union-attr]
    # Per batch: the markers looked up, the upsert, the records read back; plus the
    # cycle's listing and describes.
    assert calls <= 3 * batches + 6, calls

    edited, gone = ids[:250], ids[250:270]  # under the mass-delete guard
    for item_id in edited:
        mail.put(dataclasses.replace(mail.items[item_id].record, title="CEO"), item_id)
    for item_id in gone:
        mail.remove(item_id)
    sync(org, ItemKind.CONTACT, mail, state)

    assert writes(org, "PATCH") == batches + 2  # 250 updates: 200 + 50
    assert writes(org, "DELETE") == 1
    rows = [r for r in org.fake.org.rows["Contact"].values() if not r["IsDeleted"]]  # type: ignore[union-attr]
    assert len(rows) == COUNT - len(gone)
    assert sum(r.get("Title") == "CEO" for r in rows) == len(edited)


def test_single_events_cost_one_call_per_200_creates(org: OrgHarness) -> None:
    mail, state = MemorySide("m"), MemoryState()
    for n in range(COUNT):
        mail.put(event(n))

    calls = sync(org, ItemKind.EVENT, mail, state)

    batches = math.ceil(COUNT / 200)
    assert writes(org, "POST") == batches
    # Per batch: markers looked up, the create, the events read back, and (Salesforce
    # keeping no zone per event) the update that finds nothing to write and reads again.
    assert calls <= 5 * batches + 4, calls
    assert len(org.fake.org.rows["Event"]) == COUNT  # type: ignore[union-attr]
    assert sync(org, ItemKind.EVENT, mail, state) <= 2  # nothing to write


def test_a_refused_record_fails_alone_with_a_row_naming_the_field(org: OrgHarness) -> None:
    mail, state = MemorySide("m"), MemoryState()
    for n in range(5):
        mail.put(dataclasses.replace(contact(n), last_name=f"Lee {n}"))
    bad = mail.put(Contact(first_name="x" * 41, last_name="Long"))
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)

    report = sync_kind(org.rep.id, ItemKind.CONTACT, side, mail, state, Policy())

    assert report.written_to(Side.CRM) == 5 and writes(org, "PATCH") == 1
    (row,) = state.errors
    assert (row.item_id, row.error_type) == (bad, ErrorType.REJECTED_WRITE)
    assert "FirstName" in row.suggestion


def test_a_batch_repeated_after_a_crash_finds_its_first_attempt(org: OrgHarness) -> None:
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    assert isinstance(side, BatchWrites)
    items = [(dataclasses.replace(contact(n), last_name=f"Lee {n}"), f"m{n}") for n in range(3)]
    first = side.create_many(items[:2])
    again = side.create_many(items)
    assert [w.id for w in again[:2]] == [w.id for w in first]  # type: ignore[union-attr]
    assert len(org.fake.org.rows["Contact"]) == 3  # type: ignore[union-attr]
