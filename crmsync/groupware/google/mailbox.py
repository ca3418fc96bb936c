"""Opening one rep's Google account: the primary calendar and the contacts group named
``GoogleConfig.contacts_folder`` (created when missing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.sync import FolderMissing
from crmsync.groupware.google.calendar import GoogleEvents
from crmsync.groupware.google.config import GoogleConfig
from crmsync.groupware.google.connection import GoogleConnection
from crmsync.groupware.google.contact_groups import find_group
from crmsync.groupware.google.contacts import GoogleContacts
from crmsync.groupware.google.event_map import Categories


@dataclass(frozen=True)
class GoogleMailbox:
    """One rep's calendar and contacts group as ``ItemSide``s; ``contacts_folder_created``
    for the status page."""

    contacts: GoogleContacts
    events: GoogleEvents
    contacts_folder_created: bool


def open_google_mailbox(
    config: GoogleConfig,
    email: str,
    contact_fields: ContactFieldMap = IDENTITY_MAP,
    rep_zone: str = "UTC",
    client: httpx.Client | None = None,
    *,
    connection: GoogleConnection | None = None,
    create_folder: bool = True,
    **connection_options: Any,
) -> GoogleMailbox:
    """The rep's primary calendar and contacts group (created where missing unless
    ``create_folder`` is off, as for a preview: then `FolderMissing`), for the engine.

    Pass one shared ``connection`` per Workspace in production (it holds the tokens, the
    limiters and the parked reps). ``rep_zone`` is accepted for symmetry with the DAV
    backend: Google has no floating times. Raises `AuthenticationFailed` (with
    `DelegationMissing` naming a scope), `FolderMissing` (``principal``: no such user;
    ``contacts``: the group) or `ServerUnavailable` (`UsageLimitExceeded` included).
    """
    del rep_zone
    connection = connection or GoogleConnection(config, client, **connection_options)
    group, created = find_group(connection, email, config.contacts_folder, create=create_folder)
    if group is None:
        raise FolderMissing(
            f"The contacts group {config.contacts_folder!r} does not exist yet for {email}.",
            "The first sync cycle creates it.",
            folder="contacts",
        )
    return GoogleMailbox(
        contacts=GoogleContacts(connection, email, group, contact_fields),
        events=GoogleEvents(
            connection,
            email,
            notify_attendees=config.notify_attendees_on_crm_edits,
            categories=Categories(config.category_color, config.event_category),
            id_salt=config.event_id_salt,
        ),
        contacts_folder_created=created,
    )
