"""Protocol paths real test servers do not take: truncated sync results (507) and servers
without sync-collection (PROPFIND fallback). Served by an in-process fake."""

from __future__ import annotations

from dataclasses import replace
from xml.sax.saxutils import escape

import httpx
import pytest

from crmsync.domain.records import Contact, Record
from crmsync.domain.sync import ServerUnavailable, Written
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection
from crmsync.groupware.dav.formats import ParsedItem
from crmsync.groupware.dav.listing import FULL_LISTING_TIMEOUT
from crmsync.groupware.dav.vcard import VCardFormat, render_new_vcard
from tests.groupware.contract import sample_contact

BOOK = "/u/book/"
CARD = render_new_vcard(sample_contact(), "m1", "u1")


def _ms(inner: str, token: str | None = None) -> httpx.Response:
    tok = f"<d:sync-token>{token}</d:sync-token>" if token else ""
    namespaces = 'xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"'
    body = f"<d:multistatus {namespaces}>{inner}{tok}</d:multistatus>"
    return httpx.Response(207, content=body.encode())


def _etag(href: str, etag: str) -> str:
    return (
        f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>{etag}"
        "</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


def _data(href: str) -> str:
    return (
        f'<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>"e"</d:getetag>'
        f"<a:address-data>{escape(CARD)}</a:address-data></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


def test_truncated_sync_results_are_followed() -> None:
    seen_tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if "sync-collection" in body:
            token = body.split("<d:sync-token>")[1].split("<")[0]
            seen_tokens.append(token)
            if token == "t1":
                truncated = (
                    f"<d:response><d:href>{BOOK}</d:href>"
                    "<d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>"
                )
                return _ms(_etag(BOOK + "a.vcf", '"e"') + truncated, "t2")
            return _ms(_etag(BOOK + "b.vcf", '"e"'), "t3")
        assert "addressbook-multiget" in body
        return _ms(_data(BOOK + "a.vcf") + _data(BOOK + "b.vcf"))

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    changes = DavCollection(connection, BOOK, VCardFormat()).changes("t1", {})
    assert seen_tokens == ["t1", "t2"]
    assert sorted(s.id for s in changes.items) == [BOOK + "a.vcf", BOOK + "b.vcf"]
    assert changes.cursor == "t3" and not changes.full


def test_server_without_sync_collection_falls_back_to_propfind() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "REPORT" and b"sync-collection" in request.content:
            error = b"<d:error xmlns:d='DAV:'><d:valid-sync-token/></d:error>"
            return httpx.Response(403, content=error)
        if request.method == "PROPFIND":
            assert request.headers["Content-Type"].startswith("application/xml")
            return _ms(
                _etag(BOOK, '"c"').replace("getetag", "sync-token")
                + _etag(BOOK + "a.vcf", '"e"')
                + _etag(BOOK + "b.vcf", '"old"')
            )
        return _ms(_data(BOOK + "b.vcf"))

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    side = DavCollection(connection, BOOK, VCardFormat())
    changes = side.changes("stale", {BOOK + "a.vcf": '"e"', BOOK + "gone.vcf": '"x"'})
    assert changes.full
    assert [s.id for s in changes.items] == [BOOK + "b.vcf"]
    assert changes.deleted == (BOOK + "gone.vcf",)
    # The sync-token a server reports but refuses in REPORT is no cursor: a listing is.
    assert changes.cursor == "listing:"


def test_the_body_cache_is_bounded_and_an_evicted_item_is_read_again_on_update() -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.method)
        body = request.content.decode()
        if request.method == "REPORT" and "sync-collection" in body:
            return _ms(_etag(BOOK + "a.vcf", '"e"') + _etag(BOOK + "b.vcf", '"e"'), "t1")
        if request.method == "REPORT":
            return _ms(_data(BOOK + "a.vcf") + _data(BOOK + "b.vcf"))
        if request.method == "GET":
            return httpx.Response(200, content=CARD.encode(), headers={"ETag": '"e"'})
        assert request.method == "PUT" and request.headers["If-Match"] == '"e"'
        return httpx.Response(204, headers={"ETag": '"f"'})

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    side = DavCollection(connection, BOOK, VCardFormat())
    side.BODY_CACHE_SIZE = 1
    changes = side.changes(None, {})
    assert len(changes.items) == 2
    first, second = sorted(changes.items, key=lambda s: s.id)
    requests.clear()
    side.update(second.id, '"e"', replace(second.record, title="CFO"))  # cached: no GET
    side.update(first.id, '"e"', replace(first.record, title="CFO"))  # evicted: GET first
    assert requests == ["PUT", "GET", "PUT"]


def test_a_full_listing_waits_longer_for_its_answer_than_other_requests() -> None:
    # A sync-collection from no token lists the whole collection: Radicale took over the
    # connection's 30 s for 50,000 items on a busy machine, and the rep never synced.
    read_timeouts: dict[str, float] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        token = body.split("<d:sync-token>")[1].split("<")[0]
        read_timeouts[token or "(none)"] = request.extensions["timeout"]["read"]
        return _ms(_etag(BOOK + "a.vcf", '"e"'), "t1")

    connection = DavConnection("http://fake", timeout=30.0, transport=httpx.MockTransport(handler))
    collection = DavCollection(connection, BOOK, VCardFormat())
    collection.changes(None, {BOOK + "a.vcf": '"e"'})
    collection.changes("t1", {BOOK + "a.vcf": '"e"'})
    assert read_timeouts == {"(none)": FULL_LISTING_TIMEOUT, "t1": 30.0}


class _CountingVCards(VCardFormat):
    """A vCard format that counts the texts it parses."""

    parses = 0

    def parse(self, text: str) -> ParsedItem[Record]:
        self.parses += 1
        return super().parse(text)


def _created(contact: Contact) -> tuple[Written, int]:
    """The written item of a create of ``contact`` (answered 201 with an ETag) and how
    many texts the format parsed for it."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT" and request.headers["If-None-Match"] == "*"
        return httpx.Response(201, headers={"ETag": '"new"'})

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    vcards = _CountingVCards()
    written = DavCollection(connection, BOOK, vcards).create(contact, "m1")
    return written, vcards.parses


def test_a_create_keeps_the_record_given_when_its_text_reads_back_as_it() -> None:
    plain = Contact(first_name="Ada", last_name="Lovelace", phone="+44 20 7946 0000")
    written, parses = _created(plain)
    assert parses == 0
    assert written.record is plain and written.version == '"new"'


def test_a_create_parses_its_text_back_when_a_value_reads_back_otherwise() -> None:
    # A phone written as a tel: URI reads back as the number alone.
    uri_phone = Contact(first_name="Ada", last_name="Lovelace", phone="tel:+44 20 7946 0000")
    written, parses = _created(uri_phone)
    assert parses == 1
    assert written.record is not uri_phone and written.record.phone == "+44 20 7946 0000"


def test_unreadable_xml_in_a_listing_or_a_ctag_answer_is_the_same_transient_failure() -> None:
    # A sync-collection is read as it streams in, a ctag's PROPFIND whole: either way the
    # cycle fails and is tried again, naming the collection.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(207, content=b"<d:multistatus xmlns:d='DAV:'><d:response>")

    connection = DavConnection("http://fake", transport=httpx.MockTransport(handler))
    collection = DavCollection(connection, BOOK, VCardFormat())
    failures = []
    for cursor in ("t1", "listing:c1"):
        with pytest.raises(ServerUnavailable) as raised:
            collection.changes(cursor, {})
        failures.append(raised.value)
    listed, ctag = failures
    assert listed.message.startswith(f"{BOOK}: ") and ctag.message.startswith(f"{BOOK}: ")
    assert listed.suggestion == ctag.suggestion and "retried next cycle" in ctag.suggestion
