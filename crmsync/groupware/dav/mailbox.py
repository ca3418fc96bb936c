"""Discovery of one rep's calendar and contacts folder on a CalDAV/CardDAV server.

`open_mailbox` walks principal → home sets → collections (RFC 4791 / 6352 / 6638),
creating the default calendar (MKCALENDAR) or the contacts folder (extended MKCOL, or
MKCOL + PROPPATCH) when missing, and returns a `DavMailbox` whose ``contacts`` and
``events`` are ``ItemSide`` objects for the engine. Redirects are followed (same server
only), and every principal and folder found is checked to be the rep's (`ownership`).
A kind the configuration does not sync is not looked for at all.

A `DiscoveryCache` keeps what discovery found per rep, so a cycle with nothing to do
costs only its collections' own requests; it forgets a rep once a day, or as soon as one
of the rep's collections answers as moved or deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.principal_path import expand_principal_path
from crmsync.domain.records import Record
from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import (
    AuthenticationFailed,
    Changes,
    FolderMissing,
    Seen,
    ServerUnavailable,
    Written,
)
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy, canonical_path
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.multistatus import (
    CALDAV,
    CARDDAV,
    DAV,
    Multistatus,
    MultistatusError,
    Response,
    mkcalendar_body,
    mkcol_addressbook_body,
    parse_multistatus,
    propfind_body,
    proppatch_addressbook_body,
    tag,
)
from crmsync.groupware.dav.ownership import (
    ADDRESS_SET,
    CURRENT_PRINCIPAL,
    check_inside,
    check_principal,
)
from crmsync.groupware.dav.vcard import VCardFormat

_CAL_HOME = tag(CALDAV, "calendar-home-set")
_AB_HOME = tag(CARDDAV, "addressbook-home-set")
_INBOX = tag(CALDAV, "schedule-inbox-URL")
_OUTBOX = tag(CALDAV, "schedule-outbox-URL")
_DEFAULT_CAL = tag(CALDAV, "schedule-default-calendar-URL")
_PRINCIPAL_PROPS = (
    _CAL_HOME,
    _AB_HOME,
    _INBOX,
    _OUTBOX,
    _DEFAULT_CAL,
    tag(DAV, "resourcetype"),
    CURRENT_PRINCIPAL,
    ADDRESS_SET,
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CONTACTS = "contacts"
EVENTS = "events"
BOTH_KINDS = frozenset({CONTACTS, EVENTS})
_COMPONENTS = tag(CALDAV, "supported-calendar-component-set")
_LISTING_PROPS = (tag(DAV, "resourcetype"), tag(DAV, "displayname"), _COMPONENTS)


@dataclass(frozen=True)
class MailboxFacts:
    """What discovery found, for the rep's status page.

    ``contacts_folder_created`` / ``calendar_created`` say crmsync had to create them;
    ``calendar_source`` is ``"default"`` (the server's schedule-default-calendar-URL),
    ``"found"``, ``"created"`` or ``"unused"`` (events do not sync: not looked for;
    ``calendar`` is then empty, as ``addressbook`` is when contacts do not sync).
    ``scheduling``: the server schedules meetings itself (RFC 6638).
    """

    principal: str
    calendar: str
    calendar_source: str
    addressbook: str
    contacts_folder_created: bool
    scheduling: bool = False

    @property
    def contacts_folder_found(self) -> bool:
        return not self.contacts_folder_created

    @property
    def calendar_created(self) -> bool:
        return self.calendar_source == "created"


@dataclass(frozen=True)
class DavMailbox:
    """One rep's folders: ``contacts`` (the contacts folder) and ``events`` (the default
    calendar), each an ``ItemSide`` (an `UnusedFolder` for a kind not opened)."""

    contacts: DavCollection | UnusedFolder
    events: DavCollection | UnusedFolder
    facts: MailboxFacts


class UnusedFolder:
    """The side of a kind the configuration does not sync: never looked for on the
    server; any use is a bug, reported as the folder missing."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _refuse(self) -> FolderMissing:
        return FolderMissing(
            f"the {self.kind} folder was not opened: this configuration does not sync {self.kind}",
            "Report this as a crmsync bug.",
            folder="calendar" if self.kind == EVENTS else "contacts",
        )

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        raise self._refuse()

    def fetch(self, item_id: str) -> Seen | None:
        raise self._refuse()

    def create(self, record: Record, marker: str) -> Written:
        raise self._refuse()

    def planned_id(self, marker: str) -> str | None:
        return None

    def update(self, item_id: str, version: str, record: Record) -> Written:
        raise self._refuse()

    def delete(self, item_id: str, version: str) -> None:
        raise self._refuse()


