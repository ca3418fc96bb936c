"""Opening a rep's mailbox with the backend the org's connection method names.

CalDAV/CardDAV, Exchange Server (EWS) and Microsoft 365 (Graph) sit behind one small
interface: `MailServer.open` gives a rep's contacts and events as engine sides. One
`MailServer` holds one connection (session, token cache, throttling) for all reps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.settings import ConnectionMethod, DavSignIn, ExchangeAuth, OrgSettings
from crmsync.domain.sync import AuthenticationFailed, ErrorType, SyncError
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import DavConnection, RetryPolicy, connect, open_mailbox
from crmsync.groupware.dav.mailbox import BOTH_KINDS, DiscoveryCache
from crmsync.service.logs import redact
from crmsync.store import MailPause, RepCredentials

SERVICE_PASSWORD = "service_account_password"
# Only Google parks a rep (`MailServer.retry_after`); why, as the rep's status says it.
GOOGLE_USAGE_LIMITS = "Calendar usage limits exceeded: Google made the calendar read-only"


class BackendNotAvailable(SyncError):
    error_type = ErrorType.CONFIGURATION


class RepSignInMissing(AuthenticationFailed):
    """Per-rep sign-in, and no login is stored for the rep."""


RepCredentialsLookup = Callable[[str], RepCredentials | None]


def pause_note(pause: MailPause) -> str:
    """The rep's last error while a stored pause keeps its cycles from the server."""
    return (
        f"Paused by {pause.by} until {pause.until:%Y-%m-%d %H:%M} UTC ({pause.because}); "
        "crmsync sends nothing for this rep until then"
    )


