"""CalDAV/CardDAV servers as they are deployed (issue 12): SabreDAV's Digest auth, per-rep
logins and calendar-proxy delegation, scheduling servers, redirects and folders that are
not the rep's, events-only mailboxes, and what a cycle with nothing to do costs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crmsync.domain.records import Attendee, AttendeeStatus
from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import AuthenticationFailed, FolderMissing, ServerUnavailable
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy
from crmsync.groupware.dav.local_server import LocalRadicale
from crmsync.groupware.dav.mailbox import CONTACTS, EVENTS, DiscoveryCache, open_mailbox
from tests.groupware.contract import sample_contact, sample_event
from tests.sabredav import (
    PRINCIPAL_PATH,
    REPS,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    SabreDavServer,
    sabredav_missing,
    start_sabredav,
)
from tests.servers import SERVICE_ACCOUNT as RADICALE_SERVICE
from tests.servers import SERVICE_PASSWORD as RADICALE_PASSWORD
from tests.servers import DavServerInfo, dav_server

__all__ = ["dav_server"]

ANN, BOB = "ann@example.com", "bob@example.com"
QUICK = RetryPolicy(max_attempts=2, base_delay=0.01)
needs_sabredav = pytest.mark.skipif(sabredav_missing() is not None, reason=str(sabredav_missing()))


def _sabre(tmp_path: Path, auth: str, service: str) -> Iterator[SabreDavServer]:
    server = start_sabredav(tmp_path / f"sabre-{auth}-{service}", auth, service)
    yield server
    server.stop()


@pytest.fixture
def sabre_admin(tmp_path: Path) -> Iterator[SabreDavServer]:
    yield from _sabre(tmp_path, "basic", "admin")


@pytest.fixture
def sabre_digest(tmp_path: Path) -> Iterator[SabreDavServer]:
    yield from _sabre(tmp_path, "digest", "none")


@pytest.fixture
def sabre_proxy(tmp_path: Path) -> Iterator[SabreDavServer]:
    yield from _sabre(tmp_path, "basic", "proxy")


def _settings(url: str, **more: object) -> OrgSettings:
    values: dict[str, object] = {
        "server_url": url,
        "service_account": SERVICE_ACCOUNT,
        "principal_path": PRINCIPAL_PATH,
    }
    values.update(more)
    return OrgSettings(**values)  # type: ignore[arg-type]


def _as(server: SabreDavServer, login: str, password: str) -> DavConnection:
    return DavConnection(server.url, login, password, retry=QUICK)


def _meeting() -> object:
    return dataclasses.replace(
        sample_event("Pipeline with Bob"),
        organizer=ANN,
        attendees=(Attendee(BOB, "Bob", AttendeeStatus.NEEDS_ACTION),),
    )


def _calendar_of(server: SabreDavServer, email: str) -> DavCollection:
    connection = _as(server, email, REPS[email])
    mailbox = open_mailbox(
        connection, _settings(server.url), email, signed_in_as_rep=True, kinds=frozenset({EVENTS})
    )
    assert isinstance(mailbox.events, DavCollection)
    return mailbox.events


# -------------------------------------------------------------------- Digest, per-rep logins


@needs_sabredav
def test_digest_is_chosen_from_the_challenge_and_named_when_refused(
    sabre_digest: SabreDavServer,
) -> None:
    connection = _as(sabre_digest, ANN, REPS[ANN])
    mailbox = open_mailbox(
        connection, _settings(sabre_digest.url), ANN, login=ANN, signed_in_as_rep=True
    )
    assert connection.auth_scheme == "Digest"
    written = mailbox.contacts.create(sample_contact(), "digest-1")
    assert mailbox.contacts.fetch(written.id) is not None
    wrong = _as(sabre_digest, ANN, "not-her-password")
    with pytest.raises(AuthenticationFailed) as refused:
        open_mailbox(wrong, _settings(sabre_digest.url), ANN, signed_in_as_rep=True)
    assert "Digest" in refused.value.message
    assert "not-her-password" not in refused.value.message + refused.value.suggestion


@needs_sabredav
def test_a_rep_signed_in_with_their_own_login_gets_their_own_folders(
    sabre_digest: SabreDavServer,
) -> None:
    # Nextcloud/Baïkal: no service account can open a rep's mailbox; each rep's login can.
    service = _as(sabre_digest, SERVICE_ACCOUNT, SERVICE_PASSWORD)
    with pytest.raises((FolderMissing, AuthenticationFailed)):
        open_mailbox(service, _settings(sabre_digest.url), ANN)
    bob = open_mailbox(
        _as(sabre_digest, BOB, REPS[BOB]), _settings(sabre_digest.url), BOB, signed_in_as_rep=True
    )
    assert bob.facts.calendar.startswith("/calendars/bob%40example.com/")
    assert bob.facts.addressbook.startswith("/addressbooks/bob%40example.com/")


# -------------------------------------------------------------------- events-only, delegation


@needs_sabredav
def test_calendar_proxy_delegation_syncs_events_without_any_contacts_folder(
    sabre_proxy: SabreDavServer,
) -> None:
    connection = _as(sabre_proxy, SERVICE_ACCOUNT, SERVICE_PASSWORD)
    settings = _settings(sabre_proxy.url)
    # calendar-proxy-write covers calendars only: the address book can't be made ...
    with pytest.raises(FolderMissing) as missing:
        open_mailbox(connection, settings, ANN)
    assert missing.value.folder == "contacts"
    # ... and an events-only configuration does not need it.
    before = len(sabre_proxy.requests())
    mailbox = open_mailbox(connection, settings, ANN, kinds=frozenset({EVENTS}))
    assert not any("/addressbooks/" in path for _, path, _ in sabre_proxy.requests()[before:])
    written = mailbox.events.create(sample_event(), "proxy-1")
    assert written.id.startswith("/calendars/ann%40example.com/")
    with pytest.raises(FolderMissing):
        mailbox.contacts.changes(None, {})


def test_a_contacts_only_mailbox_never_looks_for_a_calendar(dav_server: DavServerInfo) -> None:
    connection = DavConnection(dav_server.url, dav_server.username, dav_server.password)
    mailbox = open_mailbox(
        connection, dav_server.settings(), dav_server.email, kinds=frozenset({CONTACTS})
    )
    assert mailbox.facts.calendar == "" and mailbox.facts.calendar_source == "unused"
    assert mailbox.contacts.create(sample_contact(), "only-contacts").record == sample_contact()


# -------------------------------------------------------------------- scheduling servers


@needs_sabredav
def test_a_meeting_crmsync_writes_is_not_delivered_nor_cancelled_by_the_server(
    sabre_admin: SabreDavServer,
) -> None:
    connection = _as(sabre_admin, SERVICE_ACCOUNT, SERVICE_PASSWORD)
    mailbox = open_mailbox(connection, _settings(sabre_admin.url), ANN)
    assert mailbox.facts.scheduling
    written = mailbox.events.create(_meeting(), "meeting-1")  # type: ignore[arg-type]
    bobs = _calendar_of(sabre_admin, BOB)
    assert bobs.changes(None, {}).items == ()  # no invitation delivered
    mailbox.events.delete(written.id, written.version)
    assert bobs.changes(None, {}).items == ()  # and no cancellation either


@needs_sabredav
def test_a_meeting_the_server_delivered_is_not_imported_a_second_time(
    sabre_admin: SabreDavServer,
) -> None:
    # With "notify attendees" on the server delivers the meeting, marker and all.
    connection = _as(sabre_admin, SERVICE_ACCOUNT, SERVICE_PASSWORD)
    settings = _settings(sabre_admin.url, notify_attendees_on_crm_edits=True)
    anns = open_mailbox(connection, settings, ANN).events
    anns.create(_meeting(), "meeting-2")  # type: ignore[arg-type]
    (copy,) = _calendar_of(sabre_admin, BOB).changes(None, {}).items
    assert copy.record is None and copy.problem is None
    assert copy.note is not None and "meeting-2" in copy.note


# -------------------------------------------------------------------- redirects, ownership


class _Redirecting(httpx.HTTPTransport):
    """Radicale behind a front that redirects PROPFINDs of one path elsewhere."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__()
        self.source, self.target = source, target
        self.methods: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        if request.method == "PROPFIND" and request.url.raw_path.decode() == self.source:
            return httpx.Response(301, headers={"Location": self.target})
        return super().handle_request(request)


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[LocalRadicale]:
    from tests.servers import start_radicale

    server = start_radicale(tmp_path)
    yield server
    server.stop()


