"""Opening a rep's mailbox with the backend the org's connection method names.

CalDAV/CardDAV, Exchange Server (EWS) and Microsoft 365 (Graph) sit behind one small
interface: `MailServer.open` gives a rep's contacts and events as engine sides. One
`MailServer` holds one connection (session, token cache, throttling) for all reps.
"""

from __future__ import annotations

from typing import Any, Protocol

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.settings import ConnectionMethod, ExchangeAuth, OrgSettings
from crmsync.domain.sync import AuthenticationFailed, ErrorType, SyncError
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import RetryPolicy, connect, open_mailbox
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
    """The org's mail server as the service account reaches it.

    ``read_only`` (previews): nothing may be written. The DAV connection refuses every
    write; the Microsoft backends only read in a preview, and a missing contacts folder
    raises `FolderMissing` instead of being created.
    """

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        retry: RetryPolicy | None = None,
        *,
        read_only: bool = False,
        connection: Any = None,
    ) -> None:
        """``connection``: a backend connection made elsewhere (a shared Graph connection,
        one with its own HTTP transport) instead of one made from the settings."""
        if password is None:
            raise AuthenticationFailed(
                "No service account password (or app secret) is stored.",
                "Enter it on the Setup page (or `crmsync setup dav`, `crmsync config apply`).",
            )
        redact(password)
        self.settings = settings
        self.read_only = read_only
        method = settings.connection_method
        self.connection: Any = connection
        # The Microsoft libraries load only for the orgs that use them (they are heavy).
        if connection is not None:
            pass
        elif method is ConnectionMethod.DAV:
            self.connection = connect(settings, password, retry=retry, read_only=read_only)
        elif method is ConnectionMethod.EWS:
            from crmsync.groupware.ews import EwsConnection

            self.connection = EwsConnection(ews_config(settings, password))
        elif method is ConnectionMethod.GRAPH:
            from crmsync.groupware.graph import GraphConnection

            try:
                config = graph_config(settings, password)
            except ValueError as invalid:
                raise BackendNotAvailable(
                    f"the Microsoft 365 setup is incomplete: {invalid}",
                    "Enter the tenant id, the app's client id and its secret (or certificate) "
                    "on the Setup page.",
                ) from None
            self.connection = GraphConnection(config)
        else:
            raise BackendNotAvailable(
                f"the connection method {method.value!r} is not available in this version "
                "of crmsync",
                "Choose CalDAV/CardDAV, Exchange Server or Microsoft 365 in the setup.",
            )

    def open(
        self, email: str, contact_fields: ContactFieldMap = IDENTITY_MAP, rep_zone: str = "UTC"
    ) -> RepMailbox:
        """The rep's default calendar and contacts folder, created where missing; its
        contacts sync the fields of ``contact_fields``, floating times read in ``rep_zone``.

        Raises `AuthenticationFailed`, `FolderMissing` or `ServerUnavailable`.
        """
        method = self.settings.connection_method
        if method is ConnectionMethod.EWS:
            from crmsync.groupware.ews import open_ews_mailbox

            return open_ews_mailbox(
                self.connection, email, contact_fields, rep_zone, create_folder=not self.read_only
            )
        if method is ConnectionMethod.GRAPH:
            from crmsync.groupware.graph import open_graph_mailbox

            return open_graph_mailbox(
                self.connection.config,
                email,
                contact_fields,
                rep_zone,
                connection=self.connection,
                create_folder=not self.read_only,
            )
        return open_mailbox(self.connection, self.settings, email, contact_fields, rep_zone)

    @property
    def requests_made(self) -> int:
        return int(getattr(self.connection, "requests_made", 0))

    def close(self) -> None:
        self.connection.close()


def ews_config(settings: OrgSettings, password: str) -> Any:
    """The EWS backend's configuration from the org settings."""
    from crmsync.groupware.ews import EwsAuth, EwsConfig

    return EwsConfig(
        username=settings.service_account,
        password=password,
        service_endpoint=settings.server_url.strip(),
        auth=EwsAuth.NTLM if settings.exchange_auth is ExchangeAuth.NTLM else EwsAuth.BASIC,
        additional_domains=settings.additional_domains,
        contacts_folder=settings.contacts_folder,
    )


def graph_config(settings: OrgSettings, secret: str) -> Any:
    """The Graph backend's configuration from the org settings; ``secret`` is the client
    secret, or the PEM private key when a certificate thumbprint is set."""
    from crmsync.groupware.graph import GraphConfig

    with_certificate = bool(settings.graph_certificate_thumbprint)
    return GraphConfig(
        tenant_id=settings.graph_tenant_id,
        client_id=settings.graph_client_id,
        client_secret="" if with_certificate else secret,
        certificate_pem=secret if with_certificate else "",
        certificate_thumbprint=settings.graph_certificate_thumbprint,
        contacts_folder=settings.contacts_folder,
        notify_attendees_on_crm_edits=settings.notify_attendees_on_crm_edits,
    )
