"""What a DAV collection makes of an answer that is not the one it asked for: the
server's message in words, and the error the engine gets (a transient failure of the
cycle, or a write the server refused)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from crmsync.domain.sync import RejectedWrite, ServerUnavailable
from crmsync.groupware.dav.connection import DavConnection
from crmsync.groupware.dav.multistatus import Multistatus, MultistatusError, parse_multistatus
from crmsync.transport.bounded import read_response

# Answers meaning the collection is no longer where discovery found it.
MOVED_OR_GONE = frozenset({301, 302, 307, 308, 404, 410})

# Raises for an answer that is no listing or item: (response, what crmsync tried).
Unexpected = Callable[[httpx.Response, str], None]


def read_answer(
    connection: DavConnection, response: httpx.Response, method: str, path: str
) -> httpx.Response:
    """A streamed answer that is no listing, read up to the connection's cap."""
    return read_response(response, connection.limits.answer_bytes, f"{method} {path}")


def multistatus_of(response: httpx.Response, path: str) -> Multistatus:
    """The 207 answer's multistatus; unreadable XML is a transient failure."""
    try:
        return parse_multistatus(response.content)
    except MultistatusError as exc:
        raise unreadable(exc, path) from exc


def unreadable(exc: MultistatusError, path: str) -> ServerUnavailable:
    """The cycle's failure when the server's 207 answer about ``path`` is unreadable XML
    (read whole or streamed): transient, a server's bad answer may not last."""
    return ServerUnavailable(f"{path}: {exc}", "Check the DAV server's logs; retried next cycle.")


def unavailable(response: httpx.Response, what: str, path: str) -> ServerUnavailable:
    """The cycle's failure when the server answered ``what`` in ``path`` unexpectedly."""
    return ServerUnavailable(
        f"could not {what} in {path}: HTTP {response.status_code} "
        f"{server_message(response)}".rstrip(),
        "Check that the folder still exists and the DAV server's log; retried next cycle.",
    )


def refused(response: httpx.Response, what: str, path: str) -> RejectedWrite:
    """The error of a write (``what``: create, update, delete) the server refused."""
    message = server_message(response)
    if response.status_code in (401, 403):
        suggestion = (
            "Give the service account write access to this rep's folder on the mail server."
        )
    elif response.status_code == 507:
        suggestion = "The rep's mailbox is full: free space on the mail server."
    else:
        suggestion = (
            "The server refused the item's content; check the record's fields (very "
            "long text, unusual characters) and the server's log."
        )
    return RejectedWrite(
        f"the server refused to {what} an item in {path}: HTTP "
        f"{response.status_code} {message}".rstrip(),
        suggestion,
    )


def server_message(response: httpx.Response) -> str:
    """The status' reason and the start of the server's text, tags stripped."""
    text = response.text.strip() if response.content else ""
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return (response.reason_phrase + (": " + text[:300] if text else "")).strip()
