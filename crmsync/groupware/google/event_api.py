"""The Calendar v3 requests crmsync sends on a rep's primary calendar, one function each.

https://developers.google.com/workspace/calendar/api/v3/reference/events: ``list``
(paged, ``syncToken``; 410 ``fullSyncRequired`` when the token is no longer valid,
https://developers.google.com/workspace/calendar/api/guides/sync), ``get`` (which also
returns deleted events, as ``status: cancelled``), ``list`` by ``iCalUID`` (a series'
master and its exceptions share it), ``instances`` with ``originalStart`` (one
occurrence), ``insert`` with a client-chosen ``id`` (409 when taken), ``patch`` and
``delete`` with ``If-Match`` (412 when the etag is stale,
https://developers.google.com/workspace/calendar/api/guides/version-resources), each
write with ``sendUpdates``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable
from crmsync.groupware.google.connection import Answer, GoogleConnection

API = "calendar"
EVENTS = "/calendars/primary/events"
PAGE_SIZE = 1000  # Google's maximum is 2500; 1000 keeps a page well under the body cap


class SyncTokenExpired(Exception):
    """410 Gone: the sync token is no longer valid; list everything again."""


def event_path(event_id: str) -> str:
    return f"{EVENTS}/{quote(event_id, safe='')}"


def read_failure(conn: GoogleConnection, answer: Answer, rep: str, what: str) -> Exception:
    """A read Google refused: an access problem stops the rep, anything else is retried."""
    problem = conn.problem(answer, API, rep, what)
    if isinstance(problem, AuthenticationFailed):
        return problem
    return ServerUnavailable(problem.message, "Retried next cycle.")


def list_events(
    conn: GoogleConnection, rep: str, sync_token: str | None = None, page_size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str]:
    """Every event row (masters and exceptions, ``singleEvents=false``) since
    ``sync_token`` (all of them without one), and the next sync token."""
    params: dict[str, str] = {"maxResults": str(page_size), "singleEvents": "false"}
    if sync_token:
        params["syncToken"] = sync_token  # deleted events always come back then
    rows: list[dict[str, Any]] = []
    while True:
        answer = conn.request(API, rep, "GET", EVENTS, params=params, what="list events")
        if answer.status == 410:
            raise SyncTokenExpired
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            raise read_failure(conn, answer, rep, "list the calendar's events")
        rows += [r for r in answer.body.get("items") or () if isinstance(r, dict) and r.get("id")]
        if answer.body.get("nextPageToken"):
            params["pageToken"] = str(answer.body["nextPageToken"])
            continue
        if not answer.body.get("nextSyncToken"):
            raise ServerUnavailable(
                "Google ended an event listing without a sync token", "Retried next cycle."
            )
        return rows, str(answer.body["nextSyncToken"])


def get_event(conn: GoogleConnection, rep: str, event_id: str) -> dict[str, Any] | None:
    """The event (a deleted one has ``status: cancelled``), or ``None`` if unknown."""
    answer = conn.request(API, rep, "GET", event_path(event_id), what="read an event")
    if answer.status in (404, 410):
        return None
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise read_failure(conn, answer, rep, "read an event")
    return answer.body


def series_rows(conn: GoogleConnection, rep: str, ical_uid: str) -> list[dict[str, Any]]:
    """Every event of ``ical_uid``: a series' master and its exceptions, cancelled ones
    included."""
    params = {"iCalUID": ical_uid, "showDeleted": "true", "maxResults": str(PAGE_SIZE)}
    rows: list[dict[str, Any]] = []
    while True:
        answer = conn.request(API, rep, "GET", EVENTS, params=params, what="read a series")
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            raise read_failure(conn, answer, rep, "read a series")
        rows += [r for r in answer.body.get("items") or () if isinstance(r, dict)]
        if not answer.body.get("nextPageToken"):
            return rows
        params["pageToken"] = str(answer.body["nextPageToken"])


def instance(
    conn: GoogleConnection, rep: str, master_id: str, original_start: str
) -> dict[str, Any] | None:
    """The occurrence of a series that starts (by its pattern) at ``original_start``
    (RFC 3339), cancelled or not; ``None`` when the series has none there."""
    answer = conn.request(
        API,
        rep,
        "GET",
        event_path(master_id) + "/instances",
        params={"originalStart": original_start, "showDeleted": "true"},
        what="find an occurrence",
    )
    if answer.status in (404, 410):
        return None
    if answer.status != 200 or not isinstance(answer.body, Mapping):
        raise read_failure(conn, answer, rep, "find an occurrence")
    items = [i for i in answer.body.get("items") or () if isinstance(i, dict)]
    return items[0] if items else None


def _send_updates(notify: bool) -> dict[str, str]:
    # "none" mails nobody; Google warns it can leave attendees' own calendars behind,
    # which is why the admin chooses (GoogleConfig.notify_attendees_on_crm_edits).
    return {"sendUpdates": "all" if notify else "none"}


def insert(conn: GoogleConnection, rep: str, body: dict[str, Any], notify: bool) -> Answer:
    params = _send_updates(notify)
    return conn.request(API, rep, "POST", EVENTS, params=params, json_body=body, what="create")


def patch(
    conn: GoogleConnection, rep: str, event_id: str, body: dict[str, Any], etag: str, notify: bool
) -> Answer:
    return conn.request(
        API,
        rep,
        "PATCH",
        event_path(event_id),
        params=_send_updates(notify),
        json_body=body,
        headers={"If-Match": etag} if etag else None,
        what="change an event",
    )


def delete(conn: GoogleConnection, rep: str, event_id: str, etag: str, notify: bool) -> Answer:
    return conn.request(
        API,
        rep,
        "DELETE",
        event_path(event_id),
        params=_send_updates(notify),
        headers={"If-Match": etag} if etag else None,
        what="delete an event",
    )