def _radicale_settings(url: str, path: str = "/{email}/") -> OrgSettings:
    return OrgSettings(server_url=url, service_account=RADICALE_SERVICE, principal_path=path)


def test_discovery_follows_a_redirect_to_the_reps_principal(radicale: LocalRadicale) -> None:
    transport = _Redirecting("/people/rep%40example.com/", "/rep%40example.com/")
    connection = DavConnection(
        radicale.url, RADICALE_SERVICE, RADICALE_PASSWORD, transport=transport
    )
    settings = _radicale_settings(radicale.url, "/people/{email}/")
    mailbox = open_mailbox(connection, settings, "rep@example.com")
    assert mailbox.facts.principal == "/rep%40example.com/"
    assert mailbox.events.create(sample_event(), "r1").id.startswith("/rep%40example.com/")


def test_a_redirect_into_the_service_accounts_own_tree_writes_nothing(
    radicale: LocalRadicale,
) -> None:
    # As Cyrus does for a delegate: the rep's principal answered with the account's own.
    transport = _Redirecting("/rep%40example.com/", f"/{RADICALE_SERVICE}/")
    connection = DavConnection(
        radicale.url, RADICALE_SERVICE, RADICALE_PASSWORD, transport=transport
    )
    with pytest.raises(FolderMissing) as refused:
        open_mailbox(connection, _radicale_settings(radicale.url), "rep@example.com")
    assert refused.value.folder == "principal"
    assert "service account's own principal" in refused.value.message
    assert set(transport.methods) == {"PROPFIND"}  # nothing written anywhere


