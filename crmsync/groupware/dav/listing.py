"""Listing one DAV collection: which items it holds or changed, and their ETags.

`CollectionListing` asks with a sync-collection REPORT (RFC 6578) from a token, or from
none for every item; a server refusing it is listed with a Depth 1 PROPFIND of every
ETag, and its CalendarServer ctag tells whether anything moved at all.

A listing (a sync-collection, a Depth 1 PROPFIND of every ETag) is parsed as it arrives,
within `ResponseLimits.listing_bytes` in all and `ResponseLimits.listing_response_bytes`
per ``<response>``: past either the rep's cycle fails with `ResponseTooLarge`, holding no
more than the cap. An item past `ResponseLimits.item_bytes` is an `OversizedItem`: an
error of that item only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.dav.answers import (
    MOVED_OR_GONE,
    Unexpected,
    multistatus_of,
    read_answer,
    unreadable,
)
from crmsync.groupware.dav.connection import DavConnection, ResponseLimits
from crmsync.groupware.dav.formats import MalformedItem
from crmsync.groupware.dav.multistatus import (
    CALENDARSERVER,
    DAV,
    MultistatusError,
    Response,
    ResponseLimitPassed,
    error_conditions,
    propfind_body,
    read_multistatus,
    sync_collection_body,
    tag,
)
from crmsync.transport.bounded import ResponseTooLarge, bounded_chunks

log = logging.getLogger(__name__)

# How long a server may take to list a whole collection (a sync-collection from no
# token, a Depth 1 PROPFIND of every ETag): Radicale took over 30 s, the connection's read
# timeout, for 50,000 items on a busy 2-core machine, so that rep never synced.
FULL_LISTING_TIMEOUT = 600.0
GETETAG = tag(DAV, "getetag")
_GETCTAG = tag(CALENDARSERVER, "getctag")

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
        raise unreadable(exc, path) from exc
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise ServerUnavailable(
            f"{what} broke off: {type(exc).__name__}",
            "Check that the mail server is running and reachable; retried next cycle.",
        ) from exc


class TokenRejected(Exception):
    """The server no longer accepts the sync-token (or sync-collection at all)."""


class CollectionListing:
    """The listing requests of the collection at ``path``; ``unexpected`` raises for an
    answer that is no listing (and reports a moved or deleted collection)."""

    def __init__(self, connection: DavConnection, path: str, unexpected: Unexpected) -> None:
        self.connection = connection
        self.path = path
        self._unexpected = unexpected

    def ctag(self) -> str | None:
        """The collection's CalendarServer ctag (one Depth 0 PROPFIND)."""
        response = self.connection.request(
            "PROPFIND", self.path, body=propfind_body(_GETCTAG), headers={"Depth": "0"}, xml=True
        )
        if response.status_code != 207:
            self._unexpected(response, "check for changes")
        for r in multistatus_of(response, self.path).responses:
            if r.href == self.path:
                return r.text(_GETCTAG) or None
        return None

    def sync(self, token: str) -> tuple[dict[str, str], list[str], str | None]:
        """Changed hrefs → ETags, deleted hrefs and the new token since ``token`` (every
        item from ``""``); raises `TokenRejected` when the server refuses the token."""
        changed: dict[str, str] = {}
        deleted: dict[str, None] = {}  # in order, as a list; a dict to drop re-created ones
        while True:
            truncated = False

            def each(r: Response) -> None:
                nonlocal truncated
                if r.href == self.path:
                    truncated = truncated or r.status == 507
                    return
                if r.status == 404:
                    deleted[r.href] = None
                    changed.pop(r.href, None)
                    return
                etag = r.text(GETETAG)
                if etag:
                    changed[r.href] = etag
                    deleted.pop(r.href, None)

            with self.connection.streamed(
                "REPORT",
                self.path,
                body=sync_collection_body(token),
                headers={"Depth": "0"},
                xml=True,
                read_timeout=None if token else FULL_LISTING_TIMEOUT,
            ) as response:
                if response.status_code != 207:
                    response = read_answer(self.connection, response, "REPORT", self.path)
                    conditions = error_conditions(response.content)
                    log.info(
                        "sync-collection on %s answered %s %s",
                        self.path,
                        response.status_code,
                        conditions,
                    )
                    # 501: a server without sync-collection at all. 404/410: the collection
                    # itself is gone, which no full listing can cure.
                    gone = response.status_code in MOVED_OR_GONE
                    if not gone and (
                        400 <= response.status_code < 500 or response.status_code == 501
                    ):
                        raise TokenRejected
                    self._unexpected(response, "list changes")
                # Read response by response: a first listing names every item of the collection.
                new_token = read_listing(self.connection.limits, self.path, response, each)
            if not truncated or not new_token or new_token == token:
                return changed, list(deleted), new_token
            token = new_token

    def etags(self) -> tuple[dict[str, str], str | None]:
        """Every item's ETag and the collection's ctag (one Depth 1 PROPFIND)."""
        listing: dict[str, str] = {}
        ctag = None

        def each(r: Response) -> None:
            nonlocal ctag
            if r.href == self.path and r.status in (404, 410):
                self._unexpected(httpx.Response(r.status), "list items")  # Xandikos: 207 + 404
            if r.href == self.path:
                ctag = r.text(_GETCTAG) or None
            elif (etag := r.text(GETETAG)) and not r.href.endswith("/"):
                listing[r.href] = etag

        with self.connection.streamed(
            "PROPFIND",
            self.path,
            body=propfind_body(GETETAG, _GETCTAG),
            headers={"Depth": "1"},
            xml=True,
            read_timeout=FULL_LISTING_TIMEOUT,
        ) as response:
            if response.status_code != 207:
                answer = read_answer(self.connection, response, "PROPFIND", self.path)
                self._unexpected(answer, "list items")
            read_listing(self.connection.limits, self.path, response, each)
        return listing, ctag
