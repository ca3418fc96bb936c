"""What the EWS backend sends and how it reads Exchange's errors.

These tests use a fake EWS server built from Microsoft's documented payloads (see
``fake_ews.py``) and the official client library, exchangelib; each asserts on the exact
SOAP requests the fake received.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable, VersionConflict
from crmsync.groupware.ews import (
    EwsAuth,
    EwsConfig,
    EwsConnection,
    EwsRetry,
    MailboxUnreachable,
    check_impersonation,
    check_server_version,
    open_ews_mailbox,
)
from crmsync.groupware.ews.properties import PROPERTY_SET
from tests.groupware.contract import sample_contact
from tests.groupware.ews.fake_ews import FakeEwsServer
from tests.groupware.ews.fake_exchange import Fault, M, T
from tests.groupware.ews.harness import PASSWORD, REP, SERVICE, EwsHarness


@pytest.fixture
def server() -> Iterator[FakeEwsServer]:
    s = FakeEwsServer(SERVICE, PASSWORD, {REP, "other@example.com"})
    yield s
    s.stop()


@pytest.fixture
def harness(server: FakeEwsServer) -> Iterator[EwsHarness]:
    h = EwsHarness(server)
    yield h
    h.close()


def _config(server: FakeEwsServer, username: str = SERVICE, password: str = PASSWORD) -> EwsConfig:
    return EwsConfig(
        username, password, server.url, auth=EwsAuth.BASIC, retry=EwsRetry(max_attempts=3)
    )


def test_every_request_impersonates_the_rep_and_anchors_the_mailbox(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    harness.contacts.create(sample_contact(), "m1")
    assert server.fake.requests
    for r in server.fake.requests:
        assert r.impersonated == REP
        assert r.headers.get("X-AnchorMailbox") == REP


def test_create_item_carries_the_marker_property(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    harness.contacts.create(sample_contact(), "003XYZ")
    [create] = [r for r in server.fake.requests if r.operation == "CreateItem"]
    props = create.body.findall(f".//{{{T}}}ExtendedProperty")
    markers = [
        p.findtext(f"{{{T}}}Value")
        for p in props
        if p.find(f"{{{T}}}ExtendedFieldURI").get("PropertySetId") == PROPERTY_SET
        and p.find(f"{{{T}}}ExtendedFieldURI").get("PropertyName") == "CrmsyncMarker"
    ]
    assert markers == ["003XYZ"]


def test_update_item_names_only_changed_fields(server: FakeEwsServer, harness: EwsHarness) -> None:
    written = harness.contacts.create(sample_contact(), "u1")
    changed = dataclasses.replace(sample_contact(), title="Chief Analyst")
    harness.contacts.update(written.id, written.version, changed)
    [update] = [r for r in server.fake.requests if r.operation == "UpdateItem"]
    uris = [el.get("FieldURI") for el in update.body.iter(f"{{{T}}}FieldURI")]
    assert uris == ["contacts:JobTitle"]
    assert update.body.get("ConflictResolution") == "NeverOverwrite"


def test_next_sync_sends_the_saved_sync_state(server: FakeEwsServer, harness: EwsHarness) -> None:
    first = harness.contacts.changes(None, {})
    assert first.cursor
    harness.contacts.changes(first.cursor, {})
    syncs = [r for r in server.fake.requests if r.operation == "SyncFolderItems"]
    assert syncs[0].body.find(f"{{{M}}}SyncState") is None
    assert syncs[-1].body.findtext(f"{{{M}}}SyncState") == first.cursor


def test_server_busy_waits_the_back_off_the_server_asked_for(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    server.fake.faults.append(Fault("SyncFolderItems", "ErrorServerBusy", back_off_ms=2500))
    changes = harness.contacts.changes(None, {})
    assert changes.full
    assert harness.waits == [2.5]


def test_server_busy_for_too_long_is_server_unavailable(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    server.fake.faults.extend(Fault("SyncFolderItems", "ErrorServerBusy", 1000) for _ in range(5))
    with pytest.raises(ServerUnavailable):
        harness.contacts.changes(None, {})
    assert harness.waits == [1.0, 1.0]


def test_http_503_is_retried_then_server_unavailable(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    server.fake.faults.extend(Fault("SyncFolderItems", "", http_status=503) for _ in range(3))
    with pytest.raises(ServerUnavailable):
        harness.contacts.changes(None, {})
    assert len(harness.waits) == 2


def test_wrong_password_is_an_authentication_failure_with_the_format_hint(
    server: FakeEwsServer,
) -> None:
    connection = EwsConnection(_config(server, password="wrong"), sleep=lambda s: None)
    with pytest.raises(AuthenticationFailed) as caught:
        open_ews_mailbox(connection, REP)
    assert "DOMAIN\\user" in caught.value.suggestion
    assert "example.com\\svc" in caught.value.suggestion


def test_impersonation_denied_is_a_clear_mailbox_error(server: FakeEwsServer) -> None:
    server.fake.denied.add("other@example.com")
    with pytest.raises(MailboxUnreachable) as caught:
        open_ews_mailbox(_config(server), "other@example.com")
    assert "ApplicationImpersonation" in caught.value.suggestion


def test_unknown_mailbox_is_a_clear_mailbox_error(server: FakeEwsServer) -> None:
    with pytest.raises(MailboxUnreachable) as caught:
        open_ews_mailbox(_config(server), "nobody@example.com")
    assert "primary SMTP" in caught.value.suggestion


def test_stale_change_key_is_rejected_by_the_server_as_a_conflict(
    server: FakeEwsServer, harness: EwsHarness
) -> None:
    written = harness.contacts.create(sample_contact(), "c1")
    item = harness.contacts._get([written.id])[0]
    harness.foreign_edit(
        harness.contacts, written.id, dataclasses.replace(sample_contact(), title="X")
    )
    item.job_title = "Y"
    from exchangelib.items import NEVER_OVERWRITE

    with pytest.raises(VersionConflict):
        harness.connection.run(
            lambda: item.save(update_fields=["job_title"], conflict_resolution=NEVER_OVERWRITE),
            "update",
        )


def test_contacts_folder_is_created_once(server: FakeEwsServer) -> None:
    first = open_ews_mailbox(_config(server), REP)
    second = open_ews_mailbox(_config(server), REP)
    assert first.contacts_folder_created and not second.contacts_folder_created
    assert first.contacts.folder.id == second.contacts.folder.id


def test_connection_test_checks(server: FakeEwsServer) -> None:
    connection = EwsConnection(_config(server))
    assert check_server_version(connection, REP)[0]
    assert check_impersonation(connection, REP)[0]
    server.fake.denied.add(REP)
    passed, detail, fix = check_impersonation(connection, REP)
    assert not passed and "impersonate" in detail and fix
    server.fake.denied.clear()
    server.fake.version = (15, 0, 1497, 2)  # Exchange 2013
    passed, detail, fix = check_server_version(EwsConnection(_config(server)), REP)
    assert not passed and "2016" in fix


def test_malformed_item_is_reported_not_raised(server: FakeEwsServer, harness: EwsHarness) -> None:
    written = harness.events.create(
        __import__("tests.groupware.contract", fromlist=["x"]).sample_event(), "bad"
    )
    stored = server.fake.items[written.id]
    stored.element.remove(stored.element.find(f"{{{T}}}Start"))
    [seen] = [s for s in harness.events.changes(None, {}).items if s.id == written.id]
    assert seen.record is None and seen.problem is not None
    assert "no start" in seen.problem.message
