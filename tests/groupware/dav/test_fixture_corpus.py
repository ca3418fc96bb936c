"""The fixture corpus through the formats: meaning read, kept on rendering, and nothing
but the edited line changed by an update. (Through a real server: tests/service.)"""

from __future__ import annotations

import dataclasses

import pytest

from crmsync.domain.records import Contact, Event
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MalformedItem, NotSynced
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.vcard import VCardFormat
from tests.fidelity import (
    EXPECTED,
    copy_differences,
    differences,
    expected_meaning,
    fixture_names,
    fixture_text,
    meaning,
    skipped_fixture_names,
)

# Floating fixtures are read in the rep's zone; one with DST on other dates than the US.
REP_ZONE = "Europe/Berlin"
VALID = fixture_names("events") + fixture_names("contacts")


def format_for(name: str) -> ICalendarFormat | VCardFormat:
    return ICalendarFormat(REP_ZONE) if name.endswith(".ics") else VCardFormat()


def edited(record: Event | Contact) -> Event | Contact:
    if isinstance(record, Event):
        return dataclasses.replace(record, subject=record.subject + " (edited in the CRM)")
    return dataclasses.replace(record, title="Edited in the CRM")


def logical_lines(text: str) -> list[str]:
    """Every content line, unfolded, in order (QUOTED-PRINTABLE ones decoded)."""
    lines = []
    for component in cl.parse(text).walk():
        for prop in component.properties:
            lines.append(f"{component.name}/{''.join(prop.render())}")
    return lines


def test_the_corpus_is_as_large_as_promised() -> None:
    assert len(fixture_names("events")) >= 60 and len(fixture_names("contacts")) >= 40
    assert len(fixture_names("malformed")) >= 10


@pytest.mark.parametrize("name", VALID)
def test_a_fixture_means_what_expected_json_says(name: str) -> None:
    parsed = format_for(name).parse(fixture_text(name))
    assert differences(expected_meaning(name, REP_ZONE), meaning(parsed.record)) == {}
    # A repair made while reading is noted for the audit trail, and only then.
    assert bool(parsed.note) == ("repaired" in EXPECTED[name]), parsed.note


@pytest.mark.parametrize("name", VALID)
def test_a_new_item_written_from_the_record_means_the_same(name: str) -> None:
    """CRM → mail at the format level: what we write reads back to the same meaning."""
    item_format = format_for(name)
    record = item_format.parse(fixture_text(name)).record
    written = item_format.render_new(record, "crm-1", "uid-1")
    again = item_format.parse(written).record
    assert differences(meaning(record), meaning(again)) == {}
    assert again == record


@pytest.mark.parametrize("name", fixture_names("contacts"))
def test_a_new_card_carries_what_the_crm_record_holds(name: str) -> None:
    """CRM → mail: the names in the order the card had them, the email marked preferred."""
    record = VCardFormat().parse(fixture_text(name)).record
    assert copy_differences(name, VCardFormat().render_new(record, "crm-1", "uid-1")) == {}


@pytest.mark.parametrize("name", VALID)
def test_an_update_changes_only_the_edited_line(name: str) -> None:
    text = fixture_text(name)
    item_format = format_for(name)
    record = item_format.parse(text).record
    updated = item_format.render_update(text, edited(record))
    assert item_format.parse(updated).record == edited(record)
    before, after = logical_lines(text), logical_lines(updated)
    edited_name = "SUMMARY" if name.endswith(".ics") else "TITLE"
    master = "VEVENT" if name.endswith(".ics") else "VCARD"

    def is_edited(line: str) -> bool:
        component, _, content = line.partition("/")
        prop = content.split(":", 1)[0].split(";", 1)[0].rpartition(".")[2].upper()
        return component == master and prop == edited_name

    def is_repair(line: str) -> bool:
        # A property the item lacked and must have (a vCard's FN) is written with the edit.
        prop = line.partition("/")[2].split(":", 1)[0].split(";", 1)[0]
        return prop in EXPECTED[name].get("repaired", ())

    # Overrides keep their own SUMMARY: only the master's line may differ.
    unchanged_before = [line for line in before if not is_edited(line)]
    unchanged_after = [line for line in after if not is_edited(line) and not is_repair(line)]
    assert unchanged_after == unchanged_before


@pytest.mark.parametrize("name", skipped_fixture_names())
def test_an_item_that_is_no_contact_or_event_is_left_out_by_a_named_rule(name: str) -> None:
    with pytest.raises(NotSynced) as left_out:
        format_for(name).parse(fixture_text(name))
    rule = left_out.value.message
    assert EXPECTED[name]["skipped"].split(" (")[0] in rule, rule


@pytest.mark.parametrize("name", fixture_names("malformed"))
def test_a_malformed_fixture_is_refused_with_a_precise_suggestion(name: str) -> None:
    with pytest.raises(MalformedItem) as refused:
        format_for(name).parse(fixture_text(name))
    assert refused.value.message and refused.value.suggestion
    assert EXPECTED[name]["malformed"] is True
