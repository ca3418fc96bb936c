"""Request bodies: refused unread from callers who are not signed in, and capped in size.

FastAPI reads and parses a JSON or form body before a route's dependencies run, so the
permission check alone would come after the whole body sits in memory: an anonymous
400 MB POST grew the process by a gigabyte. This middleware decides first: a request that
may carry a body (anything but a GET or HEAD without one) from a caller without a valid
session or token is answered as unauthenticated without reading a byte of it (except the
sign-in and sign-out forms), and a body larger than the cap is answered 413, from
``Content-Length`` before reading, or while counting the bytes of a chunked body (or one
longer than its ``Content-Length`` said).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# The sign-in form is a user name and a password: a few hundred bytes.
ANONYMOUS_MAX_BODY_BYTES = 16 * 1024
ANONYMOUS_PATHS = frozenset({"/login", "/logout"})


class BodyTooLarge(HTTPException):
    """A body over the cap. An `HTTPException`, so that FastAPI's body parsing passes it
    on as it is (it turns other errors into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"The request body is larger than the {limit} bytes this server accepts."
        )


def too_large_response(path: str, exc: BodyTooLarge) -> Response:
    if path.startswith("/api/"):
        return JSONResponse({"detail": exc.detail}, status_code=413)
    return PlainTextResponse(exc.detail, status_code=413)


class BodyGuard:
    """ASGI middleware; ``signed_in`` tells (off the event loop: it reads the store)
    whether a request carries a valid session or token, and ``not_signed_in`` is the
    answer when it does not."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signed_in: Callable[[Request], bool],
        not_signed_in: Callable[[Request], Response],
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("the body size limit must be at least 1 byte")
        self.app = app
        self.signed_in = signed_in
        self.not_signed_in = not_signed_in
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        # Without a length or chunked coding an HTTP/1.1 request has no body, but other
        # protocols may send one without either: only GET and HEAD count as bodiless.
        bodiless = scope["method"] in ("GET", "HEAD") and not (
            declared or "transfer-encoding" in headers
        )
        anonymous = scope["path"] in ANONYMOUS_PATHS
        if not (anonymous or bodiless):
            # First, so that a caller who is not signed in learns that, and nothing else.
            request = Request(scope)
            if not await run_in_threadpool(self.signed_in, request):
                await self.not_signed_in(request)(scope, receive, send)
                return
        limit = ANONYMOUS_MAX_BODY_BYTES if anonymous else self.max_body_bytes
        if declared is not None and declared > limit:
            await too_large_response(scope["path"], BodyTooLarge(limit))(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            # Raised where nothing turned it into a response (outside FastAPI's handlers).
            if started:
                raise
            await too_large_response(scope["path"], exc)(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None
