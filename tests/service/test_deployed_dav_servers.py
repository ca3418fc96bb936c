"""End to end on SabreDAV set up as Nextcloud and Baïkal are (issue 12): per-rep app
passwords over Digest or Basic, calendar-proxy delegation for events-only, a rep whose
password stops working, scheduling, and what quiet cycles cost."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.domain.records import Attendee, AttendeeStatus, Contact, Event, EventTiming, ItemKind
from crmsync.domain.settings import (
    ContactSettings,
    DavSignIn,
    Direction,
    EventSettings,
    OrgSettings,
    SyncConfig,
)
from crmsync.domain.sync import ErrorType
from crmsync.groupware.dav import DavConnection, RetryPolicy, open_mailbox
from crmsync.groupware.dav.mailbox import EVENTS
from crmsync.service.connection_test import REP_LOGIN, run_connection_test
from crmsync.service.connection_test import SERVICE_ACCOUNT as ACCOUNT_STEP
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from crmsync.store import RepCredentials, SyncStatus
from tests.sabredav import (
    PRINCIPAL_PATH,
    REPS,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    SabreDavServer,
    sabredav_missing,
    start_sabredav,
)
from tests.service.http_proxy import Request, RuleProxy

pytestmark = pytest.mark.skipif(sabredav_missing() is not None, reason=str(sabredav_missing()))

ANN, BOB = "ann@example.com", "bob@example.com"
UTC = dt.UTC
START = dt.datetime(2030, 3, 4, 9, tzinfo=UTC)
ALL = SyncConfig("Sales", events=EventSettings(sync_private=True))
EVENTS_ONLY = SyncConfig(
    "Calendars", contacts=ContactSettings(direction=Direction.NONE), events=EventSettings()
)


class Org:
    """One org of crmsync syncing Ann and Bob with a SabreDAV server."""

    def __init__(self, server: SabreDavServer, home: Path, settings: OrgSettings, password: str):
        self.server = server
        self.service = SyncService(
            Deployment.from_env(home), retry=RetryPolicy(max_attempts=2, base_delay=0.01)
        )
        self.service.configure_server(settings, password)
        self.crm = self.service.crm
        self.reps = {email: self.crm.create_user(email, email.split("@")[0]) for email in REPS}

    def configure(self, config: SyncConfig) -> None:
        ids = tuple(user.id for user in self.reps.values())
        self.service.store.save_config(dataclasses.replace(config, user_ids=ids))

    def sync(self, email: str) -> str | None:
        return self.service.sync_rep(self.reps[email]).error

    def status(self, email: str, kind: ItemKind, flow: Direction) -> SyncStatus:
        return self.service.store.rep_status(self.reps[email].id).sync_status(kind, flow)

    def calendar(self, email: str) -> list[str]:
        """The rep's calendar as their own mail program sees it: each item's subject, or
        "copy" for a meeting crmsync recognises as delivered from another rep's sync."""
        connection = DavConnection(self.server.url, email, REPS[email])
        settings = OrgSettings(server_url=self.server.url, principal_path=PRINCIPAL_PATH)
        mailbox = open_mailbox(
            connection, settings, email, kinds=frozenset({EVENTS}), signed_in_as_rep=True
        )
        items = mailbox.events.changes(None, {}).items
        connection.close()
        return sorted(s.record.subject if isinstance(s.record, Event) else "copy" for s in items)

    def stored_in_calendar(self, email: str) -> int:
        """How many items the rep's default calendar holds, whatever they are (a cancelled
        copy included), counted from a plain PROPFIND."""
        connection = DavConnection(self.server.url, email, REPS[email])  # Basic or Digest
        response = connection.request(
            "PROPFIND",
            f"/calendars/{email}/default/",
            headers={"Depth": "1"},
            body='<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            xml=True,
        )
        connection.close()
        assert response.status_code == 207
        return response.text.count("<d:getetag>")

    def close(self) -> None:
        self.service.close()


def _per_rep(server: SabreDavServer, **more: object) -> OrgSettings:
    values: dict[str, object] = {
        "server_url": server.url,
        "principal_path": PRINCIPAL_PATH,
        "dav_sign_in": DavSignIn.PER_REP,
    }
    values.update(more)
    return OrgSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["digest", "basic"])
def nextcloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Org]:
    """Per-rep app passwords: the service account has no rights on the reps' data."""
    server = start_sabredav(tmp_path / "sabre", request.param, "none")
    org = Org(server, tmp_path / "home", _per_rep(server), "")
    for email, password in REPS.items():
        org.service.set_rep_sign_in(email, email, password)
    yield org
    org.close()
    server.stop()


def _meeting(subject: str = "Pipeline with Bob") -> Event:
    return Event(
        subject,
        EventTiming(START, START + dt.timedelta(hours=1)),
        organizer=ANN,
        attendees=(Attendee(BOB, "Bob", AttendeeStatus.NEEDS_ACTION),),
    )


def test_per_rep_app_passwords_reach_in_sync(nextcloud: Org) -> None:
    org = nextcloud
    org.configure(ALL)
    ann = org.reps[ANN].id
    org.crm.create_contact(ann, Contact(first_name="Ada", last_name="Lovelace"))
    org.crm.create_event(ann, Event("Review", EventTiming(START, START + dt.timedelta(hours=1))))
    assert org.sync(ANN) is None and org.sync(BOB) is None
    assert org.calendar(ANN) == ["Review"]
    assert org.sync(ANN) is None
    for kind in ItemKind:
        for flow in (Direction.CRM_TO_MAIL, Direction.MAIL_TO_CRM):
            assert org.status(ANN, kind, flow) is SyncStatus.IN_SYNC
    shown = org.service.rep_sign_in(ANN).as_dict()
    assert shown["login"] == ANN and shown["password_stored"] is True
    assert REPS[ANN] not in repr(shown)


def test_a_rep_whose_password_stops_working_needs_attention_not_retries(nextcloud: Org) -> None:
    org = nextcloud
    org.configure(ALL)
    org.service.set_rep_sign_in(ANN, ANN, "revoked-app-password")
    error = org.sync(ANN)
    assert error is not None and "refused" in error
    rows = org.service.store.errors(rep_id=org.reps[ANN].id)
    assert [r.error_type for r in rows] == [ErrorType.AUTHENTICATION]
    assert "revoked-app-password" not in rows[0].message + rows[0].suggestion
    assert org.service.rep_sign_in(ANN).needs_attention
    # Further cycles send nothing to the server and add no error row.
    before = len(org.server.requests())
    for _ in range(3):
        again = org.sync(ANN)
        assert again is not None and again.startswith("Needs attention")
    assert len(org.server.requests()) == before
    assert len(org.service.store.errors(rep_id=org.reps[ANN].id)) == 1
    # Bob is not held up by Ann.
    assert org.sync(BOB) is None
    # A new app password ends it at once.
    org.service.set_rep_sign_in(ANN, ANN, REPS[ANN])
    assert not org.service.rep_sign_in(ANN).needs_attention
    assert org.sync(ANN) is None


def test_a_rep_without_a_stored_login_is_told_what_to_enter(tmp_path: Path) -> None:
    server = start_sabredav(tmp_path / "sabre", "basic", "none")
    org = Org(server, tmp_path / "home", _per_rep(server), "")
    try:
        org.configure(ALL)
        error = org.sync(ANN)
        assert error is not None and "no login is stored" in error
        (row,) = org.service.store.errors(rep_id=org.reps[ANN].id)
        assert "rep's page" in row.suggestion
    finally:
        org.close()
        server.stop()


def test_calendar_proxy_delegation_with_an_events_only_configuration(tmp_path: Path) -> None:
    # The service account is in each rep's calendar-proxy-write group: calendars only.
    server = start_sabredav(tmp_path / "sabre", "basic", "proxy")
    settings = OrgSettings(
        server_url=server.url, service_account=SERVICE_ACCOUNT, principal_path=PRINCIPAL_PATH
    )
    org = Org(server, tmp_path / "home", settings, SERVICE_PASSWORD)
    try:
        org.configure(EVENTS_ONLY)
        org.crm.create_event(
            org.reps[BOB].id, Event("Demo", EventTiming(START, START + dt.timedelta(hours=1)))
        )
        assert org.sync(BOB) is None
        assert org.sync(BOB) is None
        assert org.calendar(BOB) == ["Demo"]
        assert org.status(BOB, ItemKind.EVENT, Direction.CRM_TO_MAIL) is SyncStatus.IN_SYNC
        assert not any("/addressbooks/" in path for _, path, _ in server.requests())
        status = org.service.store.rep_status(org.reps[BOB].id)
        assert status.calendar_found is True and status.contacts_folder_found is None
    finally:
        org.close()
        server.stop()