def per_rep_sign_in(settings: OrgSettings) -> bool:
    """Whether the org signs in to its DAV server with each rep's own login."""
    return (
        settings.connection_method is ConnectionMethod.DAV
        and settings.dav_sign_in is DavSignIn.PER_REP
    )


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

    With per-rep sign-in (DAV), there is no shared connection: each rep gets one with
    their own login from ``rep_credentials``. What DAV discovery found is kept per rep
    for the life of this object (a day at most), so a quiet cycle costs one request per
    folder.
    """

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        retry: RetryPolicy | None = None,
        *,
        read_only: bool = False,
        connection: Any = None,
        rep_credentials: RepCredentialsLookup | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``connection``: a backend connection made elsewhere (a shared Graph connection,
        one with its own HTTP transport) instead of one made from the settings.
        ``rep_credentials``: each rep's login by email, for per-rep sign-in. ``clock``:
        what a Microsoft 365 calendar's window of events is counted from (default: now)."""
        self.clock = clock
        self.settings = settings
        self.read_only = read_only
        self.retry = retry
        self.discovery = DiscoveryCache()
        self._rep_credentials = rep_credentials
        self._rep_connections: dict[str, tuple[RepCredentials, DavConnection]] = {}
        self.connection: Any = connection
        if per_rep_sign_in(settings) and connection is None:
            return
        if password is None:
            raise AuthenticationFailed(
                "No service account password (or app secret) is stored.",
                "Enter it on the Setup page (or `crmsync setup dav`, `crmsync config apply`).",
            )
        redact(password)
        method = settings.connection_method
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
        elif method is ConnectionMethod.GOOGLE:
            from crmsync.service import google_workspaces

            # One connection per Workspace in the process: every rep's tokens, and the
            # reps Google parked (usage limits), whichever worker runs them.
            self.connection = google_workspaces.acquire(google_config(settings, password, retry))
        else:
            raise BackendNotAvailable(
                f"the connection method {method.value!r} is not available in this version "
                "of crmsync",
                "Choose CalDAV/CardDAV, Exchange Server, Microsoft 365 or Google Workspace "
                "in the setup.",
            )

    def open(
        self,
        email: str,
        contact_fields: ContactFieldMap = IDENTITY_MAP,
        rep_zone: str = "UTC",
        kinds: frozenset[str] = BOTH_KINDS,
    ) -> RepMailbox:
        """The rep's default calendar and contacts folder, created where missing; its
        contacts sync the fields of ``contact_fields``, floating times read in ``rep_zone``.
        On a DAV server only the folders of ``kinds`` ("contacts", "events") are opened.

        Raises `AuthenticationFailed` (`RepSignInMissing` when per-rep sign-in has no
        login for the rep), `FolderMissing` or `ServerUnavailable`.
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
                now=self.clock,
            )
        if method is ConnectionMethod.GOOGLE:
            from crmsync.groupware.google import open_google_mailbox

            return open_google_mailbox(
                self.connection.config,
                email,
                contact_fields,
                rep_zone,
                connection=self.connection,
                create_folder=not self.read_only,
            )
        if per_rep_sign_in(self.settings) and self.connection is None:
            credentials, connection = self._rep_connection(email)
            return open_mailbox(
                connection,
                self.settings,
                email,
                contact_fields,
                rep_zone,
                login=credentials.login,
                signed_in_as_rep=True,
                kinds=kinds,
                cache=self.discovery,
            )
        return open_mailbox(
            self.connection,
            self.settings,
            email,
            contact_fields,
            rep_zone,
            kinds=kinds,
            cache=self.discovery,
        )

    def _rep_connection(self, email: str) -> tuple[RepCredentials, DavConnection]:
        key = email.casefold()
        credentials = self._rep_credentials(email) if self._rep_credentials else None
        if credentials is None:
            raise RepSignInMissing(
                f"no login is stored for {email}, and this org signs in with each rep's own",
                "Enter the rep's login and an app password on the rep's page (or the API, or "
                "`crmsync config apply` with reps: ... password_env).",
            )
        redact(credentials.password)
        known = self._rep_connections.get(key)
        same = (credentials.login, credentials.password)
        if known is not None and (known[0].login, known[0].password) == same:
            return known
        if known is not None:
            known[1].close()
        connection = DavConnection(
            self.settings.server_url,
            credentials.login,
            credentials.password,
            retry=self.retry,
            read_only=self.read_only,
            who=f"the login {credentials.login!r} of {email}",
            fix="Check the rep's login and app password on the rep's page; an app password "
            "revoked or changed on the server must be entered again.",
        )
        self._rep_connections[key] = (credentials, connection)
        return credentials, connection

    def retry_after(self, email: str) -> float:
        """Seconds before the rep's mailbox may be asked anything again (0: now): Google
        parks a rep whose calendar hit its usage limits for hours."""
        parked_for = getattr(self.connection, "parked_for", None)
        return float(parked_for(email)) if parked_for is not None else 0.0

    def pause(self, email: str, now: dt.datetime) -> MailPause | None:
        """The pause the server asked for the rep (`retry_after`), as the status keeps it."""
        seconds = self.retry_after(email)
        if not seconds:
            return None
        return MailPause(now + dt.timedelta(seconds=seconds), "Google", GOOGLE_USAGE_LIMITS)

    @property
    def requests_made(self) -> int:
        own = int(getattr(self.connection, "requests_made", 0))
        return own + sum(c.requests_made for _, c in self._rep_connections.values())

    def close(self) -> None:
        if self.settings.connection_method is ConnectionMethod.GOOGLE and self.connection:
            from crmsync.service import google_workspaces

            google_workspaces.release(self.connection)
        elif self.connection is not None:
            self.connection.close()
        for _, connection in self._rep_connections.values():
            connection.close()
        self._rep_connections.clear()


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


def google_config(settings: OrgSettings, key_json: str, retry: RetryPolicy | None = None) -> Any:
    """The Google backend's configuration from the org settings; ``key_json`` is the
    service account's JSON key. A ``server_url`` stands in for Google's addresses (its
    ``/token``, ``/calendar/v3`` and ``/v1``): a test double, never a production setting."""
    from crmsync.groupware.google import GoogleConfig
    from crmsync.groupware.google import RetryPolicy as GoogleRetry

    base = settings.server_url.strip().rstrip("/")
    addresses = (
        {
            "token_uri": f"{base}/token",
            "calendar_url": f"{base}/calendar/v3",
            "people_url": f"{base}/v1",
        }
        if base
        else {}
    )
    options: dict[str, Any] = {}
    if retry is not None:
        options["retry"] = GoogleRetry(
            max_attempts=retry.max_attempts,
            base_delay=retry.base_delay,
            max_delay=retry.max_delay,
            sleep=retry.sleep,
        )
    return GoogleConfig(
        key_json=key_json,
        contacts_folder=settings.contacts_folder,
        notify_attendees_on_crm_edits=settings.notify_attendees_on_crm_edits,
        category_color=settings.google_event_color,
        event_category=settings.event_category,
        **addresses,
        **options,
    )
