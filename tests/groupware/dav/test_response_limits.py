"""`ResponseLimits` on paths the Radicale tests do not take: a listing past its total cap,
a multiget past the answer cap read item by item (the oversized item an error of its own),
and a Depth 1 PROPFIND listing past the per-<response> cap. Served by an in-process fake."""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape

import httpx
import pytest

from crmsync.domain.sync import ErrorType
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, ResponseLimits
from crmsync.groupware.dav.vcard import VCardFormat, render_new_vcard
from crmsync.transport.bounded import ResponseTooLarge
from tests.groupware.contract import sample_contact

BOOK = "/u/book/"
CARD = render_new_vcard(sample_contact(), "m1", "u1")
BIG_CARD = CARD.replace("END:VCARD", "NOTE:" + "x" * 5000 + "\r\nEND:VCARD")
NAMESPACES = 'xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"'


def _ms(inner: str, token: str = "") -> httpx.Response:
    tok = f"<d:sync-token>{token}</d:sync-token>" if token else ""
    return httpx.Response(207, content=f"<d:multistatus {NAMESPACES}>{inner}{tok}</d:multistatus>")


class Chunked(httpx.SyncByteStream):
    """A body sent in 500-byte chunks, as a network delivers a large one."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.body), 500):
            yield self.body[start : start + 500]


def _etag(href: str) -> str:
    return (
        f'<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>"e"'
        "</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


def _data(href: str, card: str) -> str:
    return (
        f'<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>"e"</d:getetag>'
        f"<a:address-data>{escape(card)}</a:address-data></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


def _collection(handler: object, limits: ResponseLimits) -> DavCollection:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    connection = DavConnection("http://fake", transport=transport, limits=limits)
    return DavCollection(connection, BOOK, VCardFormat())


def test_a_listing_past_its_total_cap_fails_with_the_cap_named() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _ms("".join(_etag(f"{BOOK}{i}.vcf") for i in range(200)), "t1")

    side = _collection(handler, ResponseLimits(listing_bytes=10_000))
    with pytest.raises(ResponseTooLarge, match=f"the listing of {BOOK}: .*10000-byte cap"):
        side.changes(None, {})


def test_a_depth_1_listing_with_a_response_past_its_cap_fails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b"sync-collection" in request.content:
            return httpx.Response(501)  # no sync-collection: a PROPFIND listing instead
        listing = _ms(_etag(BOOK + "a.vcf").replace('"e"', '"' + "e" * 5000 + '"'))
        return httpx.Response(207, stream=Chunked(listing.content))

    side = _collection(handler, ResponseLimits(listing_response_bytes=1000))
    with pytest.raises(ResponseTooLarge, match="one <response> of the server's answer"):
        side.changes(None, {})


def test_a_multiget_past_the_cap_is_read_item_by_item_and_the_big_item_is_an_error() -> None:
    gets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request.url.path)
            card = BIG_CARD if request.url.path.endswith("big.vcf") else CARD
            return httpx.Response(200, headers={"ETag": '"e"'}, content=card.encode())
        if b"sync-collection" in request.content:
            return _ms(_etag(BOOK + "big.vcf") + _etag(BOOK + "small.vcf"), "t1")
        if b"addressbook-multiget" in request.content:
            return _ms(_data(BOOK + "big.vcf", BIG_CARD) + _data(BOOK + "small.vcf", CARD))
        assert request.method == "PROPFIND"  # the ETag of the item refused unread
        return _ms(_etag(request.url.path))

    side = _collection(handler, ResponseLimits(item_bytes=4000, answer_bytes=6000))
    changes = side.changes(None, {})
    assert sorted(gets) == [BOOK + "big.vcf", BOOK + "small.vcf"]
    by_id = {s.id: s for s in changes.items}
    assert by_id[BOOK + "small.vcf"].record is not None
    problem = by_id[BOOK + "big.vcf"].problem
    assert problem is not None and problem.error_type is ErrorType.MALFORMED_ITEM
    assert f"{BOOK}big.vcf is larger than the 3 KiB" in problem.message


def test_an_item_past_the_cap_inside_a_multiget_within_its_cap_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b"sync-collection" in request.content:
            return _ms(_etag(BOOK + "big.vcf") + _etag(BOOK + "small.vcf"), "t1")
        return _ms(_data(BOOK + "big.vcf", BIG_CARD) + _data(BOOK + "small.vcf", CARD))

    side = _collection(handler, ResponseLimits(item_bytes=4000))
    by_id = {s.id: s for s in side.changes(None, {}).items}
    assert by_id[BOOK + "small.vcf"].record is not None
    assert by_id[BOOK + "big.vcf"].record is None and by_id[BOOK + "big.vcf"].problem