class DiscoveryCache:
    """What discovery found per rep, for ``max_age`` seconds (``clock``: monotonic).

    Thread-safe; a rep is forgotten early through the ``forget`` callback its
    collections get, called when one answers as moved or deleted.
    """

    def __init__(self, max_age: float = 86400.0, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._found: dict[tuple[object, ...], tuple[float, MailboxFacts]] = {}

    def get(self, key: tuple[object, ...]) -> MailboxFacts | None:
        with self._lock:
            entry = self._found.get(key)
            if entry is None or self.clock() - entry[0] > self.max_age:
                self._found.pop(key, None)
                return None
            return entry[1]

    def put(self, key: tuple[object, ...], facts: MailboxFacts) -> None:
        with self._lock:
            self._found[key] = (self.clock(), facts)

    def forget(self, key: tuple[object, ...]) -> None:
        with self._lock:
            self._found.pop(key, None)


def connect(
    settings: OrgSettings,
    password: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
    read_only: bool = False,
) -> DavConnection:
    """A connection to ``settings.server_url`` as the org's service account."""
    return DavConnection(
        settings.server_url,
        settings.service_account,
        password,
        retry=retry,
        timeout=timeout,
        read_only=read_only,
    )


def open_mailbox(
    connection: DavConnection,
    settings: OrgSettings,
    email: str,
    contact_fields: ContactFieldMap = IDENTITY_MAP,
    rep_zone: str = "UTC",
    *,
    login: str = "",
    signed_in_as_rep: bool = False,
    kinds: frozenset[str] = BOTH_KINDS,
    cache: DiscoveryCache | None = None,
) -> DavMailbox:
    """Find (or create) the calendar and contacts folder of the rep with ``email``;
    its contacts sync the fields of ``contact_fields`` and its floating event times are
    read in ``rep_zone``. Only the folders of ``kinds`` (`CONTACTS`, `EVENTS`) are
    looked for. ``login`` is the rep's login (the principal path's ``{user}``);
    ``signed_in_as_rep``: the connection signs in as the rep, not a service account.
    With a ``cache``, discovery runs only when it holds nothing for the rep.

    Raises `AuthenticationFailed` when the account is refused, `FolderMissing` when the
    rep's principal, calendar or contacts folder is absent and cannot be created, or is
    not the rep's, `ServerUnavailable` when the server keeps failing.
    """
    key = (email.casefold(), login, settings.principal_path, settings.contacts_folder, kinds)
    facts = cache.get(key) if cache is not None else None
    if facts is None:
        facts = _Discovery(connection, settings, email, login, signed_in_as_rep).run(kinds)
        if cache is not None:
            cache.put(key, facts)
    forget = (lambda: cache.forget(key)) if cache is not None else None
    quiet = facts.scheduling and not settings.notify_attendees_on_crm_edits
    contacts: DavCollection | UnusedFolder = UnusedFolder(CONTACTS)
    events: DavCollection | UnusedFolder = UnusedFolder(EVENTS)
    if CONTACTS in kinds:
        contacts = DavCollection(
            connection, facts.addressbook, VCardFormat(contact_fields), on_gone=forget
        )
    if EVENTS in kinds:
        events = DavCollection(
            connection,
            facts.calendar,
            ICalendarFormat(rep_zone),
            client_scheduling=quiet,
            on_gone=forget,
        )
    return DavMailbox(contacts=contacts, events=events, facts=facts)


class _Discovery:
    def __init__(
        self,
        connection: DavConnection,
        settings: OrgSettings,
        email: str,
        login: str = "",
        signed_in_as_rep: bool = False,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.email = email
        self.login = login
        self.signed_in_as_rep = signed_in_as_rep
        self._listings: dict[str, list[Response]] = {}

    def run(self, kinds: frozenset[str] = BOTH_KINDS) -> MailboxFacts:
        found = self._principal(self._principal_path())
        principal = found.href
        cal_home = _first(found.hrefs(_CAL_HOME)) or principal
        ab_home = _first(found.hrefs(_AB_HOME)) or principal
        calendar, source = self._calendar(found, cal_home) if EVENTS in kinds else ("", "unused")
        addressbook, created = self._addressbook(ab_home) if CONTACTS in kinds else ("", False)
        scheduling = bool(found.hrefs(_OUTBOX) or found.hrefs(_INBOX))
        return MailboxFacts(principal, calendar, source, addressbook, created, scheduling)

    def _principal_path(self) -> str:
        path = expand_principal_path(
            self.settings.principal_path, email=self.email, login=self.login
        )
        path = self.connection.base_path + "/" + path.lstrip("/")
        return canonical_path(path if path.endswith("/") else path + "/")

    def _principal(self, path: str) -> Response:
        """The rep's principal (its ``href`` where the server keeps it, after redirects);
        `FolderMissing` when it is absent or not the rep's."""
        props = _PRINCIPAL_PROPS
        response, path = self._propfind(path, props, depth="0")
        if response.status_code == 404:
            # Radicale creates a principal only when its user first logs in; the service
            # account may create it on the rep's behalf.
            made = self.connection.request("MKCOL", path)
            if made.status_code not in (200, 201):
                raise FolderMissing(
                    f"no DAV principal for {self.email} at {path} (HTTP 404)",
                    "Check the principal path in the org settings, or have the rep log in "
                    "to the mail server once so their account exists.",
                    folder="principal",
                )
            response, path = self._propfind(path, props, depth="0")
        if response.status_code == 403:
            raise AuthenticationFailed(
                f"{self.connection.who} may not read {path}",
                "Check the account and its password, and grant it access to the "
                "rep's calendars and address books on the mail server.",
            )
        status = self._multistatus(response, path)
        found = next((r for r in status.responses if r.href == path), None)
        if found is None:
            found = status.responses[0] if status.responses else Response(path)
        if found.status == 404:
            return found  # Xandikos: a 207 holding a 404; the callers report it missing
        # A fixed principal path (no placeholder: a single-principal server) is the
        # admin's explicit choice; otherwise the service account's own principal is no rep's.
        fixed = "{" not in self.settings.principal_path
        as_service = bool(self.connection.username) and not self.signed_in_as_rep and not fixed
        check_principal(found, self.email, service_account_signed_in=as_service)
        return found

    def _calendar(self, principal: Response, home: str) -> tuple[str, str]:
        default = _first(principal.hrefs(_DEFAULT_CAL))
        inbox = _first(principal.hrefs(_INBOX))
        if default is None and inbox is not None:
            response, inbox = self._propfind(inbox, (_DEFAULT_CAL,), depth="0")
            if response.status_code == 207:
                default = _first(
                    h
                    for r in self._multistatus(response, inbox).responses
                    for h in r.hrefs(_DEFAULT_CAL)
                )
        if default is not None:
            path = _collection_path(default)
            check_inside(path, home, self.email, "calendar")
            return path, "default"
        calendars = [
            r
            for r in self._listing(home)
            if r.has_type(tag(CALDAV, "calendar")) and _supports_events(r)
        ]
        if calendars:
            preferred = [r for r in calendars if "calendar" in _name(r).lower()]
            path = (preferred or calendars)[0].href
            check_inside(path, home, self.email, "calendar")
            return path, "found"
        path = canonical_path(home + "calendar/")
        response = self.connection.request(
            "MKCALENDAR", path, body=mkcalendar_body("Calendar"), xml=True
        )
        if response.status_code not in (200, 201):
            raise FolderMissing(
                f"{self.email} has no calendar and crmsync could not create one at {path} "
                f"(HTTP {response.status_code})",
                "Create a calendar for this rep on the mail server, or give the service "
                "account write access to the rep's calendar home.",
                folder="calendar",
            )
        return path, "created"

    def _addressbook(self, home: str) -> tuple[str, bool]:
        folder = self.settings.contacts_folder
        for r in self._listing(home):
            if not r.has_type(tag(CARDDAV, "addressbook")):
                continue
            if folder in (r.text(tag(DAV, "displayname")), _last_segment(r.href)):
                check_inside(r.href, home, self.email, "contacts folder")
                return r.href, False
        path = canonical_path(home + quote(folder, safe="") + "/")
        response = self.connection.request(
            "MKCOL", path, body=mkcol_addressbook_body(folder), xml=True
        )
        if response.status_code in (400, 415, 422, 501):
            # Servers without RFC 5689 want a plain MKCOL, then the type set by PROPPATCH.
            response = self.connection.request("MKCOL", path)
            if response.status_code in (200, 201):
                response = self.connection.request(
                    "PROPPATCH", path, body=proppatch_addressbook_body(folder), xml=True
                )
        if response.status_code not in (200, 201, 207):
            raise FolderMissing(
                f"no address book named {folder!r} for {self.email}, and creating it at "
                f"{path} failed (HTTP {response.status_code})",
                f"Create an address book named {folder} for this rep on the mail server, "
                "or give the service account write access to the rep's address book home.",
                folder="contacts",
            )
        return path, True

    def _listing(self, home: str) -> list[Response]:
        if home not in self._listings:
            response, where = self._propfind(home, _LISTING_PROPS, depth="1")
            if response.status_code == 404:
                self._listings[home] = []
            else:
                status = self._multistatus(response, where)
                self._listings[home] = [r for r in status.responses if r.href not in (home, where)]
        return self._listings[home]

    def _propfind(
        self, path: str, props: tuple[str, ...], depth: str
    ) -> tuple[httpx.Response, str]:
        """The server's answer and the path that gave it, after following redirects
        (same server only: credentials never go to another host)."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self.connection.request(
                "PROPFIND", path, body=propfind_body(*props), headers={"Depth": depth}, xml=True
            )
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response, path
            target = urljoin(self.connection.url(path), location)
            parts = urlsplit(target)
            if f"{parts.scheme}://{parts.netloc}" != self.connection.origin:
                raise FolderMissing(
                    f"PROPFIND {path} was redirected to another server ({target})",
                    "Enter the address the server redirects to as the server URL in the "
                    "org settings.",
                    folder="principal",
                )
            path = canonical_path(parts.path if parts.path.endswith("/") else parts.path + "/")
        raise ServerUnavailable(
            f"PROPFIND {path}: more than {MAX_REDIRECTS} redirects",
            "Check the server URL and the principal path in the org settings.",
        )

    def _multistatus(self, response: httpx.Response, path: str) -> Multistatus:
        if response.status_code == 403:
            raise AuthenticationFailed(
                f"{self.connection.who} may not read {path}",
                "Check the account and grant it access to the rep's folders.",
            )
        if response.status_code != 207:
            raise ServerUnavailable(
                f"PROPFIND {path} answered HTTP {response.status_code}",
                "Check the server URL and principal path in the org settings.",
            )
        try:
            return parse_multistatus(response.content)
        except MultistatusError as exc:
            raise ServerUnavailable(f"PROPFIND {path}: {exc}", "Check the server URL.") from exc


def _first(values: Iterable[str]) -> str | None:
    return next(iter(values), None)


def _collection_path(href: str) -> str:
    return canonical_path(href if href.endswith("/") else href + "/")


def _last_segment(href: str) -> str:
    return unquote(href.rstrip("/").rpartition("/")[2])


def _name(r: Response) -> str:
    return (r.text(tag(DAV, "displayname")) or "") + " " + _last_segment(r.href)


def _supports_events(r: Response) -> bool:
    element = r.props.get(_COMPONENTS)
    if element is None:
        return True  # no restriction announced: every component type is allowed
    return any(c.get("name", "").upper() == "VEVENT" for c in element)
