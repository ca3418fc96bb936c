"""Discovery of one rep's calendar and contacts folder on a CalDAV/CardDAV server.

`open_mailbox` walks principal → home sets → collections (RFC 4791 / 6352 / 6638),
creating the default calendar (MKCALENDAR) or the contacts folder (extended MKCOL, or
MKCOL + PROPPATCH) when missing, and returns a `DavMailbox` whose ``contacts`` and
``events`` are ``ItemSide`` objects for the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import httpx

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import AuthenticationFailed, FolderMissing, ServerUnavailable
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
from crmsync.groupware.dav.vcard import VCardFormat

_CAL_HOME = tag(CALDAV, "calendar-home-set")
_AB_HOME = tag(CARDDAV, "addressbook-home-set")
_INBOX = tag(CALDAV, "schedule-inbox-URL")
_DEFAULT_CAL = tag(CALDAV, "schedule-default-calendar-URL")
_COMPONENTS = tag(CALDAV, "supported-calendar-component-set")
_LISTING_PROPS = (tag(DAV, "resourcetype"), tag(DAV, "displayname"), _COMPONENTS)


@dataclass(frozen=True)
class MailboxFacts:
    """What discovery found, for the rep's status page.

    ``contacts_folder_created`` / ``calendar_created`` say crmsync had to create them;
    ``calendar_source`` is ``"default"`` (the server's schedule-default-calendar-URL),
    ``"found"`` or ``"created"``.
    """

    principal: str
    calendar: str
    calendar_source: str
    addressbook: str
    contacts_folder_created: bool

    @property
    def contacts_folder_found(self) -> bool:
        return not self.contacts_folder_created

    @property
    def calendar_created(self) -> bool:
        return self.calendar_source == "created"


@dataclass(frozen=True)
class DavMailbox:
    """One rep's folders: ``contacts`` (the contacts folder) and ``events`` (the default
    calendar), each an ``ItemSide``."""

    contacts: DavCollection
    events: DavCollection
    facts: MailboxFacts


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
) -> DavMailbox:
    """Find (or create) the calendar and contacts folder of the rep with ``email``;
    its contacts sync the fields of ``contact_fields`` and its floating event times are
    read in ``rep_zone``.

    Raises `AuthenticationFailed` when the service account is refused, `FolderMissing`
    when the rep's principal, calendar or contacts folder is absent and cannot be created,
    `ServerUnavailable` when the server keeps failing.
    """
    return _Discovery(connection, settings, email, contact_fields, rep_zone).run()


class _Discovery:
    def __init__(
        self,
        connection: DavConnection,
        settings: OrgSettings,
        email: str,
        contact_fields: ContactFieldMap,
        rep_zone: str,
    ) -> None:
        self.connection = connection
        self.rep_zone = rep_zone
        self.settings = settings
        self.email = email
        self.contact_fields = contact_fields
        self._listings: dict[str, list[Response]] = {}

    def run(self) -> DavMailbox:
        principal = self._principal_path()
        found = self._principal(principal)
        cal_home = _first(found.hrefs(_CAL_HOME)) or principal
        ab_home = _first(found.hrefs(_AB_HOME)) or principal
        calendar, source = self._calendar(found, cal_home)
        addressbook, created = self._addressbook(ab_home)
        facts = MailboxFacts(principal, calendar, source, addressbook, created)
        return DavMailbox(
            contacts=DavCollection(self.connection, addressbook, VCardFormat(self.contact_fields)),
            events=DavCollection(self.connection, calendar, ICalendarFormat(self.rep_zone)),
            facts=facts,
        )

    def _principal_path(self) -> str:
        path = self.settings.principal_path.format(email=self.email)
        path = self.connection.base_path + "/" + path.lstrip("/")
        return canonical_path(path if path.endswith("/") else path + "/")

    def _principal(self, path: str) -> Response:
        props = (_CAL_HOME, _AB_HOME, _INBOX, _DEFAULT_CAL, tag(DAV, "resourcetype"))
        response = self._propfind(path, props, depth="0")
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
            response = self._propfind(path, props, depth="0")
        if response.status_code == 403:
            raise AuthenticationFailed(
                f"the service account {self.connection.username!r} may not read {path}",
                "Check the service account and its password, and grant it access to the "
                "rep's calendars and address books on the mail server.",
            )
        status = self._multistatus(response, path)
        for r in status.responses:
            if r.href == path:
                return r
        return status.responses[0] if status.responses else Response(path)

    def _calendar(self, principal: Response, home: str) -> tuple[str, str]:
        default = _first(principal.hrefs(_DEFAULT_CAL))
        inbox = _first(principal.hrefs(_INBOX))
        if default is None and inbox is not None:
            response = self._propfind(inbox, (_DEFAULT_CAL,), depth="0")
            if response.status_code == 207:
                default = _first(
                    h
                    for r in self._multistatus(response, inbox).responses
                    for h in r.hrefs(_DEFAULT_CAL)
                )
        if default is not None:
            return _collection_path(default), "default"
        calendars = [
            r
            for r in self._listing(home)
            if r.has_type(tag(CALDAV, "calendar")) and _supports_events(r)
        ]
        if calendars:
            preferred = [r for r in calendars if "calendar" in _name(r).lower()]
            return (preferred or calendars)[0].href, "found"
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
            response = self._propfind(home, _LISTING_PROPS, depth="1")
            if response.status_code == 404:
                self._listings[home] = []
            else:
                status = self._multistatus(response, home)
                self._listings[home] = [r for r in status.responses if r.href != home]
        return self._listings[home]

    def _propfind(self, path: str, props: tuple[str, ...], depth: str) -> httpx.Response:
        return self.connection.request(
            "PROPFIND", path, body=propfind_body(*props), headers={"Depth": depth}, xml=True
        )

    def _multistatus(self, response: httpx.Response, path: str) -> Multistatus:
        if response.status_code == 403:
            raise AuthenticationFailed(
                f"the service account {self.connection.username!r} may not read {path}",
                "Check the service account and grant it access to the rep's folders.",
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
