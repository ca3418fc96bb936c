"""Google's error bodies, and the `SyncError`s crmsync makes of them.

Two shapes reach us. Calendar v3 answers in the legacy shape, ``{"error": {"errors":
[{"domain", "reason", "message"}], "code", "message"}}``
(https://developers.google.com/workspace/calendar/api/guides/errors); People v1 in the
``google.rpc.Status`` shape, ``{"error": {"code", "message", "status", "details":
[{"@type": ".../google.rpc.ErrorInfo", "reason"}]}}``
(https://cloud.google.com/apis/design/errors). `reasons` reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.domain.sync import RejectedWrite, ServerUnavailable

# Back off and try again (the limiter's business).
RATE_LIMIT_REASONS = frozenset(
    {"ratelimitexceeded", "userratelimitexceeded", "rate_limit_exceeded", "resource_exhausted"}
)
# The user's calendar is read-only for hours: trying again only prolongs it.
USAGE_LIMIT_REASONS = frozenset({"quotaexceeded"})


def error_body(body: Any) -> Mapping[str, Any]:
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def reasons(body: Any) -> frozenset[str]:
    """Every reason and status code in an error body, lower-cased."""
    error = error_body(body)
    found = set()
    for item in error.get("errors") or ():
        if isinstance(item, Mapping) and item.get("reason"):
            found.add(str(item["reason"]).lower())
    for item in error.get("details") or ():
        if isinstance(item, Mapping) and item.get("reason"):
            found.add(str(item["reason"]).lower())
    if error.get("status"):
        found.add(str(error["status"]).lower())
    return frozenset(found)


def message(body: Any, status: int) -> str:
    """``HTTP <status> <message>`` for an error row (Google's text, never a token)."""
    text = str(error_body(body).get("message") or "")
    if not text and isinstance(body, Mapping) and body.get("error_description"):
        text = str(body["error_description"])
    return f"HTTP {status} {text[:300]}".rstrip()


class UsageLimitExceeded(ServerUnavailable):
    """403 ``quotaExceeded`` ("Calendar usage limits exceeded"): Google has made the rep's
    calendar read-only, for hours (https://support.google.com/a/answer/2905486).

    Unlike a rate limit this is not waited out inside a cycle: the connection stops
    sending this rep's requests for ``retry_after`` seconds, and the service should not
    schedule the rep again before then (it is transient: the items are tried again).
    """

    def __init__(self, message: str, suggestion: str, retry_after: float) -> None:
        super().__init__(message, suggestion)
        self.retry_after = retry_after


class NotOrganizer(RejectedWrite):
    """A change to a meeting the rep does not organise: Google keeps the organiser's copy
    authoritative (403 ``forbiddenForNonOrganizer``), so crmsync does not try."""

    def __init__(self, item_id: str, organizer: str, what: str) -> None:
        super().__init__(
            f"skipped: {organizer or 'someone else'} organises meeting {item_id}; "
            f"Google lets only the organiser {what} it",
            "Ask the organiser to make the change, or change it in Google Calendar; "
            "crmsync syncs the rep's copy as it is.",
        )
