"""Read-only discovery of one rep's folders, step by step, for the admin's connection test.

`MailboxProbe` finds what `open_mailbox` would find (it runs the same discovery code), but
on a read-only `DavConnection`: where `open_mailbox` would create the principal, calendar
or contacts folder, the probe reports the folder as missing instead. It also reads what
the service account may do in a home set (RFC 3744 ``current-user-privilege-set``) and
whether a collection supports sync-collection (RFC 6578).
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import FolderMissing, ServerUnavailable
from crmsync.groupware.dav.connection import DavConnection, WouldWrite
from crmsync.groupware.dav.mailbox import _AB_HOME, _CAL_HOME, _Discovery, _first
from crmsync.groupware.dav.multistatus import (
    DAV,
    Multistatus,
    MultistatusError,
    Response,
    parse_multistatus,
    propfind_body,
    sync_collection_body,
    tag,
)

_PRIVILEGES = tag(DAV, "current-user-privilege-set")
_SYNC_TOKEN = tag(DAV, "sync-token")
# Privileges that let the account add a collection to a home (RFC 3744 §3.1, §3.9):
# ``bind`` itself, or an aggregate containing it.
_CREATE_PRIVILEGES = frozenset({"bind", "write", "all"})


@dataclass(frozen=True)
class Principal:
    """The rep's principal and the home sets folders live (or would be created) in."""

    path: str
    calendar_home: str
    addressbook_home: str


@dataclass(frozen=True)
class FolderLookup:
    """One of the rep's folders: ``path`` is ``None`` when it does not exist yet, in which
    case the first sync creates it inside ``home``. ``source`` is ``"default"`` (the
    server's default calendar), ``"found"`` or ``"missing"``."""

    home: str
    path: str | None
    source: str

    @property
    def exists(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class SyncSupport:
    """Whether a collection supports incremental listing (RFC 6578).

    ``has_token``: it reports a ``DAV:sync-token``; ``report_status``: the HTTP status of
    a sync-collection REPORT with that token (``None`` when not tried, for lack of one).
    """

    path: str
    has_token: bool
    report_status: int | None

    @property
    def supported(self) -> bool:
        return self.has_token and self.report_status == 207


def may_create_in(privileges: frozenset[str] | None) -> bool | None:
    """Whether ``privileges`` (from `MailboxProbe.privileges`) allow creating a folder;
    ``None`` when the server did not say."""
    if privileges is None:
        return None
    return bool(privileges & _CREATE_PRIVILEGES)


class MailboxProbe:
    """Read-only discovery for the rep with ``email``; every method may raise
    `AuthenticationFailed`, `FolderMissing` or `ServerUnavailable`."""

    def __init__(
        self,
        connection: DavConnection,
        settings: OrgSettings,
        email: str,
        *,
        login: str = "",
        signed_in_as_rep: bool = False,
    ) -> None:
        if not connection.read_only:
            raise ValueError("a MailboxProbe needs a read-only connection")
        self.connection = connection
        # The sync's own discovery, so the probe finds exactly the folders a cycle would
        # use; its create calls hit the read-only connection and raise WouldWrite.
        self._discovery = _Discovery(connection, settings, email, login, signed_in_as_rep)
        self._found: dict[str, Response] = {}

    def principal(self) -> Principal:
        """The rep's principal at the org's principal path; `FolderMissing` if absent."""
        path = self._discovery._principal_path()
        try:
            found = self._discovery._principal(path)
        except WouldWrite:
            found = Response(path, 404)  # a cycle would try to create it (Radicale)
        # Xandikos answers a PROPFIND on a missing path with a 207 holding a 404.
        if found.status == 404:
            raise FolderMissing(
                f"no principal for {self._discovery.email} at {path} (HTTP 404)",
                "Check the rep's email address and the principal path in the org settings; "
                "on servers that create accounts at first login, have the rep log in once.",
                folder="principal",
            )
        path = found.href  # where the server keeps it, after any redirect
        self._found[path] = found
        return Principal(
            path,
            _first(found.hrefs(_CAL_HOME)) or path,
            _first(found.hrefs(_AB_HOME)) or path,
        )

    def calendar(self, principal: Principal) -> FolderLookup:
        """The calendar a sync would use: the server's default, else the first event
        calendar in the calendar home (preferring one named like "calendar")."""
        found = self._found.get(principal.path) or Response(principal.path)
        try:
            path, source = self._discovery._calendar(found, principal.calendar_home)
        except WouldWrite:
            return FolderLookup(principal.calendar_home, None, "missing")
        return FolderLookup(principal.calendar_home, path, source)

    def contacts_folder(self, principal: Principal) -> FolderLookup:
        """The address book named like the org's contacts folder, if it exists."""
        try:
            path, _ = self._discovery._addressbook(principal.addressbook_home)
        except WouldWrite:
            return FolderLookup(principal.addressbook_home, None, "missing")
        return FolderLookup(principal.addressbook_home, path, "found")

    def privileges(self, path: str) -> frozenset[str] | None:
        """The service account's privileges on ``path`` (local names such as ``read``,
        ``bind``, ``write``, ``all``), or ``None`` when the server does not report them."""
        response = self._propfind(path, _PRIVILEGES)
        if response is None or _PRIVILEGES not in response.props:
            return None
        element = response.props[_PRIVILEGES]
        return frozenset(
            child.tag.rpartition("}")[2]
            for privilege in element.iter(tag(DAV, "privilege"))
            for child in privilege
        )

    def sync_support(self, path: str) -> SyncSupport:
        """Whether ``path`` answers sync-collection; asks only for changes since its
        current token, so it downloads nothing however big the collection is."""
        response = self._propfind(path, _SYNC_TOKEN)
        token = response.text(_SYNC_TOKEN) if response is not None else None
        if not token:
            return SyncSupport(path, False, None)
        report = self.connection.request(
            "REPORT", path, body=sync_collection_body(token), headers={"Depth": "0"}, xml=True
        )
        return SyncSupport(path, True, report.status_code)

    def _propfind(self, path: str, *props: str) -> Response | None:
        """The properties of ``path`` itself; ``None`` when the server refused the PROPFIND
        with a client error."""
        response = self.connection.request(
            "PROPFIND", path, body=propfind_body(*props), headers={"Depth": "0"}, xml=True
        )
        if 400 <= response.status_code < 500:
            return None
        status = _multistatus(response.content, response.status_code, path)
        for r in status.responses:
            if r.href == path:
                return r
        return status.responses[0] if status.responses else None


def _multistatus(content: bytes, status_code: int, path: str) -> Multistatus:
    if status_code != 207:
        raise ServerUnavailable(
            f"PROPFIND {path} answered HTTP {status_code}",
            "Check the DAV server's log; the server may be misconfigured.",
        )
    try:
        return parse_multistatus(content)
    except MultistatusError as exc:
        raise ServerUnavailable(f"PROPFIND {path}: {exc}", "Check the DAV server's log.") from exc
