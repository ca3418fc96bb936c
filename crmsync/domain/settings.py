"""Org settings and sync configurations: what the admin decides, as plain values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from crmsync.domain.contact_fields import (
    ContactFilter,
    FieldMapping,
    FieldType,
    contact_field_map,
    mapping_problems,
)
from crmsync.domain.records import User


class Direction(StrEnum):
    """Which way one kind of item syncs (the spec's "Sync Direction")."""

    BOTH = "both"
    CRM_TO_MAIL = "crm_to_mail"
    MAIL_TO_CRM = "mail_to_crm"
    NONE = "none"

    @property
    def to_mail(self) -> bool:
        return self in (Direction.BOTH, Direction.CRM_TO_MAIL)

    @property
    def to_crm(self) -> bool:
        return self in (Direction.BOTH, Direction.MAIL_TO_CRM)


class ConflictBehaviour(StrEnum):
    """Who wins when an item changed on both sides since the last sync."""

    CRM_WINS = "crm_wins"
    MAIL_WINS = "mail_wins"


class ConnectionMethod(StrEnum):
    DAV = "dav"
    EWS = "ews"
    GRAPH = "graph"
    GOOGLE = "google"


class DavSignIn(StrEnum):
    """Whose login crmsync uses on a CalDAV/CardDAV server."""

    # One account that may open every rep's folders (Radicale with a rights file, a
    # SabreDAV admin principal, Cyrus or DAViCal delegation).
    SERVICE_ACCOUNT = "service_account"
    # Each rep's own login and app password: Nextcloud, Baïkal, iCloud and Fastmail have
    # no account that can open every rep's mailbox.
    PER_REP = "per_rep"


class ExchangeAuth(StrEnum):
    """How the service account signs in to Exchange Server (EWS)."""

    NTLM = "ntlm"
    BASIC = "basic"


class ContactOwnership(StrEnum):
    """The spec's ownership filter for contacts going CRM → mail."""

    USERS_RECORDS = "users_records"  # "Selected contacts" + "User's records": the rep's own
    ALL = "all"  # "All contacts": every contact the rep can see
    # "Selected contacts" without "User's records": selects nothing, as the spec warns.
    SELECTED_NONE = "selected_none"


@dataclass(frozen=True)
class ContactSettings:
    direction: Direction = Direction.BOTH
    conflict: ConflictBehaviour = ConflictBehaviour.CRM_WINS
    # The spec: deleted contacts are not removed from the other application.
    propagate_deletions: bool = False
    ownership: ContactOwnership = ContactOwnership.USERS_RECORDS
    # CRM → mail only, AND-ed; they name CRM fields.
    filters: tuple[ContactFilter, ...] = ()
    # Changes to the default mapping (each mail field to the CRM field of the same name).
    field_mappings: tuple[FieldMapping, ...] = ()


class EventWindow(StrEnum):
    """The spec's event filter: which events sync, by when they end."""

    TODAY = "today"  # ending on or after today, 00:00 in the rep's zone
    LAST_MONTH = "last_month"  # ending on or after the first day of last month
    LAST_N_DAYS = "last_n_days"  # ending on or after N days ago (N <= 180)


class EventSelection(StrEnum):
    """All events, or only those a rep selects (by category) on the mail side."""

    ALL = "all"
    USER_SELECTED = "user_selected"


MAX_WINDOW_DAYS = 180


@dataclass(frozen=True)
class EventSettings:
    direction: Direction = Direction.BOTH
    conflict: ConflictBehaviour = ConflictBehaviour.CRM_WINS
    sync_private: bool = False
    delete_synced_events: bool = True
    sync_series: bool = True
    window: EventWindow = EventWindow.TODAY
    window_days: int = 30
    selection: EventSelection = EventSelection.ALL
    auto_relate: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= MAX_WINDOW_DAYS:
            raise ValueError(
                f"LAST N DAYS takes 1 to {MAX_WINDOW_DAYS} days, not {self.window_days}"
            )

    @property
    def window_label(self) -> str:
        """The filter as the spec writes it: TODAY, LAST MONTH, LAST 30 DAYS."""
        if self.window is EventWindow.LAST_N_DAYS:
            return f"LAST {self.window_days} DAYS"
        return self.window.value.replace("_", " ").upper()


@dataclass(frozen=True)
class SyncConfig:
    """One named configuration, assigned to users and profiles."""

    name: str
    active: bool = True
    description: str = ""
    user_ids: tuple[str, ...] = ()
    profile_ids: tuple[str, ...] = ()
    contacts: ContactSettings = field(default_factory=ContactSettings)
    events: EventSettings = field(default_factory=EventSettings)


class Coverage:
    """Which configuration each user syncs under: a direct assignment wins over one of
    the user's profile; inactive configurations cover nobody."""

    def __init__(self, configs: Iterable[SyncConfig]) -> None:
        self._direct: dict[str, SyncConfig] = {}
        self._by_profile: dict[str, SyncConfig] = {}
        for config in configs:
            if not config.active:
                continue
            for user_id in config.user_ids:
                self._direct.setdefault(user_id, config)
            for profile_id in config.profile_ids:
                self._by_profile.setdefault(profile_id, config)

    def config_of(self, user: User) -> SyncConfig | None:
        config = self._direct.get(user.id)
        if config is None and user.profile_id is not None:
            config = self._by_profile.get(user.profile_id)
        return config


@dataclass(frozen=True)
class OrgSettings:
    """How the deployment reaches the mail server and where reps' items live there."""

    connection_method: ConnectionMethod = ConnectionMethod.DAV
    server_url: str = ""
    service_account: str = ""
    # Where a rep's principal lives on a DAV server, relative to server_url; see
    # `PRINCIPAL_PATH_PLACEHOLDERS`.
    principal_path: str = "/{email}/"
    # DAV only: the service account's login for every rep, or each rep's own.
    dav_sign_in: DavSignIn = DavSignIn.SERVICE_ACCOUNT
    additional_domains: tuple[str, ...] = ()
    contacts_folder: str = "CRM_Sync"
    event_category: str = "CRM"
    # Mass-delete guard: a cycle that would delete more than this share or number of a
    # rep's synced items on one side deletes nothing until an admin confirms. Up to
    # `mass_delete_minimum` deletions never trip it (one of two events is no mass delete).
    mass_delete_percent: int = 10
    mass_delete_count: int = 50
    mass_delete_minimum: int = 5
    # How long the audit trail keeps what each cycle did.
    audit_retention_days: int = 30
    # A rep's cycle due and unclaimed for longer than this shows as Overdue: set above the
    # claim lag the org accepts, so reps waiting their turn are not reported as stuck.
    overdue_after_minutes: int = 5
    # Exchange Server (EWS): how the service account signs in; an empty server_url means
    # Autodiscover with the service account's address.
    exchange_auth: ExchangeAuth = ExchangeAuth.NTLM
    # Microsoft 365 (Graph, OAuth 2.0 client credentials): the app registration. The
    # stored service password is its client secret, or, with a certificate thumbprint,
    # the certificate's PEM private key.
    graph_tenant_id: str = ""
    graph_client_id: str = ""
    graph_certificate_thumbprint: str = ""
    # Graph mails the attendees of a meeting on every change: off, crmsync leaves
    # meetings that have attendees alone when the CRM changes them. Google: on, writes
    # carry sendUpdates=all (Google mails the attendees), off sendUpdates=none.
    notify_attendees_on_crm_edits: bool = False
    # Google Workspace (a service account with domain-wide delegation; the stored service
    # password is its JSON key, the additional domains are the Workspace's domains).
    # Google has no categories: an event with this colour ("1" to "11", Google's event
    # colour ids) is one the rep selected for the CRM ("Events users select"); empty,
    # colours mean nothing to crmsync.
    google_event_color: str = ""


# How the deployment connects: what a connection command (`crmsync setup dav|exchange|m365|
# google`) owns. The method itself; DAV: server_url, service_account, principal_path,
# dav_sign_in; Exchange (EWS): server_url, service_account, exchange_auth; Microsoft 365:
# the graph_* app registration; Google: server_url (an address standing in for Google's)
# and google_event_color. Every method's command names additional_domains (the reps'
# domains, Google's Workspace) and contacts_folder. Every other field is org policy that
# holds whichever way the org connects, and is kept: the mass-delete guard,
# audit_retention_days, overdue_after_minutes, event_category, and
# notify_attendees_on_crm_edits (DAV servers that schedule, Microsoft 365 and Google all
# read it). A field left out of this set is kept too, the safe side for a new setting.
CONNECTION_FIELDS = frozenset(
    {
        "connection_method",
        "server_url",
        "service_account",
        "principal_path",
        "dav_sign_in",
        "additional_domains",
        "contacts_folder",
        "exchange_auth",
        "graph_tenant_id",
        "graph_client_id",
        "graph_certificate_thumbprint",
        "google_event_color",
    }
)


# Per method, the settings naming the account the stored password (app secret, key) is
# for. It is kept only while the method and these stay as they are: a password saved for
# one account is never sent for another, nor to another kind of server.
PASSWORD_ACCOUNT_FIELDS: Mapping[ConnectionMethod, tuple[str, ...]] = {
    ConnectionMethod.DAV: ("service_account", "dav_sign_in"),
    ConnectionMethod.EWS: ("service_account",),
    ConnectionMethod.GRAPH: ("graph_tenant_id", "graph_client_id", "graph_certificate_thumbprint"),
    # The key file names its own service account.
    ConnectionMethod.GOOGLE: (),
}


def stored_password_applies(stored: OrgSettings, settings: OrgSettings) -> bool:
    """Whether the password stored with ``stored`` may sign ``settings`` in (see
    `PASSWORD_ACCOUNT_FIELDS`)."""
    method = settings.connection_method
    return stored.connection_method is method and all(
        getattr(stored, name) == getattr(settings, name)
        for name in PASSWORD_ACCOUNT_FIELDS[method]
    )


def with_connection(stored: OrgSettings, method: ConnectionMethod, **given: Any) -> OrgSettings:
    """``stored`` connected by ``method`` with ``given``, the settings a connection command
    names: every connection field not given goes back to its default, so a former method's
    tenant, account or URL does not linger; org policy keeps its stored values unless
    ``given`` names it. A ``given`` value of ``None`` is an option the admin left out: it
    keeps its stored value while the org stays on ``method`` and takes its default when
    the method changes, as nothing stored was meant for the new one."""
    defaults = OrgSettings()
    left_out_from = stored if stored.connection_method is method else defaults
    reset = {name: getattr(defaults, name) for name in CONNECTION_FIELDS}
    named = {
        name: getattr(left_out_from, name) if value is None else value
        for name, value in given.items()
    }
    return replace(stored, **(reset | named | {"connection_method": method}))


def configuration_problems(config: SyncConfig, custom_types: Mapping[str, FieldType]) -> list[str]:
    """Why ``config`` cannot be saved, one sentence each (empty: it can)."""
    problems: list[str] = []
    if not config.name.strip():
        problems.append("a configuration needs a name")
    mapping = config.contacts.field_mappings
    found = mapping_problems(mapping, custom_types)
    problems += found
    if not found:
        field_map = contact_field_map(mapping, custom_types)
        for condition in config.contacts.filters:
            problems += condition.problems(field_map)
    return problems


def configuration_warnings(config: SyncConfig) -> list[str]:
    """Settings that are valid but probably not what the admin meant."""
    warnings: list[str] = []
    contacts, events = config.contacts, config.events
    if contacts.ownership is ContactOwnership.SELECTED_NONE and contacts.direction.to_mail:
        warnings.append(
            'Contacts: "Selected contacts" without "User\'s records" selects no CRM '
            "contact, so no contact syncs from the CRM to the mail server."
        )
    if contacts.filters and not contacts.direction.to_mail:
        warnings.append(
            "Contacts: filters only apply from the CRM to the mail server; with this "
            "direction they have no effect."
        )
    if events.selection is EventSelection.USER_SELECTED and not events.direction.to_crm:
        warnings.append(
            'Events: "Events users select" applies from the mail server to the CRM; with '
            "this direction it has no effect."
        )
    if config.active and not (config.user_ids or config.profile_ids):
        warnings.append("No user or profile is assigned, so this configuration syncs nobody.")
    if contacts.direction is Direction.NONE and events.direction is Direction.NONE:
        warnings.append("Neither contacts nor events sync under this configuration.")
    return warnings
