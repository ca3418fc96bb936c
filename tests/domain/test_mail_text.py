"""`without_control_characters`: what no mail item can hold is left out, nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

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
