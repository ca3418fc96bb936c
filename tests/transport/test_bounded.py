"""The shared capped reader: an answer over the cap is refused, and no more of it is read
than the cap (plus the chunk that passed it)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
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


def test_a_declared_length_within_the_cap_is_read_in_place() -> None:
    answer = httpx.Response(201, headers={"ETag": '"e2"'}, content=b"created")
    sent = streamed(answer)
    read = read_response(sent, 100, "the write")
    assert read is sent and read.is_closed
    assert (read.status_code, read.headers["ETag"], read.content) == (201, '"e2"', b"created")


def test_a_server_sending_more_than_it_declared_is_read_only_as_far_as_declared() -> None:
    # Read in place relies on HTTP/1.1 framing: the bytes past Content-Length are never
    # taken for the body, whatever the server sends.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
                with contextlib.suppress(OSError):
                    conn.sendall(head + b"y" * 1_000_000)

        server = threading.Thread(target=answer)
        server.start()
        with httpx.Client() as client:
            request = client.build_request("GET", f"http://127.0.0.1:{port}/")
            sent = client.send(request, stream=True)
            read = read_response(sent, 100, "the page")
        server.join()
    assert read.content == b"y" * 10
