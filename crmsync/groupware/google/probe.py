"""Connection-test steps for Google Workspace, each returning ``(passed, detail, fix)``.

In order: the key is a service account key; domain-wide delegation covers each scope for
the rep (minting the rep's token per scope names the missing one); the rep is a user of
the Workspace; the primary calendar and the contacts group are reachable; sync tokens are
issued and accepted.
"""

from __future__ import annotations

from crmsync.domain.sync import FolderMissing, SyncError
from crmsync.groupware.google import event_api, people_api
from crmsync.groupware.google.config import SCOPES, GoogleConfig, parse_key
from crmsync.groupware.google.connection import GoogleConnection
from crmsync.groupware.google.contact_groups import find_group
from crmsync.groupware.google.tokens import DelegationMissing

Outcome = tuple[bool, str, str]


def check_key(config: GoogleConfig) -> Outcome:
    """The stored key is a service account's JSON key."""
    try:
        key = parse_key(config.key_json)
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    return True, f"service account {key.client_email} (client ID {key.client_id})", ""


def check_delegation(connection: GoogleConnection, email: str) -> list[Outcome]:
    """One step per scope: Google issues the rep's token for it."""
    outcomes = []
    for api, scope in SCOPES.items():
        try:
            connection.tokens.token(email, api)
        except DelegationMissing as exc:
            outcomes.append(
                (False, f"domain-wide delegation lacks {scope} for {email}", exc.suggestion)
            )
        except FolderMissing as exc:
            outcomes.append((False, exc.message, exc.suggestion))
        except SyncError as exc:
            outcomes.append((False, exc.message, exc.suggestion))
        else:
            outcomes.append((True, f"delegation covers {scope}", ""))
    return outcomes


def check_calendar(connection: GoogleConnection, email: str) -> Outcome:
    """The rep's primary calendar answers, and its sync tokens work."""
    params = {
        "timeMin": "1971-01-01T00:00:00Z",
        "timeMax": "1971-01-02T00:00:00Z",
        "singleEvents": "false",
        "maxResults": "10",
    }
    try:
        while True:
            answer = connection.request(
                "calendar", email, "GET", event_api.EVENTS, params=params, what="open the calendar"
            )
            if answer.status != 200 or not isinstance(answer.body, dict):
                problem = connection.problem(answer, "calendar", email, "open the calendar")
                return False, problem.message, problem.suggestion
            if not answer.body.get("nextPageToken"):
                break
            params["pageToken"] = str(answer.body["nextPageToken"])
        token = answer.body.get("nextSyncToken")
        if not token:
            return False, "Google issued no sync token for the calendar", "Report this."
        event_api.list_events(connection, email, str(token))
    except event_api.SyncTokenExpired:
        return False, "Google refused a sync token it had just issued", "Try again later."
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    return True, f"{email}'s primary calendar answers and its sync tokens work", ""


def check_contacts(connection: GoogleConnection, email: str, group: str) -> Outcome:
    """The rep's contacts answer (with a sync token requested) and the group exists or
    will be created."""
    try:
        answer = connection.request(
            "people",
            email,
            "GET",
            "/people/me/connections",
            params={"personFields": "metadata", "pageSize": "1", "requestSyncToken": "true"},
            what="list contacts",
        )
        if answer.status != 200:
            problem = connection.problem(answer, people_api.API, email, "list contacts")
            return False, problem.message, problem.suggestion
        found, _ = find_group(connection, email, group, create=False)
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    if found is None:
        return True, f"contacts answer; the group {group!r} is created on first sync", ""
    return True, f"contacts and the group {group!r} found", ""


# A full listing returns the sync token on its last page only; beyond this many pages of
# contacts the test stops reading and says the token was not checked.
_TOKEN_PAGES = 5


def check_contact_sync_tokens(connection: GoogleConnection, email: str) -> Outcome:
    """A full listing of the rep's contacts (metadata only) ends with a sync token, which
    Google then accepts; ``passed`` with a detail starting "Not checked" when the listing
    is longer than the test reads."""
    params = {"personFields": "metadata", "pageSize": "1000", "requestSyncToken": "true"}
    try:
        for _ in range(_TOKEN_PAGES):
            answer = connection.request(
                "people",
                email,
                "GET",
                "/people/me/connections",
                params=params,
                what="list contacts",
            )
            if answer.status != 200 or not isinstance(answer.body, dict):
                problem = connection.problem(answer, people_api.API, email, "list contacts")
                return False, problem.message, problem.suggestion
            if answer.body.get("nextPageToken"):
                params["pageToken"] = str(answer.body["nextPageToken"])
                continue
            token = answer.body.get("nextSyncToken")
            if not token:
                return (
                    False,
                    "Google ended the contact listing without a sync token",
                    "Report this.",
                )
            people_api.list_connections(connection, email, str(token))
            return True, "the contacts' sync tokens are issued and accepted", ""
    except people_api.SyncTokenExpired:
        return False, "Google refused a contacts sync token it had just issued", "Try again later."
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    return True, f"Not checked: the rep has more than {_TOKEN_PAGES * 1000} contacts", ""