def test_a_redirect_to_another_server_is_refused(radicale: LocalRadicale) -> None:
    transport = _Redirecting("/rep%40example.com/", "https://elsewhere.example/rep/")
    connection = DavConnection(
        radicale.url, RADICALE_SERVICE, RADICALE_PASSWORD, transport=transport
    )
    with pytest.raises(FolderMissing, match="another server"):
        open_mailbox(connection, _radicale_settings(radicale.url), "rep@example.com")


@needs_sabredav
def test_a_principal_whose_addresses_are_someone_elses_is_refused(
    sabre_admin: SabreDavServer,
) -> None:
    # A principal path pointing at Bob's principal for Ann (a wrong template, a proxy).
    connection = _as(sabre_admin, SERVICE_ACCOUNT, SERVICE_PASSWORD)
    settings = _settings(sabre_admin.url, principal_path="/principals/bob@example.com/")
    with pytest.raises(FolderMissing, match=r"belongs to bob@example\.com"):
        open_mailbox(connection, settings, ANN)


# -------------------------------------------------------------------- no-change cost


def test_a_cached_discovery_costs_no_request_and_a_quiet_cycle_one_per_folder(
    dav_server: DavServerInfo,
) -> None:
    connection = DavConnection(dav_server.url, dav_server.username, dav_server.password)
    cache = DiscoveryCache()
    settings = dav_server.settings()
    first = open_mailbox(connection, settings, dav_server.email, cache=cache)
    cursors = {side: side.changes(None, {}).cursor for side in (first.contacts, first.events)}
    before = connection.requests_made
    again = open_mailbox(connection, settings, dav_server.email, cache=cache)
    for side in (again.contacts, again.events):
        old = next(s for s in cursors if s.path == side.path)  # type: ignore[union-attr]
        assert side.changes(cursors[old], {}).items == ()
    assert connection.requests_made - before == 2  # one per folder, no discovery


def test_a_folder_gone_from_the_server_makes_the_next_open_discover_again(
    dav_server: DavServerInfo,
) -> None:
    connection = DavConnection(
        dav_server.url, dav_server.username, dav_server.password, retry=QUICK
    )
    cache = DiscoveryCache()
    settings = dav_server.settings(contacts_folder="Gone soon")
    mailbox = open_mailbox(connection, settings, dav_server.email, cache=cache)
    assert mailbox.facts.contacts_folder_created
    assert connection.request("DELETE", mailbox.facts.addressbook).status_code in (200, 204)
    with pytest.raises(ServerUnavailable, match=r"HTTP 404"):
        mailbox.contacts.changes(None, {})
    reopened = open_mailbox(connection, settings, dav_server.email, cache=cache)
    assert reopened.facts.contacts_folder_created  # discovered (and made) again


def test_a_collection_without_sync_collection_is_not_asked_for_it_every_cycle(
    dav_server: DavServerInfo,
) -> None:
    # SabreDAV 1.8 (Debian) and some DAViCal setups refuse the sync-collection REPORT.
    class NoSync(httpx.HTTPTransport):
        reports = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "REPORT" and b"sync-collection" in request.content:
                NoSync.reports += 1
                return httpx.Response(501)
            return super().handle_request(request)

    connection = DavConnection(
        dav_server.url, dav_server.username, dav_server.password, transport=NoSync()
    )
    mailbox = open_mailbox(connection, dav_server.settings(), dav_server.email)
    written = mailbox.contacts.create(sample_contact(), "no-sync")
    first = mailbox.contacts.changes(None, {})
    assert first.cursor is not None and first.cursor.startswith("listing:")
    known = {written.id: written.version}
    reports, before = NoSync.reports, connection.requests_made
    quiet = mailbox.contacts.changes(first.cursor, known)
    assert (quiet.items, quiet.deleted) == ((), ())
    assert NoSync.reports == reports
    assert connection.requests_made - before <= 2
    # A change is still seen, and a deletion too.
    mailbox.contacts.update(
        written.id, written.version, dataclasses.replace(sample_contact(), title="CEO")
    )
    changed = mailbox.contacts.changes(quiet.cursor, known)
    assert [s.record.title for s in changed.items] == ["CEO"]  # type: ignore[union-attr]
