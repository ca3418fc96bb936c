"""Connection-test steps for Microsoft 365, each returning ``(passed, detail, fix)``."""

from __future__ import annotations

from urllib.parse import quote

from crmsync.domain.sync import SyncError
from crmsync.groupware.graph.connection import GraphConnection, error_message
from crmsync.groupware.graph.mailbox import ACCESS_FIX, find_contacts_folder
from crmsync.groupware.graph.tokens import REQUIRED_ROLES, token_roles

Outcome = tuple[bool, str, str]


def check_token(connection: GraphConnection) -> Outcome:
    """An app-only token can be acquired and carries the permissions crmsync needs."""
    try:
        token = connection.tokens.token()
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    roles = token_roles(token)
    missing = [r for r in REQUIRED_ROLES if r not in roles]
    if roles and missing:
        return (
            False,
            f"the app's token lacks {', '.join(missing)} (admin consent missing?)",
            "In Entra ID, add the application permissions "
            + ", ".join(missing)
            + " to the app registration and grant admin consent.",
        )
    return True, "Entra ID issued a token for Microsoft Graph", ""


def check_mailbox(connection: GraphConnection, email: str, contacts_folder: str) -> Outcome:
    """The rep's calendar is readable and the contacts folder exists or can be created."""
    user = f"/users/{quote(email, safe='@')}"
    try:
        response = connection.request("GET", f"{user}/calendar", params={"$select": "id"})
        if response.status_code != 200:
            fix = (
                ACCESS_FIX
                if response.status_code == 403
                else ("Check the rep's address and that their licence includes Exchange Online.")
            )
            return False, f"cannot open {email}'s calendar: {error_message(response)}", fix
        folder, _ = find_contacts_folder(connection, email, contacts_folder, create=False)
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    if folder is None:
        return True, f"calendar found; the folder {contacts_folder!r} is created on first sync", ""
    return True, f"calendar and the folder {contacts_folder!r} found", ""


def check_delta(connection: GraphConnection, email: str) -> Outcome:
    """The mailbox answers a calendarView delta request (change tracking works)."""
    user = f"/users/{quote(email, safe='@')}"
    try:
        response = connection.request(
            "GET",
            f"{user}/calendarView/delta",
            params={"startDateTime": "2000-01-01T00:00:00Z", "endDateTime": "2000-01-02T00:00:00Z"},
        )
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    if response.status_code != 200:
        return (
            False,
            f"change tracking (delta) is refused: {error_message(response)}",
            "crmsync needs Graph delta queries on the rep's calendar; check the mailbox is in "
            "Exchange Online (not on-premises).",
        )
    return True, "change tracking (delta) works", ""