@pytest.mark.parametrize("notify", [False, True])
def test_a_crm_meeting_is_neither_delivered_by_surprise_nor_imported_twice(
    nextcloud: Org, notify: bool
) -> None:
    org = nextcloud
    org.service.configure_server(_per_rep(org.server, notify_attendees_on_crm_edits=notify), "")
    org.configure(ALL)
    meeting = org.crm.create_event(org.reps[ANN].id, _meeting())
    assert org.sync(ANN) is None
    # Only with "notify attendees" on does the server deliver it (as the same marker's copy).
    assert org.calendar(BOB) == (["copy"] if notify else [])
    assert org.sync(BOB) is None
    # Bob's CRM events never gain a second one.
    assert org.crm.list_events(owner_id=org.reps[BOB].id) == []
    if not notify:
        # A CRM deletion makes the server cancel nothing in Bob's calendar either.
        org.crm.delete_event(meeting.id)
        assert org.sync(ANN) is None
        assert org.stored_in_calendar(BOB) == 0  # not even a cancelled copy
        assert org.stored_in_calendar(ANN) == 0


def test_quiet_cycles_cost_one_request_per_folder(nextcloud: Org) -> None:
    org = nextcloud
    org.configure(ALL)
    assert org.sync(ANN) is None and org.sync(ANN) is None
    for _ in range(2):
        # A save moves the settings version; unchanged settings keep the connection.
        org.service.store.save_org_settings(org.service.org_settings())
        before = len(org.server.requests())
        assert org.sync(ANN) is None
        assert len(org.server.requests()) - before == 2  # the calendar's and the book's


# -------------------------------------------------------------------- connection test


def test_the_connection_test_signs_in_as_the_rep_and_names_digest(tmp_path: Path) -> None:
    server = start_sabredav(tmp_path / "sabre", "digest", "none")
    try:
        settings = _per_rep(server)
        good = run_connection_test(
            settings, None, ANN, rep_credentials=RepCredentials(ANN, REPS[ANN])
        )
        assert good.passed, good.as_dict()
        assert "Digest" in good.step(REP_LOGIN).detail
        bad = run_connection_test(settings, None, ANN, rep_credentials=RepCredentials(ANN, "nope"))
        step = bad.step(REP_LOGIN)
        assert step.status == "failed" and "Digest" in step.detail
        assert "Digest" in step.fix and "DOMAIN" not in step.fix and "\\" not in step.fix
        missing = run_connection_test(settings, None, BOB)
        assert "No login is stored" in missing.step(REP_LOGIN).detail
    finally:
        server.stop()


_UNAUTHENTICATED = (
    b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href>'
    b"<d:propstat><d:prop><d:current-user-principal><d:unauthenticated/>"
    b"</d:current-user-principal></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    b"</d:response></d:multistatus>"
)


def test_the_connection_test_judges_the_server_by_its_signed_in_answers(tmp_path: Path) -> None:
    # A front that answers anonymous requests itself: OPTIONS without a DAV header, and a
    # PROPFIND granting nothing (an unauthenticated principal), as some proxies do.
    server = start_sabredav(tmp_path / "sabre", "basic", "admin")

    def anonymous(request: Request) -> tuple[int, dict[str, str], bytes] | None:
        if request.signed_in:
            return None
        if request.method == "OPTIONS":
            return (200, {}, b"")
        if request.method == "PROPFIND":
            return (207, {"Content-Type": "application/xml"}, _UNAUTHENTICATED)
        return None

    proxy = RuleProxy(server.url, anonymous)
    try:
        settings = OrgSettings(
            server_url=proxy.url, service_account=SERVICE_ACCOUNT, principal_path=PRINCIPAL_PATH
        )
        result = run_connection_test(settings, SERVICE_PASSWORD, ANN)
        assert result.steps[0].status == "passed"
        account = result.step(ACCOUNT_STEP)
        assert account.status == "passed", account  # no "anyone can read" warning
    finally:
        proxy.close()
        server.stop()
