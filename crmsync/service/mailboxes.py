"""Opening a rep's mailbox with the backend the org's connection method names."""

from __future__ import annotations

from typing import Protocol

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.domain.sync import AuthenticationFailed, ErrorType, SyncError
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import DavConnection, RetryPolicy, connect, open_mailbox
from crmsync.service.logs import redact

SERVICE_PASSWORD = "service_account_password"


class BackendNotAvailable(SyncError):
    error_type = ErrorType.CONFIGURATION


class RepMailbox(Protocol):
    @property
    def contacts(self) -> ItemSide: ...

    @property
    def events(self) -> ItemSide: ...


class MailServer:
    """The org's mail server as the service account reaches it."""

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        retry: RetryPolicy | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        if settings.connection_method is not ConnectionMethod.DAV:
            raise BackendNotAvailable(
                f"the connection method {settings.connection_method.value!r} is not available "
                "in this version of crmsync",
                "Choose the CalDAV/CardDAV connection method in the setup.",
            )
        if password is None:
            raise AuthenticationFailed(
                "No service account password is stored.",
                "Run `crmsync setup dav` with the service account's password.",
            )
        redact(password)
        self.settings = settings
        self.connection: DavConnection = connect(
            settings, password, retry=retry, read_only=read_only
        )

    def open(
        self, email: str, contact_fields: ContactFieldMap = IDENTITY_MAP, rep_zone: str = "UTC"
    ) -> RepMailbox:
        """The rep's default calendar and contacts folder, created where missing; its
        contacts sync the fields of ``contact_fields``, floating times read in ``rep_zone``.

        Raises `AuthenticationFailed`, `FolderMissing` or `ServerUnavailable`.
        """
        return open_mailbox(self.connection, self.settings, email, contact_fields, rep_zone)

    @property
    def requests_made(self) -> int:
        return self.connection.requests_made

    def close(self) -> None:
        self.connection.close()
