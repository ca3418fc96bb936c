"""The service with the Microsoft connection methods selected.

Exchange: a whole cycle through `SyncService` against the HTTP-level fake EWS server of
tests/groupware/ews (built from Microsoft's documented SOAP payloads; no Exchange server
can run here) with the official client library, exchangelib. Microsoft 365: the mapping
from the org settings to the Graph backend (its protocol is covered by the contract suite
in tests/groupware/graph against a fake of the documented Graph JSON).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from crmsync.domain.settings import ConnectionMethod, ExchangeAuth, OrgSettings, SyncConfig
from crmsync.domain.sync import ErrorType
from crmsync.service.connection_test import run_connection_test
from crmsync.service.deployment import Deployment
from crmsync.service.mailboxes import BackendNotAvailable, MailServer, graph_config
from crmsync.service.runner import SyncService
from tests.groupware.ews.fake_ews import FakeEwsServer

REP = "rep@example.com"
ACCOUNT = "svc@example.com"
PASSWORD = "ews-service-secret"


@pytest.fixture
def exchange() -> Iterator[FakeEwsServer]:
    server = FakeEwsServer(ACCOUNT, PASSWORD, {REP})
    yield server
    server.stop()


def exchange_settings(exchange: FakeEwsServer) -> OrgSettings:
    return OrgSettings(
        connection_method=ConnectionMethod.EWS,
        server_url=exchange.url,
        service_account=ACCOUNT,
        exchange_auth=ExchangeAuth.BASIC,
    )


def test_a_cycle_against_exchange_creates_then_writes_nothing(
    exchange: FakeEwsServer, tmp_path: Path
) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        service.configure_server(
            exchange_settings(exchange),
            PASSWORD,
        )
        rep = service.crm.create_user(REP, "Rita Rep")
        service.save_config(SyncConfig("Sales", user_ids=(rep.id,)))
        service.crm.create_contact(rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
        start = dt.datetime(2031, 3, 4, 9, tzinfo=dt.UTC)
        service.crm.create_event(
            rep.id, Event("Pipeline review", EventTiming(start, start + dt.timedelta(hours=1)))
        )
        sent = len(exchange.fake.requests)
        preview = service.preview_rep(rep)
        assert preview.note is not None and "first cycle creates it" in preview.note
        operations = {r.operation for r in exchange.fake.requests[sent:]}
        assert operations and not operations & {"CreateFolder", "CreateItem", "UpdateItem"}
        first = service.sync_rep(rep)
        assert first.error is None, first.error
        assert first.writes == 2
        assert service.sync_rep(rep).writes == 0
        # Once the folder exists, a preview lists the plan and changes nothing.
        service.crm.create_contact(rep.id, Contact("Grace", "Hopper"))
        sent = len(exchange.fake.requests)
        planned = service.preview_rep(rep)
        assert planned.note is None
        assert not any(
            r.operation.startswith(("Create", "Update", "Delete"))
            for r in exchange.fake.requests[sent:]
        )
        assert [type(a).__name__ for a in planned.kinds[ItemKind.CONTACT]] == ["Create"]
        assert service.sync_rep(rep).writes == 1
        status = service.store.rep_status(rep.id)
        assert status.recognized and status.contacts_folder_found
        assert status.records_in_sync == {ItemKind.CONTACT: 2, ItemKind.EVENT: 1}


def test_a_wrong_exchange_password_is_an_error_row_with_the_account_format_hint(
    exchange: FakeEwsServer, tmp_path: Path
) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        service.configure_server(
            exchange_settings(exchange),
            "not the password",
        )
        rep = service.crm.create_user(REP, "Rita Rep")
        service.save_config(SyncConfig("Sales", user_ids=(rep.id,)))
        report = service.sync_rep(rep)
        assert report.error is not None
        (row,) = service.store.errors()
        assert row.error_type is ErrorType.AUTHENTICATION
        assert "\\" in row.suggestion  # try DOMAIN\user instead of user@domain
        assert "not the password" not in row.message + row.suggestion


def test_graph_settings_become_the_backend_configuration() -> None:
    settings = OrgSettings(
        connection_method=ConnectionMethod.GRAPH,
        graph_tenant_id="contoso.onmicrosoft.com",
        graph_client_id="11111111-2222-3333-4444-555555555555",
        contacts_folder="CRM",
        notify_attendees_on_crm_edits=True,
    )
    with_secret = graph_config(settings, "app-secret")
    assert (with_secret.tenant_id, with_secret.client_secret) == (
        "contoso.onmicrosoft.com",
        "app-secret",
    )
    assert with_secret.contacts_folder == "CRM" and with_secret.notify_attendees_on_crm_edits
    pem = "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"
    certificate = OrgSettings(
        connection_method=ConnectionMethod.GRAPH,
        graph_tenant_id="t",
        graph_client_id="c",
        graph_certificate_thumbprint="AB12",
    )
    with_key = graph_config(certificate, pem)
    assert with_key.credential == {"private_key": pem, "thumbprint": "AB12"}
    with pytest.raises(BackendNotAvailable, match="incomplete"):
        MailServer(settings, "")


def test_the_connection_test_for_exchange_runs_real_ews_requests(
    exchange: FakeEwsServer,
) -> None:
    settings = exchange_settings(exchange)
    passed = run_connection_test(settings, PASSWORD, REP)
    assert [s.status for s in passed.steps] == ["passed"] * 4, passed.as_dict()
    assert "Exchange" in passed.steps[2].detail
    unknown = run_connection_test(settings, PASSWORD, "nobody@example.com")
    assert not unknown.passed
    wrong = run_connection_test(settings, "wrong password", REP)
    assert wrong.steps[2].status == "failed" and wrong.steps[3].status == "not_run"
    assert "wrong password" not in str(wrong.as_dict())
    autodiscover = run_connection_test(
        OrgSettings(connection_method=ConnectionMethod.EWS, service_account=ACCOUNT), None, REP
    )
    assert autodiscover.steps[0].status == "warning"


def test_setup_commands_save_the_microsoft_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from crmsync.admin.cli import app

    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", "s3cret value")
    runner = CliRunner()
    saved = runner.invoke(
        app,
        ["setup", "exchange", "--service-account", "CONTOSO\\svc", "--auth", "basic"],
    )
    assert saved.exit_code == 0, saved.output
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        settings = service.org_settings()
        assert settings.connection_method is ConnectionMethod.EWS
        assert settings.exchange_auth is ExchangeAuth.BASIC and settings.server_url == ""
    saved = runner.invoke(
        app, ["setup", "m365", "--tenant", "contoso.example", "--client-id", "abc"]
    )
    assert saved.exit_code == 0, saved.output
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        settings = service.org_settings()
        assert (settings.graph_tenant_id, settings.graph_client_id) == ("contoso.example", "abc")
        assert service.store.get_secret("service_account_password") == "s3cret value"
    assert "s3cret value" not in saved.output


def test_a_cycle_against_microsoft_365_creates_then_writes_nothing(tmp_path: Path) -> None:
    """The service's cycle over the Graph backend, the fake Graph (documented JSON
    payloads) behind an httpx transport and msal's token request going to its fake
    token endpoint."""
    import httpx

    from crmsync.groupware.graph import GraphConnection
    from crmsync.transport.throttling import TenantLimiter
    from tests.groupware.graph.fake_graph import GRAPH, LOGIN, FakeGraph, MsalHttpAdapter

    fake = FakeGraph(users=(REP,))
    settings = OrgSettings(
        connection_method=ConnectionMethod.GRAPH,
        graph_tenant_id=fake.tenant,
        graph_client_id=fake.client_id,
    )
    config = dataclasses.replace(
        graph_config(settings, fake.client_secret), authority_url=LOGIN, graph_url=GRAPH
    )
    client = httpx.Client(transport=fake.transport())
    connection = GraphConnection(
        config, client, msal_http_client=MsalHttpAdapter(client), limiter=TenantLimiter("t")
    )
    # Far from any today: the configuration's event window (from TODAY) and the calendar's
    # (calendarView, a year back) both count from the service's clock, fixed the day before
    # the event; a window counted from the wall clock would leave the event out.
    start = dt.datetime(2001, 3, 5, 9, tzinfo=dt.UTC)

    def clock() -> dt.datetime:
        return start - dt.timedelta(days=1)

    with SyncService(Deployment.from_env(tmp_path), clock=clock) as service:
        service.configure_server(settings, fake.client_secret)
        server = MailServer(settings, fake.client_secret, connection=connection, clock=clock)
        service.use_mail_server(server)
        rep = service.crm.create_user(REP, "Rita Rep")
        service.save_config(SyncConfig("Sales", user_ids=(rep.id,)))
        service.crm.create_contact(rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
        service.crm.create_event(
            rep.id, Event("Pipeline review", EventTiming(start, start + dt.timedelta(hours=1)))
        )
        first = service.sync_rep(rep)
        assert first.error is None, first.error
        assert first.writes == 2
        assert service.sync_rep(rep).writes == 0
        # The rep renames the meeting in Outlook: the calendar's listing has it, so the
        # next cycle brings the new subject to the CRM.
        (event_id,) = fake.users[REP]["events"].items
        fake.foreign_patch(REP, event_id, {"subject": "Pipeline review (moved room)"})
        assert service.sync_rep(rep).writes == 1
        (event,) = service.crm.list_events(owner_id=rep.id)
        assert event.record.subject == "Pipeline review (moved room)"
        assert service.store.rep_status(rep.id).records_in_sync == {
            ItemKind.CONTACT: 1,
            ItemKind.EVENT: 1,
        }


def test_the_setup_check_runs_only_the_steps_that_need_no_rep(
    exchange: FakeEwsServer,
) -> None:
    """On saving the setup there is no rep yet: Exchange's check is the address alone (its
    sign-in needs a mailbox), and nothing is passed vacuously."""
    result = run_connection_test(
        exchange_settings(exchange), PASSWORD, "", service_account_only=True
    )
    assert [s.name for s in result.steps] == ["Server address"]
    assert result.passed
