"""Opening one rep's Microsoft 365 mailbox: the default calendar and the contacts folder
named ``GraphConfig.contacts_folder`` (created when missing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.sync import AuthenticationFailed, FolderMissing, ServerUnavailable
from crmsync.groupware.graph.calendar_folder import GraphEvents
from crmsync.groupware.graph.config import GraphConfig
from crmsync.groupware.graph.connection import GraphConnection, error_code, error_message
from crmsync.groupware.graph.contact_folder import GraphContacts

ACCESS_FIX = (
    "Grant the app the application permissions Calendars.ReadWrite and Contacts.ReadWrite "
    "with admin consent in Entra ID, and make sure no application access policy excludes "
    "this mailbox (Get-ApplicationAccessPolicy / Test-ApplicationAccessPolicy)."
)


@dataclass(frozen=True)
class GraphMailbox:
    """One rep's folders as ``ItemSide``s; ``contacts_folder_created`` for the status page."""

    contacts: GraphContacts
    events: GraphEvents
    contacts_folder_created: bool


def mailbox_problem(response: httpx.Response, email: str, folder: str) -> Exception:
    """The `SyncError` for a failed folder request."""
    code = error_code(response)
    if response.status_code == 403:
        return AuthenticationFailed(
            f"Microsoft Graph denied access to {email}'s {folder}: {error_message(response)}",
            ACCESS_FIX,
        )
    if response.status_code == 404 or code in ("ErrorInvalidUser", "MailboxNotEnabledForRESTAPI"):
        return FolderMissing(
            f"{email} has no Exchange Online mailbox reachable through Graph "
            f"({error_message(response)})",
            "Check the rep's email address and that their Microsoft 365 licence includes "
            "Exchange Online.",
            folder="principal",
        )
    return ServerUnavailable(
        f"could not open {email}'s {folder}: HTTP {response.status_code} "
        f"{error_message(response)}".rstrip(),
        "Retried next cycle.",
    )


def find_contacts_folder(
    connection: GraphConnection, email: str, name: str, *, create: bool
) -> tuple[str | None, bool]:
    """The id of the rep's top-level contact folder ``name`` and whether it was created."""
    base = f"/users/{quote(email, safe='@')}/contactFolders"
    quoted = name.replace("'", "''")
    response = connection.request("GET", base, params={"$filter": f"displayName eq '{quoted}'"})
    if response.status_code != 200:
        raise mailbox_problem(response, email, "contact folders")
    for folder in response.json().get("value") or ():
        if folder.get("displayName") == name:
            return str(folder["id"]), False
    if not create:
        return None, False
    response = connection.request("POST", base, json={"displayName": name})
    if response.status_code == 409:  # created concurrently by another worker
        return find_contacts_folder(connection, email, name, create=False)[0], False
    if response.status_code not in (200, 201):
        problem = mailbox_problem(response, email, "contacts folder")
        if isinstance(problem, ServerUnavailable):
            raise FolderMissing(
                f"could not create the contacts folder {name!r} for {email}: "
                f"{error_message(response)}",
                "Create the folder in Outlook, or check the app's Contacts.ReadWrite permission.",
                folder="contacts",
            )
        raise problem
    return str(response.json()["id"]), True


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_graph_mailbox(
    config: GraphConfig,
    email: str,
    contact_fields: ContactFieldMap = IDENTITY_MAP,
    rep_zone: str = "UTC",
    client: httpx.Client | None = None,
    *,
    connection: GraphConnection | None = None,
    create_folder: bool = True,
    now: Callable[[], dt.datetime] | None = None,
    **connection_options: Any,
) -> GraphMailbox:
    """The rep's calendar and contacts folder (created where missing unless
    ``create_folder`` is off, as for a preview: then `FolderMissing`), for the engine.

    Pass one shared ``connection`` per tenant in production (it holds the token cache and
    the throttling limiter); ``client`` is an httpx client for a new connection.
    ``rep_zone`` is accepted for symmetry with the DAV backend: Graph has no floating
    times, so it is not needed. ``now``: the clock the calendar's window of events is
    counted from (the service's clock). Raises `AuthenticationFailed`, `FolderMissing` or
    `ServerUnavailable`.
    """
    del rep_zone
    connection = connection or GraphConnection(config, client, **connection_options)
    folder_id, created = find_contacts_folder(
        connection, email, config.contacts_folder, create=create_folder
    )
    if folder_id is None:
        raise FolderMissing(
            f"The contacts folder {config.contacts_folder!r} does not exist yet for {email}.",
            "The first sync cycle creates it.",
            folder="contacts",
        )
    return GraphMailbox(
        contacts=GraphContacts(connection, email, folder_id, contact_fields),
        events=GraphEvents(
            connection,
            email,
            notify_attendees=config.notify_attendees_on_crm_edits,
            window=(config.window_days_past, config.window_days_future),
            now=now or _utc_now,
        ),
        contacts_folder_created=created,
    )
