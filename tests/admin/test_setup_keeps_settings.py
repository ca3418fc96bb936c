"""`crmsync setup dav|exchange|m365|google` replace the connection and keep the org's
policy: the mass-delete guard, audit retention, the overdue threshold and the event
category an admin chose elsewhere survive a connection command, while the fields of a
connection method no longer in use are cleared. Run again for the same method, a command
keeps the options left out and, without the password variable, the stored password of the
same account; switching methods starts those options from their defaults."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.admin.cli import app
from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.service.deployment import Deployment
from crmsync.service.mailboxes import SERVICE_PASSWORD
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


# Each command with its required options and nothing else; "{key}" stands for a key file.
DAV = ["dav", "https://dav.example.com", "--service-account", "svc"]
EXCHANGE = ["exchange", "--service-account", "svc@example.com"]
M365 = ["m365", "--tenant", "contoso.onmicrosoft.com", "--client-id", "1111"]
GOOGLE = ["google", "--key-file", "{key}", "--domain", "example.com"]
NOTIFY = "--notify-attendees-on-crm-edits"


def stored_password() -> str | None:
    with SyncService(Deployment.from_env()) as service:
        return service.store.get_secret(SERVICE_PASSWORD)


def test_setup_dav_again_keeps_the_options_left_out(runner: CliRunner) -> None:
    run(
        runner,
        *DAV,
        "--principal-path",
        "/principals/{local}/",
        "--contacts-folder",
        "Sales",
        "--additional-domains",
        "example.net",
    )

    run(runner, "dav", "https://new.example.com", "--service-account", "svc")

    saved = stored_settings()
    assert saved.server_url == "https://new.example.com"
    assert saved.contacts_folder == "Sales"
    assert saved.principal_path == "/principals/{local}/"
    assert saved.additional_domains == ("example.net",)


EWS_URL = "https://mail.example.com/EWS/Exchange.asmx"


@pytest.mark.parametrize(
    ("command", "options", "kept"),
    [
        (
            EXCHANGE,
            ["--auth", "basic", "--ews-url", EWS_URL],
            {"exchange_auth": "basic", "server_url": EWS_URL},
        ),
        (
            M365,
            ["--certificate-thumbprint", "AB12", NOTIFY],
            {"graph_certificate_thumbprint": "AB12", "notify_attendees_on_crm_edits": True},
        ),
        (
            GOOGLE,
            ["--event-color", "11", NOTIFY],
            {"google_event_color": "11", "notify_attendees_on_crm_edits": True},
        ),
    ],
    ids=["exchange", "m365", "google"],
)
def test_every_connection_command_keeps_its_options_left_out(
    runner: CliRunner,
    tmp_path: Path,
    command: list[str],
    options: list[str],
    kept: dict[str, object],
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(service_account_key())
    command = [part.replace("{key}", str(key_file)) for part in command]
    run(runner, *command, *options, "--contacts-folder", "Sales")

    run(runner, *command)

    saved = stored_settings()
    assert {name: getattr(saved, name) for name in kept} == kept
    assert saved.contacts_folder == "Sales"


def test_the_no_form_of_a_switch_turns_the_stored_value_off(runner: CliRunner) -> None:
    run(runner, *M365, NOTIFY)

    run(runner, *M365, "--no-notify-attendees-on-crm-edits")

    assert stored_settings().notify_attendees_on_crm_edits is False


def test_switching_methods_starts_the_options_left_out_from_their_defaults(
    runner: CliRunner,
) -> None:
    run(runner, *M365, "--contacts-folder", "Sales", NOTIFY)
    run(runner, *DAV)
    assert stored_settings().contacts_folder == "CRM_Sync"
    # The DAV command has no option for it: org policy, kept.
    assert stored_settings().notify_attendees_on_crm_edits is True

    run(runner, *DAV, "--contacts-folder", "Sales")
    run(runner, *EXCHANGE)
    assert stored_settings().contacts_folder == "CRM_Sync"

    run(runner, *M365)
    assert stored_settings().notify_attendees_on_crm_edits is False


def test_setup_dav_again_without_the_variable_keeps_the_stored_password(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(runner, *DAV)
    monkeypatch.delenv("CRMSYNC_SERVICE_PASSWORD")

    again = runner.invoke(
        app, ["setup", "dav", "https://new.example.com", "--service-account", "svc"]
    )

    assert again.exit_code == 0, again.output
    assert stored_settings().server_url == "https://new.example.com"
    assert stored_password() == "service password"
    assert "service password" not in again.output


@pytest.mark.parametrize(
    ("command", "change"),
    [(EXCHANGE, ["--ews-url", EWS_URL]), (M365, ["--contacts-folder", "Sales"])],
    ids=["exchange", "m365"],
)
def test_exchange_and_m365_again_keep_the_stored_secret(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str], change: list[str]
) -> None:
    run(runner, *command)
    monkeypatch.delenv("CRMSYNC_SERVICE_PASSWORD")

    run(runner, *command, *change)

    assert stored_password() == "service password"


def test_a_first_setup_without_the_variable_fails_naming_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRMSYNC_SERVICE_PASSWORD")

    refused = runner.invoke(app, ["setup", *DAV])

    assert refused.exit_code == 1
    assert "set CRMSYNC_SERVICE_PASSWORD" in refused.output
    assert stored_settings().server_url == ""
    assert stored_password() is None


@pytest.mark.parametrize(
    ("before", "again"),
    [
        ([], ["dav", "https://dav.example.com", "--service-account", "another"]),
        ([], ["exchange", "--service-account", "svc"]),
        ([*DAV, "--per-rep"], DAV),
    ],
    ids=["another-account", "another-method", "from-per-rep"],
)
def test_the_stored_password_is_kept_only_for_the_same_method_and_account(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, before: list[str], again: list[str]
) -> None:
    run(runner, *DAV)
    if before:
        run(runner, *before)
    monkeypatch.delenv("CRMSYNC_SERVICE_PASSWORD")

    refused = runner.invoke(app, ["setup", *again])

    assert refused.exit_code == 1
    assert "set CRMSYNC_SERVICE_PASSWORD" in refused.output
    assert stored_password() == "service password"
