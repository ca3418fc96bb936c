"""Reading an untrusted HTTP body with a size cap, before anything parses it."""

from __future__ import annotations

import httpx

from crmsync.domain.sync import ServerUnavailable


class ResponseTooLarge(ServerUnavailable):
    """A response beyond crmsync's cap: refused unread past the cap, never parsed."""


def read_bounded(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body of a streamed ``response`` (closed afterwards), at most ``limit`` bytes.

    Raises `ResponseTooLarge` as soon as the declared or the received size passes it.
    """
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(
                f"{what}: a response of {declared} bytes exceeds crmsync's {limit}-byte cap",
                "Report this: crmsync asks for pages far smaller than that.",
            )
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(
                    f"{what}: a response exceeded crmsync's {limit}-byte cap",
                    "Report this: crmsync asks for pages far smaller than that.",
                )
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        response.close()
