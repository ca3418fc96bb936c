"""`GoogleConfig`: how crmsync reaches one Google Workspace through a service account.

The service account's JSON key (from the Cloud console, "Keys → Add key → JSON") is held
as text and parsed by `parse_key`; its private key never appears in a ``repr``, a log line
or an error message. Domain-wide delegation lets the account act as each rep: a super
admin authorises its client id for `SCOPES` in the Admin console (Security → Access and
data control → API controls → Manage Domain Wide Delegation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from crmsync.domain.sync import AuthenticationFailed
from crmsync.transport.throttling import RetryPolicy

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts"
# What each API needs, in the order the admin guide lists them.
SCOPES = {"calendar": CALENDAR_SCOPE, "people": CONTACTS_SCOPE}
DEFAULT_CALENDAR = "https://www.googleapis.com/calendar/v3"
DEFAULT_PEOPLE = "https://people.googleapis.com/v1"
DELEGATION_PLACE = (
    "Google Admin console → Security → Access and data control → API controls → "
    "Manage Domain Wide Delegation"
)
_KEY_FIELDS = ("type", "client_email", "client_id", "private_key", "token_uri")


@dataclass(frozen=True)
class ServiceAccountKey:
    """The parts of a service account key crmsync uses; ``info`` is what google-auth takes."""

    client_email: str
    client_id: str
    project_id: str
    private_key_id: str
    token_uri: str
    info: dict[str, Any] = field(repr=False, compare=False)


def parse_key(key_json: str) -> ServiceAccountKey:
    """The key in ``key_json``; raises `AuthenticationFailed` naming what is wrong (never
    quoting the key)."""
    fix = (
        "Download a new JSON key for the service account (Cloud console → IAM & Admin → "
        "Service accounts → Keys → Add key → JSON) and store the whole file."
    )
    try:
        info = json.loads(key_json)
    except ValueError:
        raise AuthenticationFailed("the service account key is not JSON", fix) from None
    if not isinstance(info, dict):
        raise AuthenticationFailed("the service account key is not a JSON object", fix)
    missing = [k for k in _KEY_FIELDS if not isinstance(info.get(k), str) or not info[k]]
    if missing:
        raise AuthenticationFailed(f"the service account key lacks {', '.join(missing)}", fix)
    if info["type"] != "service_account":
        raise AuthenticationFailed(
            f"the key is of type {info['type']!r}, not a service account key",
            fix + " An OAuth client secret or a user's credentials will not do.",
        )
    if "PRIVATE KEY" not in info["private_key"]:
        raise AuthenticationFailed("the service account key holds no private key", fix)
    return ServiceAccountKey(
        client_email=info["client_email"],
        client_id=info["client_id"],
        project_id=str(info.get("project_id") or ""),
        private_key_id=str(info.get("private_key_id") or ""),
        token_uri=info["token_uri"],
        info=info,
    )


@dataclass(frozen=True)
class GoogleConfig:
    """One Workspace as the service account of ``key_json`` reaches it.

    ``calendar_url``, ``people_url`` and ``token_uri`` (default: the key's) are
    overridable for tests. With ``notify_attendees_on_crm_edits`` off, writes carry
    ``sendUpdates=none`` (Google mails nobody); on, ``sendUpdates=all``. ``category_color``
    is the Google event colour ("1" to "11") that stands for the org's event category
    ``event_category``: Google has no categories, so a rep selects an event for the CRM by
    giving it that colour (empty: colours mean nothing to crmsync). ``event_id_salt``
    keeps the client-chosen event ids of two deployments syncing one calendar apart.
    """

    key_json: str = field(repr=False)
    calendar_url: str = DEFAULT_CALENDAR
    people_url: str = DEFAULT_PEOPLE
    token_uri: str = ""
    contacts_folder: str = "CRM_Sync"
    notify_attendees_on_crm_edits: bool = False
    category_color: str = ""
    event_category: str = "CRM"
    event_id_salt: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Untrusted input is bounded before it is parsed: a page of 1,000 events or persons
    # stays far below this.
    max_response_bytes: int = 32 * 1024 * 1024
    # How long a rep whose calendar Google made read-only ("Calendar usage limits
    # exceeded") is left alone; Google names no time, its admin help says "hours".
    usage_limit_pause: float = 3 * 3600.0

    def __post_init__(self) -> None:
        if self.category_color and self.category_color not in {str(n) for n in range(1, 12)}:
            raise ValueError("the category colour is a Google event colour id, 1 to 11")

    @property
    def key(self) -> ServiceAccountKey:
        return parse_key(self.key_json)
