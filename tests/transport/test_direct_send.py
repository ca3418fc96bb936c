"""DirectSender keeps what a DAV connection needs of `httpx.Client.send`: default headers,
the timeout, the auth flow (a Digest challenge answered), the cookie jar, and the
client's proxy routing where the environment names a proxy."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from crmsync.transport.direct_send import DirectSender

TIMEOUT = httpx.Timeout(7.0, read=42.0)


def sender_for(
    handler: httpx.MockTransport, auth: httpx.Auth | None = None
) -> tuple[httpx.Client, DirectSender]:
    return DirectSender.for_client(
        auth=auth, timeout=30.0, transport=handler, headers={"User-Agent": "crmsync"}
    )


def test_default_headers_timeout_and_the_body_reach_the_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, headers={"ETag": '"1"'})

    _, sender = sender_for(httpx.MockTransport(handler))
    response = sender.send(
        "PUT",
        "http://dav.example/a/b.vcf",
        content=b"BEGIN:VCARD",
        headers={"If-None-Match": "*"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201
    assert response.request is seen[0]
    (request,) = seen
    assert request.headers["User-Agent"] == "crmsync"
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.headers["If-None-Match"] == "*"
    assert request.headers["Content-Length"] == "11"
    assert request.content == b"BEGIN:VCARD"
    assert request.extensions["timeout"] == TIMEOUT.as_dict()


def test_a_digest_challenge_is_answered_by_the_auth_flow() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("Authorization", "")
        seen.append(authorization.split(" ")[0])
        if authorization.startswith("Digest ") and 'username="rep"' in authorization:
            return httpx.Response(207, text="<multistatus/>")
        challenge = 'Digest realm="dav", nonce="abc", qop="auth", algorithm=MD5'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    _, sender = sender_for(httpx.MockTransport(handler), httpx.DigestAuth("rep", "secret"))
    response = sender.send(
        "PROPFIND", "http://dav.example/rep/", content=b"", headers={}, timeout=TIMEOUT
    )
    assert response.status_code == 207
    assert seen == ["", "Digest"]


def test_a_cookie_the_server_sets_goes_back_with_later_requests() -> None:
    cookies: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookies.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "nc_session=s1; Path=/"})

    _, sender = sender_for(httpx.MockTransport(handler))
    for _ in range(2):
        sender.send("GET", "http://dav.example/x", content=None, headers={}, timeout=TIMEOUT)
    assert cookies == [None, "nc_session=s1"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 to any GET and records its request line (a proxy sees absolute URLs)."""

    lines: list[str]

    def do_GET(self) -> None:
        self.lines.append(self.requestline)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_proxy() -> Iterator[tuple[str, list[str]]]:
    lines: list[str] = []
    handler = type("Handler", (_Recorder,), {"lines": lines})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", lines
    finally:
        server.shutdown()
        server.server_close()


def test_a_proxy_named_in_the_environment_is_used(
    recording_proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, lines = recording_proxy
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    client, sender = DirectSender.for_client(
        auth=None, timeout=5.0, transport=None, headers={"User-Agent": "crmsync"}
    )
    with client:
        response = sender.send(
            "GET", "http://dav.invalid/rep/", content=None, headers={}, timeout=TIMEOUT
        )
        response.read()
    assert response.status_code == 200
    assert lines == ["GET http://dav.invalid/rep/ HTTP/1.1"]
