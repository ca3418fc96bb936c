"""`content_hash`: stable across releases, and computed once per record a batch asks about.

Content hashes are stored in every link: a change to how they are computed would make
every synced item look edited on the next cycle. The digests below were taken with the
code links have been stored with (`to_plain` walking `dataclasses.fields` per value); the
records must keep hashing to them."""

from __future__ import annotations

import datetime as dt

import pytest

from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Occurrence,
    Recurrence,
    ShowAs,
)
from crmsync.engine import hashing
from crmsync.engine.hashing import content_hash

START = dt.datetime(2027, 3, 8, 14, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)

FULL_CONTACT = Contact(
    first_name="Zoë",
    last_name="Ødegård",
    salutation="Dr.",
    title="CTO; Founder",
    department="R&D",
    account_name="Acme, Inc.",
    email="zoe@example.com",
    phone="+1 555 0100",
    mobile_phone="+1 555 0101",
    home_phone="+1 555 0102",
    other_phone="+1 555 0103",
    fax="+1 555 0104",
    mailing_address=Address("1 Main St\nSuite 5", "Springfield", "IL", "62701", "USA"),
    other_address=Address(city="東京"),
    birthdate=dt.date(1980, 2, 29),
    description="line one\nline two",
    is_person_account=True,
)
PLAIN_EVENT = Event("Call", EventTiming(START, START + HOUR))
ALL_DAY_EVENT = Event("Offsite", EventTiming(dt.date(2027, 3, 8), dt.date(2027, 3, 10)))
FULL_EVENT = Event(
    "Review, weekly",
    EventTiming(START, START + HOUR, "Europe/Berlin", "America/New_York"),
    location="Room 1",
    description="Agenda:\n- a",
    is_private=True,
    show_as=ShowAs.FREE,
    categories=("CRM", "Sales"),
    attendees=(
        Attendee("a@example.com", "A", AttendeeStatus.ACCEPTED),
        Attendee("b@example.com", required=False, delegated_to=("c@example.com",)),
    ),
    organizer="boss@example.com",
    recurrence=Recurrence(
        "FREQ=WEEKLY;COUNT=5",
        exdates=(START + 7 * 24 * HOUR,),
        overrides=(
            Occurrence(
                START + 14 * 24 * HOUR,
                EventTiming(START + 15 * 24 * HOUR, START + 15 * 24 * HOUR + HOUR),
                "Moved",
            ),
        ),
        rdates=(START + 2 * 24 * HOUR,),
        rdate_periods=((START + 3 * 24 * HOUR, START + 3 * 24 * HOUR + HOUR),),
    ),
)


@pytest.mark.parametrize(
    ("record", "digest"),
    [
        (Contact(), "4c90ccc0300f302b11778d77a237bfe8d1185b9c6a889bbccc793956ef77cd8d"),
        (FULL_CONTACT, "c47bcc58c897e8d360ca5112c5670ec23326a408c6fcc37ae02962b2ffe7c1e9"),
        (PLAIN_EVENT, "9625842f9e58b5225943e6cd5cbe468893035840a9db90943b560c9e80d77bcf"),
        (ALL_DAY_EVENT, "35818ed61898276e24ddd79ed620eb9a3ed6a6bfb23983378b9cf95b8383c4a2"),
        (FULL_EVENT, "907146d4d8faff170ec37d14c956b6981b2bbcd377127db2e96fd4eb88c0f721"),
    ],
    ids=["empty contact", "full contact", "plain event", "all-day event", "full event"],
)
def test_a_record_hashes_as_it_always_did(record: object, digest: str) -> None:
    assert content_hash(record) == digest  # type: ignore[arg-type]


def test_a_batch_of_records_is_hashed_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    # The executor hashes a batch's records for their intents, then again for the links.
    walked: list[object] = []
    to_plain = hashing.to_plain

    def counting(value: object) -> object:
        walked.append(value)
        return to_plain(value)

    monkeypatch.setattr(hashing, "to_plain", counting)
    batch = [Contact(f"Ann{i}", "Lee") for i in range(200)]
    first = [content_hash(contact) for contact in batch]
    again = [content_hash(contact) for contact in batch]
    assert len(walked) == len(batch)
    assert again == first and len(set(first)) == len(batch)
