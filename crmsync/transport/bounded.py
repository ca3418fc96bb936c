"""Reading an untrusted HTTP body with a size cap, before anything parses it.

The response must have been sent with ``stream=True``: the cap is checked against the
declared ``Content-Length`` before a byte is read, and against the bytes received (after
decompression, so a small gzip body cannot grow past it) while they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from crmsync.domain.sync import ServerUnavailable


class ResponseTooLarge(ServerUnavailable):
    """A response beyond crmsync's cap: refused unread past the cap, never parsed."""

    def __init__(
        self,
        what: str,
        limit: int,
        declared: int | None = None,
        suggestion: str = "Report this: crmsync asks for far less than that.",
        part: str = "the server's answer",
    ) -> None:
        size = f" of {declared} bytes" if declared is not None else ""
        super().__init__(f"{what}: {part}{size} exceeds crmsync's {limit}-byte cap", suggestion)
        self.what = what
        self.limit = limit
        self.declared = declared


def declared_length(response: httpx.Response) -> int | None:
    """The ``Content-Length`` the server declared, if it is a number."""
    declared = response.headers.get("Content-Length", "")
    return int(declared) if declared.isdigit() else None


def bounded_chunks(
    response: httpx.Response, limit: int, what: str, suggestion: str = ""
) -> Iterator[bytes]:
    """The body of a streamed ``response`` chunk by chunk, at most ``limit`` bytes in all.

    Raises `ResponseTooLarge` (with ``suggestion``, if given) before reading when the
    declared size passes ``limit``, and as soon as the received bytes do (the chunk that
    passes it is not handed out).
    """
    fix = {"suggestion": suggestion} if suggestion else {}
    declared = declared_length(response)
    if declared is not None and declared > limit:
        raise ResponseTooLarge(what, limit, declared, **fix)
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(what, limit, **fix)
        yield chunk


def read_bounded(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body of a streamed ``response`` (closed afterwards), at most ``limit`` bytes.

    Raises `ResponseTooLarge` as soon as the declared or the received size passes it.
    """
    try:
        return b"".join(bounded_chunks(response, limit, what))
    finally:
        response.close()


def read_response(response: httpx.Response, limit: int, what: str) -> httpx.Response:
    """``response`` (streamed) as a read response whose body is at most ``limit`` bytes,
    for callers that use ``.content``, ``.text`` or ``.json()``; raises as `read_bounded`.

    The body is already decoded, so the answer carries no ``Content-Encoding``.
    """
    declared = declared_length(response)
    if declared is not None and declared <= limit and "Content-Encoding" not in response.headers:
        # Nothing to decode, and HTTP/1.1 framing reads no more than the declared length:
        # read in place. Rebuilding the response cost about a twentieth of a PUT's CPU.
        try:
            response.read()
        finally:
            response.close()
        return response
    body = read_bounded(response, limit, what)
    headers = response.headers.copy()
    headers.pop("Content-Encoding", None)
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
