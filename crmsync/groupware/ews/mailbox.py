"""Opening one rep's Exchange mailbox: the default calendar and the contacts subfolder.

Costs four requests when the contacts folder exists (GetFolder root, calendar and contacts,
FindFolder under Contacts), one more the first time (CreateFolder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchangelib import CalendarItem, Contact
from exchangelib.folders import SHALLOW, Calendar, Contacts, FolderCollection

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.sync import FolderMissing, RejectedWrite, SyncError
from crmsync.groupware.ews.config import EwsConfig
from crmsync.groupware.ews.connection import EwsConnection
from crmsync.groupware.ews.folder import EwsFolder


@dataclass(frozen=True)
class EwsMailbox:
    """One rep's folders as ``ItemSide``s; ``contacts_folder_created`` for the status page."""

    contacts: EwsFolder
    events: EwsFolder
    contacts_folder_created: bool


def _contacts_folder(
    connection: EwsConnection, account: Any, name: str, email: str, create_folder: bool = True
) -> tuple[Any, bool]:
    def find() -> Any:
        contacts = Contacts.get_distinguished(root=account.root)
        children = FolderCollection(account=account, folders=[contacts]).find_folders(depth=SHALLOW)
        for child in children:
            if (
                not isinstance(child, Exception)
                and (child.name or "").casefold() == name.casefold()
            ):
                return contacts, child
        return contacts, None

    contacts, found = connection.run(find, "find the contacts folder", email)
    if found is not None:
        return found, False
    if not create_folder:
        raise FolderMissing(
            f"The contacts folder {name!r} does not exist yet in {email}'s mailbox.",
            "The first sync cycle creates it.",
            folder="contacts",
        )

    def create() -> Any:
        folder = Contacts(parent=contacts, name=name)
        folder.save()
        return folder

    try:
        return connection.run(create, "create the contacts folder", email), True
    except SyncError as exc:
        if not isinstance(exc, RejectedWrite):
            raise
        raise FolderMissing(
            f"The contacts folder {name!r} could not be created in {email}'s mailbox: "
            f"{exc.message}",
            "Create it in Outlook under Contacts, or check the service account's rights.",
            folder="contacts",
        ) from exc


def open_ews_mailbox(
    config: EwsConfig | EwsConnection,
    email: str,
    contact_fields: ContactFieldMap = IDENTITY_MAP,
    rep_zone: str = "UTC",
    *,
    create_folder: bool = True,
) -> EwsMailbox:
    """The rep's mailbox opened by impersonation as ``email`` (its primary SMTP address).
    Without ``create_folder`` (a preview) a missing contacts folder raises `FolderMissing`
    instead of being created.

    Raises `AuthenticationFailed`, `MailboxUnreachable`, `FolderMissing` or
    `ServerUnavailable`. Pass an `EwsConnection` to share one session among reps.
    """
    connection = config if isinstance(config, EwsConnection) else EwsConnection(config)
    account = connection.account(email, rep_zone)
    calendar = connection.run(
        lambda: Calendar.get_distinguished(root=account.root), "open the calendar", email
    )
    contacts, created = _contacts_folder(
        connection, account, connection.config.contacts_folder, email, create_folder
    )
    return EwsMailbox(
        contacts=EwsFolder(connection, account, contacts, Contact, email, contact_fields),
        events=EwsFolder(connection, account, calendar, CalendarItem, email, contact_fields),
        contacts_folder_created=created,
    )
