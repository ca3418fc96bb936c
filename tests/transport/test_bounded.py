"""The shared capped reader: an answer over the cap is refused, and no more of it is read
than the cap (plus the chunk that passed it)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from crmsync.transport.bounded import ResponseTooLarge, read_bounded, read_response


class CountingStream(httpx.SyncByteStream):
    """A chunked body of ``chunks`` chunks of ``size`` bytes; counts the chunks read."""

    def __init__(self, chunks: int, size: int = 1000) -> None:
        self.chunks = chunks
        self.size = size
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"x" * self.size


def streamed(response: httpx.Response) -> httpx.Response:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    return client.send(client.build_request("GET", "http://server.test/"), stream=True)


def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    body = CountingStream(10)
    response = streamed(httpx.Response(200, headers={"Content-Length": "10000"}, stream=body))
    with pytest.raises(ResponseTooLarge, match="of 10000 bytes exceeds crmsync's 5000-byte cap"):
        read_bounded(response, 5000, "the page")
    assert body.read == 0
    assert response.is_closed


def test_a_chunked_body_over_the_cap_stops_at_the_cap() -> None:
    body = CountingStream(1000)  # 1 MB, no Content-Length
    response = streamed(httpx.Response(200, stream=body))
    with pytest.raises(ResponseTooLarge, match="exceeds crmsync's 5500-byte cap"):
        read_bounded(response, 5500, "the page")
    assert body.read == 6  # the sixth chunk passed the cap; nothing after it was read
    assert response.is_closed


def test_a_body_within_the_cap_is_read_whole() -> None:
    response = streamed(httpx.Response(200, stream=CountingStream(5)))
    assert read_bounded(response, 5000, "the page") == b"x" * 5000


def test_a_compressed_body_is_capped_at_its_decoded_size() -> None:

    packed = gzip.compress(b"x" * 100_000)
    response = streamed(httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=packed))
    assert len(packed) < 5000
    with pytest.raises(ResponseTooLarge):
        read_bounded(response, 5000, "the page")


def test_a_read_response_keeps_status_and_headers_and_drops_the_encoding() -> None:

    answer = httpx.Response(
        207, headers={"Content-Encoding": "gzip", "ETag": '"e1"'}, content=gzip.compress(b"<ok/>")
    )
    read = read_response(streamed(answer), 100, "the listing")
    assert (read.status_code, read.headers["ETag"], read.content) == (207, '"e1"', b"<ok/>")
    assert "Content-Encoding" not in read.headers
