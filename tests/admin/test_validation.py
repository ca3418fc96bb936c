"""The rules for what an admin may save, through the CLI and `config apply` (the API and
the console's forms are tested in tests/admin/web)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli
from crmsync.admin.cli import app
from crmsync.admin.crm_validation import crm_settings_problems
from crmsync.admin.validation import configuration_name_problem, org_settings_problems
from crmsync.domain.crm_settings import CrmKind, CrmSettings, SalesforceFlow
from crmsync.domain.settings import ConnectionMethod, OrgSettings, SyncConfig
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.groupware.google.fake_google import service_account_key


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setattr(cli, "console", Console(width=200))
    return CliRunner()


def service(tmp_path: Path) -> SyncService:
    return SyncService(Deployment.from_env(tmp_path / "home"))


@pytest.mark.parametrize(
    "name", ["Sales", "Sales EMEA", "Vertrieb Österreich", "R&D (2027), v1.2 + ops", "7", "O'Neil"]
)
def test_good_configuration_names(name: str) -> None:
    assert configuration_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "a/b",
        "a\\b",
        "x?y",
        "#1",
        "50%",
        "new",
        " lead",
        "trail ",
        "-x",
        "t\tab",
        "é" * 201,
    ],
)
def test_bad_configuration_names(name: str) -> None:
    problem = configuration_name_problem(name)
    assert problem is not None and "letters, digits, spaces" in problem


def test_org_settings_rules_per_connection_method() -> None:
    def fields(settings: OrgSettings, password: bool = True) -> list[str]:
        return [f for f, _ in org_settings_problems(settings, password_known=password)]

    assert fields(OrgSettings()) == ["server_url", "service_account"]
    dav = OrgSettings(server_url="https://dav.example.com/", service_account="svc")
    assert fields(dav) == [] and fields(dav, password=False) == ["password"]
    assert fields(OrgSettings(server_url="javascript:alert(1)", service_account="svc")) == [
        "server_url"
    ]
    assert fields(OrgSettings(ConnectionMethod.EWS, service_account="svc")) == []
    assert fields(OrgSettings(ConnectionMethod.GRAPH)) == ["graph_tenant_id", "graph_client_id"]
    assert fields(OrgSettings(ConnectionMethod.GOOGLE)) == ["additional_domains"]
    google = OrgSettings(ConnectionMethod.GOOGLE, additional_domains=("example.com",))
    assert fields(google) == [] and fields(google, password=False) == ["password"]
    assert fields(dataclasses.replace(google, google_event_color="12")) == ["google_event_color"]
    assert fields(dataclasses.replace(google, server_url="http://google.test")) == ["server_url"]


def test_a_google_key_is_checked_and_never_quoted() -> None:
    google = OrgSettings(ConnectionMethod.GOOGLE, additional_domains=("example.com",))
    key = service_account_key()
    assert org_settings_problems(google, password_known=True, password=key) == []
    oauth_client = json.dumps({**json.loads(key), "type": "authorized_user"})
    ((name, problem),) = org_settings_problems(google, password_known=True, password=oauth_client)
    assert name == "password" and "not a service account key" in problem
    private = json.loads(key)["private_key"].splitlines()[1]
    assert private not in problem
    ((name, problem),) = org_settings_problems(google, password_known=True, password="{not json")
    assert name == "password" and "not JSON" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://svc:hunter22@dav.example.com/",
        "https://svc@dav.example.com/",
        "https://:hunter22@dav.example.com/",
    ],
)
def test_a_server_url_holding_a_sign_in_is_refused_without_quoting_it(url: str) -> None:
    dav = OrgSettings(server_url=url, service_account="svc")
    ((name, problem),) = org_settings_problems(dav, password_known=True)
    assert name == "server_url" and "user name or password" in problem
    assert "hunter22" not in problem
    salesforce = CrmSettings(
        kind=CrmKind.SALESFORCE,
        my_domain_url=url.replace("dav.example.com/", "acme.my.salesforce.com"),
        client_id="3MVG9",
        username="crmsync@acme.com",
        flow=SalesforceFlow.JWT_BEARER,
    )
    problems = dict(crm_settings_problems(salesforce, secret=None, secret_stored=True))
    assert "user name or password" in problems["my_domain_url"]


def test_setup_commands_refuse_what_the_api_refuses(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", "service password")
    refused = runner.invoke(
        app, ["setup", "dav", "javascript:alert(1)", "--service-account", "svc"]
    )
    assert refused.exit_code == 1
    assert "server_url: " in refused.output and "http:// or https://" in refused.output
    path = runner.invoke(
        app,
        [
            "setup",
            "dav",
            "https://dav.example.com",
            "--service-account",
            "svc",
            "--principal-path",
            "/{email.upper}/",
        ],
    )
    assert path.exit_code == 1 and "{email}, {local}, {user}" in path.output
    signed_in = runner.invoke(
        app, ["setup", "dav", "https://svc:hunter22@dav.example.com", "--service-account", "svc"]
    )
    assert signed_in.exit_code == 1 and "user name or password" in signed_in.output
    assert "hunter22" not in signed_in.output
    ok = runner.invoke(app, ["setup", "dav", "https://dav.example.com", "--service-account", "svc"])
    assert ok.exit_code == 0, ok.output


def test_config_add_refuses_a_new_bad_name(runner: CliRunner, tmp_path: Path) -> None:
    refused = runner.invoke(app, ["config", "add", "EMEA/APAC"])
    assert refused.exit_code == 1 and "letters, digits, spaces" in refused.output
    with service(tmp_path) as found:
        assert found.store.configs() == []
        found.store.save_config(SyncConfig("EMEA/APAC"))
    # A configuration saved before the rule can still be replaced under its name.
    kept = runner.invoke(app, ["config", "add", "EMEA/APAC", "--description", "still here"])
    assert kept.exit_code == 0, kept.output


def test_config_apply_checks_new_names_and_changed_org_settings(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service(tmp_path) as found:
        found.store.save_config(SyncConfig("old/name"))
    exported = runner.invoke(app, ["config", "export"])
    data = yaml.safe_load(exported.output)
    file = tmp_path / "crmsync.yaml"

    # Unchanged org settings (here the empty ones of a new deployment) and a stored
    # configuration name from before the rule apply as they are.
    data["configurations"].append({"name": "Fine"})
    file.write_text(yaml.safe_dump(data))
    applied = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert applied.exit_code == 0, applied.output

    data["configurations"].append({"name": "new/name"})
    data["org"]["server_url"] = "javascript:alert(1)"
    file.write_text(yaml.safe_dump(data))
    refused = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert refused.exit_code == 1
    output = " ".join(refused.output.split())
    assert "org.server_url: " in output and "http:// or https://" in output
    assert "org.service_account: " in output and "org.password: " in output
    assert "configurations[2]: " in output and "letters, digits, spaces" in output
    with service(tmp_path) as found:
        assert found.org_settings().server_url == ""
        assert sorted(c.name for c in found.store.configs()) == ["Fine", "old/name"]
