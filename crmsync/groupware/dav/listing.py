"""What a DAV answer may not exceed, where the cap is more than a plain bounded read.

A listing (a sync-collection, a Depth 1 PROPFIND of every ETag) is parsed as it arrives,
within `ResponseLimits.listing_bytes` in all and `ResponseLimits.listing_response_bytes`
per ``<response>``: past either the rep's cycle fails with `ResponseTooLarge`, holding no
more than the cap. An item past `ResponseLimits.item_bytes` is an `OversizedItem`: an
error of that item only.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.dav.connection import ResponseLimits
from crmsync.groupware.dav.formats import MalformedItem
from crmsync.groupware.dav.multistatus import (
    MultistatusError,
    Response,
    ResponseLimitPassed,
    read_multistatus,
)
from crmsync.transport.bounded import ResponseTooLarge, bounded_chunks

_LISTING_FIX = (
    "The mail server sent more than crmsync reads in one listing; check the folder and "
    "the server's log. The rep's cycle is tried again later."
)


class OversizedItem(MalformedItem):
    """An item larger than crmsync reads: reported as an error of that item at its
    ``etag``, never parsed."""

    def __init__(self, href: str, etag: str, limit: int) -> None:
        super().__init__(
            f"{href} is larger than the {limit // 1024} KiB crmsync reads of one item",
            "Make the item smaller on the mail server (a large photo, an attached file or a "
            "very long description); it is read again once it changes.",
        )
        self.etag = etag


def read_listing(
    limits: ResponseLimits, path: str, response: httpx.Response, each: Callable[[Response], None]
) -> str | None:
    """Hand each ``<response>`` of the streamed 207 listing of ``path`` to ``each`` as it
    arrives; returns the sync-token, if any. Raises `ResponseTooLarge` past ``limits``,
    `ServerUnavailable` for unreadable XML or a body that broke off."""
    what = f"the listing of {path}"
    chunks = bounded_chunks(response, limits.listing_bytes, what, _LISTING_FIX)
    try:
        return read_multistatus(chunks, each, limits.listing_response_bytes)
    except ResponseLimitPassed as exc:
        raise ResponseTooLarge(
            what,
            limits.listing_response_bytes,
            suggestion=_LISTING_FIX,
            part="one <response> of the server's answer",
        ) from exc
    except MultistatusError as exc:
        raise ServerUnavailable(
            f"{path}: {exc}", "Check the DAV server's logs; retried next cycle."
        ) from exc
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise ServerUnavailable(
            f"{what} broke off: {type(exc).__name__}",
            "Check that the mail server is running and reachable; retried next cycle.",
        ) from exc
