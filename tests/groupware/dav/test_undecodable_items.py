"""An item whose bytes are not UTF-8 is a malformed-item error, never text with U+FFFD
replacement characters in the CRM.

Radicale re-reads such a body as Latin-1 and Xandikos refuses it (500), so neither serves
one; a server that stores bytes as received does, by GET and inside a multiget (where
the bytes make the whole XML response unreadable). Served here by an in-process fake.
"""

from __future__ import annotations

import httpx
import pytest

from crmsync.domain.sync import ErrorType
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy
from crmsync.groupware.dav.formats import MalformedItem, item_text
from crmsync.groupware.dav.vcard import VCardFormat
from tests.fidelity import fixture_bytes

BOOK = "/u/book/"
BAD = fixture_bytes("malformed/vcard40_invalid_utf8.vcf")
GOOD = fixture_bytes("contacts/vcard40_cjk_name.vcf")
ITEMS = {BOOK + "bad.vcf": BAD, BOOK + "good.vcf": GOOD}


def _response(href: str, data: bytes | None = None) -> bytes:
    inner = b"" if data is None else b"<a:address-data>" + data + b"</a:address-data>"
    return (
        b"<d:response><d:href>" + href.encode() + b'</d:href><d:propstat><d:prop><d:getetag>"e"'
        b"</d:getetag>" + inner + b"</d:prop><d:status>HTTP/1.1 200 OK</d:status>"
        b"</d:propstat></d:response>"
    )


def _multistatus(*responses: bytes, token: bytes = b"") -> httpx.Response:
    head = b'<d:multistatus xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav">'
    tail = (b"<d:sync-token>" + token + b"</d:sync-token>" if token else b"") + b"</d:multistatus>"
    return httpx.Response(207, content=head + b"".join(responses) + tail)


def _server(requests: list[str], multiget_status: int = 207) -> httpx.MockTransport:
    """Stores bytes as received: a multiget puts them into its XML as they are (or fails
    with ``multiget_status``, as Xandikos does)."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.method)
        if request.method == "REPORT" and b"sync-collection" in request.content:
            return _multistatus(*(_response(h) for h in ITEMS), token=b"t1")
        if request.method == "REPORT":
            if multiget_status != 207:
                return httpx.Response(multiget_status)
            wanted = [h for h in ITEMS if h.encode() in request.content]
            return _multistatus(*(_response(h, ITEMS[h]) for h in wanted))
        assert request.method == "GET"
        return httpx.Response(200, content=ITEMS[request.url.path], headers={"ETag": '"e"'})

    return httpx.MockTransport(handler)


def test_bytes_that_are_not_utf8_are_a_malformed_item() -> None:
    with pytest.raises(MalformedItem) as refused:
        item_text(BAD)
    assert "UTF-8" in refused.value.message and "line 3" in refused.value.message
    assert refused.value.suggestion
    assert item_text(GOOD) == GOOD.decode("utf-8")


@pytest.mark.parametrize("multiget_status", [207, 500], ids=["unreadable-xml", "http-500"])
def test_a_failed_multiget_is_read_item_by_item_and_only_the_bad_item_is_an_error(
    multiget_status: int,
) -> None:
    requests: list[str] = []
    retry = RetryPolicy(max_attempts=2, base_delay=0.0, jitter=0.0, sleep=lambda _: None)
    transport = _server(requests, multiget_status)
    connection = DavConnection("http://fake", retry=retry, transport=transport)
    changes = DavCollection(connection, BOOK, VCardFormat()).changes(None, {})

    by_id = {s.id: s for s in changes.items}
    assert set(by_id) == set(ITEMS)
    good, bad = by_id[BOOK + "good.vcf"], by_id[BOOK + "bad.vcf"]
    assert good.record is not None and good.record.last_name == "王"
    assert bad.record is None and bad.problem is not None
    assert bad.problem.error_type is ErrorType.MALFORMED_ITEM
    assert "UTF-8" in bad.problem.message
    multigets = 1 if multiget_status == 207 else retry.max_attempts
    assert requests == ["REPORT"] + ["REPORT"] * multigets + ["GET", "GET"]


def test_a_fetched_item_that_is_not_utf8_is_an_error_not_replacement_characters() -> None:
    connection = DavConnection("http://fake", transport=_server([]))
    seen = DavCollection(connection, BOOK, VCardFormat()).fetch(BOOK + "bad.vcf")
    assert seen is not None and seen.record is None
    assert seen.problem is not None and "UTF-8" in seen.problem.message
    assert "\ufffd" not in seen.problem.message
