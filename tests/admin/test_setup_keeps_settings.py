"""`crmsync setup dav|exchange|m365|google` replace the connection and keep the org's
policy: the mass-delete guard, audit retention, the overdue threshold and the event
category an admin chose elsewhere survive a connection command, while the fields of a
connection method no longer in use are cleared."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.admin.cli import app
from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.groupware.google.fake_google import service_account_key

# Every policy value differs from its default, so a reset cannot go unnoticed.
TIGHTENED_POLICY = {
    "mass_delete_percent": 3,
    "mass_delete_count": 7,
    "mass_delete_minimum": 1,
    "audit_retention_days": 400,
    "overdue_after_minutes": 45,
    "event_category": "Salesforce",
}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", "service password")
    return CliRunner()


def stored_settings() -> OrgSettings:
    with SyncService(Deployment.from_env()) as service:
        return service.org_settings()


def tighten_policy(**more: object) -> None:
    """Save non-default policy values over the stored connection, as the Setup page or
    `config apply` would."""
    with SyncService(Deployment.from_env()) as service:
        tightened = replace(service.org_settings(), **TIGHTENED_POLICY, **more)
        service.store.save_org_settings(tightened)


def policy_of(settings: OrgSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in TIGHTENED_POLICY}


def run(runner: CliRunner, *args: str) -> None:
    result = runner.invoke(app, ["setup", *args])
    assert result.exit_code == 0, result.output


def test_setup_dav_again_changes_the_url_and_keeps_the_policy(runner: CliRunner) -> None:
    run(runner, "dav", "https://old.example.com", "--service-account", "svc")
    # The DAV mailbox reads this too (servers that schedule): policy, not connection.
    tighten_policy(notify_attendees_on_crm_edits=True)

    run(runner, "dav", "https://new.example.com/dav/", "--service-account", "svc2")

    saved = stored_settings()
    assert saved.server_url == "https://new.example.com/dav"
    assert saved.service_account == "svc2"
    assert policy_of(saved) == TIGHTENED_POLICY
    assert saved.notify_attendees_on_crm_edits is True


@pytest.mark.parametrize(
    "command",
    [
        ["exchange", "--service-account", "svc@example.com"],
        ["m365", "--tenant", "contoso.onmicrosoft.com", "--client-id", "1111"],
        ["google", "--key-file", "{key}", "--domain", "example.com"],
    ],
    ids=["exchange", "m365", "google"],
)
def test_every_connection_command_keeps_the_policy(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(service_account_key())
    run(runner, "dav", "https://dav.example.com", "--service-account", "svc")
    tighten_policy()

    run(runner, *(part.replace("{key}", str(key_file)) for part in command))

    saved = stored_settings()
    assert saved.connection_method is not ConnectionMethod.DAV
    assert policy_of(saved) == TIGHTENED_POLICY


def test_switching_methods_clears_the_other_methods_fields(runner: CliRunner) -> None:
    run(
        runner,
        "m365",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "1111",
        "--certificate-thumbprint",
        "AB12",
    )
    run(runner, "dav", "https://dav.example.com", "--service-account", "svc", "--per-rep")

    saved = stored_settings()
    assert saved.connection_method is ConnectionMethod.DAV
    assert (saved.graph_tenant_id, saved.graph_client_id) == ("", "")
    assert saved.graph_certificate_thumbprint == ""

    run(runner, "exchange", "--service-account", "svc@example.com", "--auth", "basic")
    saved = stored_settings()
    # DAV's server URL and sign-in do not stay behind an Exchange (Autodiscover) setup.
    assert saved.server_url == ""
    assert saved.dav_sign_in == OrgSettings().dav_sign_in
    assert saved.principal_path == OrgSettings().principal_path


def test_a_refused_setup_saves_nothing_and_names_the_problem(runner: CliRunner) -> None:
    run(runner, "dav", "https://dav.example.com", "--service-account", "svc")
    tighten_policy()

    refused = runner.invoke(app, ["setup", "m365", "--tenant", " ", "--client-id", "1111"])

    assert refused.exit_code == 1
    assert "graph_tenant_id: " in refused.output
    saved = stored_settings()
    assert saved.server_url == "https://dav.example.com"
    assert policy_of(saved) == TIGHTENED_POLICY
