"""`without_control_characters`: what no mail item can hold is left out, nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.domain import mail_text
from crmsync.domain.mail_text import printable_text, without_control_characters
from crmsync.domain.records import Address, Attendee, Contact, Event, EventTiming

_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
START = dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC)


@given(st.text())
def test_printable_text_leaves_out_exactly_the_unwritable_characters(value: str) -> None:
    cleaned = printable_text(value)
    assert not _UNWRITABLE.search(cleaned)
    assert cleaned == "".join(c for c in value if not _UNWRITABLE.match(c))
    assert printable_text(cleaned) == cleaned


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"))
)
def test_a_value_without_controls_is_kept_as_it_is(value: str) -> None:
    assert printable_text(value) == value


def test_tabs_and_line_breaks_stay() -> None:
    assert printable_text("a\tb\r\nc\nd\x00") == "a\tb\r\nc\nd"


def test_nested_texts_are_cleaned_and_a_clean_record_is_returned_itself() -> None:
    event = Event(
        "Call\x0b",
        EventTiming(START, START + dt.timedelta(hours=1)),
        categories=("ok", "b\x1bad"),
        attendees=(Attendee("ada@example.com", "Ada\x00"),),
    )
    cleaned = without_control_characters(event)
    assert cleaned.subject == "Call" and cleaned.categories == ("ok", "bad")
    assert cleaned.attendees[0].name == "Ada" and cleaned.timing is event.timing
    contact = Contact("Ann", "Lee", mailing_address=Address(street="1\x7f Main St"))
    assert without_control_characters(contact).mailing_address.street == "1 Main St"
    clean = dataclasses.replace(contact, mailing_address=Address(street="1 Main St"))
    assert without_control_characters(clean) is clean


def test_a_batch_of_records_is_cleaned_once_each_and_answered_alike_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The engine asks for a batch's records before writing them, then again per write.
    looked_at: list[object] = []
    cleaned = mail_text._cleaned

    def counting(value: object) -> object:
        looked_at.append(value)
        return cleaned(value)

    monkeypatch.setattr(mail_text, "_cleaned", counting)
    batch = [Contact(f"Ann{i}", "Lee\x00" if i % 2 else "Lee") for i in range(200)]
    first = [without_control_characters(contact) for contact in batch]
    tops = sum(1 for value in looked_at if isinstance(value, Contact))
    again = [without_control_characters(contact) for contact in batch]
    assert tops == len(batch)
    assert sum(1 for value in looked_at if isinstance(value, Contact)) == tops
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert [c.last_name for c in first[:2]] == ["Lee", "Lee"] and first[0] is batch[0]
    # A cleaned copy handed back in is clean already: answered as itself.
    assert without_control_characters(first[1]) is first[1]


def test_records_beyond_the_remembered_are_cleaned_again_all_the_same() -> None:
    batch = [Contact(f"Ann{i}", "Lee\x07") for i in range(mail_text._RECENT.size * 2)]
    first = [without_control_characters(contact) for contact in batch]
    again = [without_control_characters(contact) for contact in batch]
    assert all(c.last_name == "Lee" for c in again)
    assert first == again
