"""Request bodies: refused unread from anyone not signed in, and capped for everyone.

Requests go to the ASGI app directly, so the test sees how much of a body the app asked
for: a refusal must come before the body is read, not after.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from crmsync.admin.web.limits import ANONYMOUS_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES
from tests.admin.web.conftest import Console

CHUNK = 64 * 1024


@dataclass
class Exchange:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_read: int = 0  # bytes of the request body the app took


def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body_size: int,
    content_length: int | None = None,
) -> Exchange:
    """Send ``body_size`` bytes of ``{`` in 64 KiB chunks (``Content-Length`` when given,
    else chunked) and collect the answer."""
    exchange = Exchange()
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent >= body_size:
            return {"type": "http.disconnect"}
        chunk = b"{" * min(CHUNK, body_size - sent)
        sent += len(chunk)
        exchange.body_read = sent
        return {"type": "http.request", "body": chunk, "more_body": sent < body_size}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    raw = {k.lower(): v for k, v in headers.items()}
    if content_length is not None:
        raw["content-length"] = str(content_length)
    else:
        raw["transfer-encoding"] = "chunked"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in raw.items()],
        "client": ("192.0.2.10", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return exchange


BIG = 400 * 1024 * 1024  # what the anonymous client sent


def test_an_anonymous_body_is_refused_before_it_is_read(console: Console) -> None:
    app = console.client.app
    api = call(
        app,
        "POST",
        "/api/v1/connection-test",
        headers={"content-type": "application/json"},
        body_size=3 * CHUNK,
        content_length=BIG,
    )
    assert (api.status, api.body_read) == (401, 0)
    assert api.headers["www-authenticate"] == "Bearer"
    chunked = call(app, "PUT", "/api/v1/setup", headers={}, body_size=3 * CHUNK)
    assert (chunked.status, chunked.body_read) == (401, 0)
    # A wrong token is no better than none.
    forged = call(
        app,
        "POST",
        "/api/v1/configurations",
        headers={"authorization": "Bearer not-a-token"},
        body_size=3 * CHUNK,
    )
    assert (forged.status, forged.body_read) == (401, 0)
    page = call(
        app,
        "POST",
        "/configurations",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body_size=3 * CHUNK,
    )
    assert (page.status, page.body_read) == (303, 0)
    assert page.headers["location"].startswith("/login")


def test_the_sign_in_form_is_the_only_anonymous_body_and_it_is_small(console: Console) -> None:
    app = console.client.app
    form = {"content-type": "application/x-www-form-urlencoded"}
    too_big = ANONYMOUS_MAX_BODY_BYTES + 1
    declared = call(app, "POST", "/login", headers=form, body_size=too_big, content_length=too_big)
    assert (declared.status, declared.body_read) == (413, 0)
    streamed = call(app, "POST", "/login", headers=form, body_size=10 * CHUNK)
    assert streamed.status == 413 and streamed.body_read <= ANONYMOUS_MAX_BODY_BYTES + CHUNK
    assert (
        console.client.post("/login", data={"username": "full", "password": "x" * 20}).status_code
        == 401
    )


def test_a_signed_in_body_is_capped_up_front_and_while_streaming(console: Console) -> None:
    app = console.client.app
    auth = {**console.bearer("full"), "content-type": "application/json"}
    limit = DEFAULT_MAX_BODY_BYTES
    declared = call(
        app, "POST", "/api/v1/configurations", headers=auth, body_size=3 * CHUNK, content_length=BIG
    )
    assert (declared.status, declared.body_read) == (413, 0)
    assert "1048576 bytes" in declared.body.decode()
    # Chunked, or a Content-Length that lies: counted as it arrives, stopped at the cap.
    streamed = call(app, "PUT", "/api/v1/setup", headers=auth, body_size=4 * limit)
    assert streamed.status == 413 and streamed.body_read <= limit + CHUNK
    lying = call(app, "PUT", "/api/v1/setup", headers=auth, body_size=4 * limit, content_length=10)
    assert lying.status == 413 and lying.body_read <= limit + CHUNK


def test_forms_are_capped_too(console: Console) -> None:
    csrf = console.sign_in("full")
    huge = console.client.post(
        "/configurations",
        data={"csrf_token": csrf, "name": "Big", "description": "x" * DEFAULT_MAX_BODY_BYTES},
    )
    assert huge.status_code == 413
    assert console.service.store.config("Big") is None
    small = console.client.post(
        "/configurations",
        data={"csrf_token": csrf, "name": "Small", "description": "x" * 1000},
        follow_redirects=False,
    )
    assert small.status_code == 303
