"""Issue 13's real-world items, quirk by quirk, through the DAV formats (their fixtures
run through every path in test_fixture_corpus.py and, with a real server, in
tests/service/test_fidelity_round_trip.py)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection
from crmsync.groupware.dav.formats import MalformedItem
from crmsync.groupware.dav.vcard import VCardFormat, parse_vcard, render_vcard_update
from tests.fidelity import fixture_bytes, fixture_text

BOOK = "/u/book/"


def _serving(items: dict[str, bytes]) -> DavCollection:
    """A collection on an in-process server holding ``items`` (name → bytes) as stored."""

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rpartition("/")[2]
        return httpx.Response(200, content=items[name], headers={"ETag": '"e"'})

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    return DavCollection(connection, BOOK, VCardFormat())


# ---------------------------------------------------------------- 1. malformed or repaired


def test_a_vcard_without_fn_is_named_from_n_and_noted_as_repaired() -> None:
    name = "contacts/vcard30_no_fn_n_only.vcf"
    parsed = parse_vcard(fixture_text(name))
    assert (parsed.record.first_name, parsed.record.last_name) == ("Henrik", "Brandt")
    assert "repaired" in parsed.note and "no FN" in parsed.note
    seen = _serving({"card.vcf": fixture_bytes(name)}).fetch(BOOK + "card.vcf")
    assert seen is not None and seen.record == parsed.record and seen.note == parsed.note
    # A write adds the FN the card lacks (servers refuse a 3.0 card without one).
    updated = render_vcard_update(fixture_text(name), parsed.record)
    assert updated == fixture_text(name)  # nothing changed, nothing written
    edited = render_vcard_update(fixture_text(name), replace(parsed.record, title="CEO"))
    assert "\r\nFN:Henrik Brandt\r\n" in edited and parse_vcard(edited).note == ""


@pytest.mark.parametrize(
    "lines",
    ["N:;;;;\r\nEMAIL:x@example.com\r\n", "EMAIL:x@example.com\r\nN:;;;Dr.;\r\n"],
    ids=["empty-n", "only-a-prefix"],
)
def test_a_vcard_without_fn_or_a_name_in_n_is_malformed(lines: str) -> None:
    text = "BEGIN:VCARD\r\nVERSION:4.0\r\n" + lines + "END:VCARD\r\n"
    with pytest.raises(MalformedItem, match="no FN"):
        parse_vcard(text)
