"""`crmsync config export` / `config apply`: configuration as code, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli
from crmsync.admin.cli import app
from crmsync.domain.settings import Direction
from crmsync.service.deployment import Deployment
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.service.runner import SyncService

PEOPLE = (
    '{"kind": "profile", "name": "Sales Rep"}\n'
    '{"kind": "user", "email": "ann@example.com", "name": "Ann", "profile": "Sales Rep"}\n'
    '{"kind": "user", "email": "bob@example.com", "name": "Bob"}\n'
)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setattr(cli, "console", Console(width=200))
    runner = CliRunner()
    people = tmp_path / "people.jsonl"
    people.write_text(PEOPLE)
    assert runner.invoke(app, ["crm", "import", str(people)]).exit_code == 0
    added = runner.invoke(
        app,
        [
            "config",
            "add",
            "Sales",
            "--profile",
            "Sales Rep",
            "--filter",
            "mailing_address.country equals DE",
            "--map",
            "description=",
            "--window",
            "last_n_days",
            "--window-days",
            "60",
        ],
    )
    assert added.exit_code == 0, added.output
    execs = runner.invoke(app, ["config", "add", "Execs", "--user", "bob@example.com"])
    assert execs.exit_code == 0, execs.output
    return runner


def export(runner: CliRunner) -> str:
    result = runner.invoke(app, ["config", "export"])
    assert result.exit_code == 0, result.output
    return result.output


def saved_configs(tmp_path: Path) -> dict[str, object]:
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        return {config.name: config for config in service.store.configs()}


def test_export_then_apply_changes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    text = export(runner)
    assert "mailing_address.country" in text and "ann@example.com" not in text
    assert "Sales Rep" in text and "bob@example.com" in text
    file = tmp_path / "crmsync.yaml"
    file.write_text(text)
    result = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert result.exit_code == 0, result.output
    assert "Nothing to change." in result.output


def test_apply_shows_the_diff_then_saves_it(runner: CliRunner, tmp_path: Path) -> None:
    before = saved_configs(tmp_path)
    data = yaml.safe_load(export(runner))
    data["configurations"][0]["contacts"]["direction"] = "crm_to_mail"  # Execs
    data["configurations"] = [data["configurations"][0]]  # Sales goes away
    data["configurations"].append({"name": "Sales 2", "profiles": ["Sales Rep"]})
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))

    dry = runner.invoke(app, ["config", "apply", str(file), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "\n+    direction: crm_to_mail\n" in dry.output
    assert "-- name: Sales\n" in dry.output and "+- name: Sales 2\n" in dry.output
    assert "Nothing was changed." in dry.output
    assert saved_configs(tmp_path) == before

    applied = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert applied.exit_code == 0, applied.output
    after = saved_configs(tmp_path)
    assert sorted(after) == ["Execs", "Sales 2"]
    assert after["Execs"].contacts.direction is Direction.CRM_TO_MAIL
    # The profile moved from Sales to Sales 2 in one transaction.
    assert after["Sales 2"].profile_ids == before["Sales"].profile_ids
    again = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert "Nothing to change." in again.output


def test_apply_reports_every_problem_and_changes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    before = saved_configs(tmp_path)
    data = yaml.safe_load(export(runner))
    execs, sales = data["configurations"]
    execs["contacts"]["direcion"] = "both"
    execs["users"].append("nobody@example.com")
    sales["events"]["window_days"] = 500
    sales["contacts"]["filters"][0]["operator"] = "resembles"
    data["configurations"].append({"name": "Dup", "users": ["bob@example.com"]})
    data["configurations"].append({"name": "Dup 2", "users": ["bob@example.com"]})
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(data))

    result = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "unknown setting 'direcion' (did you mean 'direction'?)" in output
    assert "no CRM user has the email nobody@example.com" in output
    assert "LAST N DAYS takes 1 to 180 days, not 500" in output
    assert "'resembles' is not a valid FilterOperator" in output
    assert "assigned to both 'Dup' and 'Dup 2'" in output
    assert saved_configs(tmp_path) == before


def test_the_password_is_never_exported_and_comes_from_an_environment_variable(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(export(runner))
    assert "password" not in yaml.safe_dump(data["org"])
    data["org"]["server_url"] = "https://dav.example.com/"
    data["org"]["service_account"] = "crmsync"
    data["org"]["service_password_env"] = "DAV_PASSWORD"
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(data))

    missing = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert missing.exit_code == 1
    assert "DAV_PASSWORD, but that environment variable is not set" in missing.output

    monkeypatch.setenv("DAV_PASSWORD", "s3cret-Value")
    applied = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert applied.exit_code == 0, applied.output
    assert "s3cret-Value" not in applied.output
    assert "(the service account password is replaced)" in applied.output
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        assert service.store.get_secret(SERVICE_PASSWORD) == "s3cret-Value"
        assert service.org_settings().server_url == "https://dav.example.com/"
    assert "s3cret-Value" not in export(runner)


def test_a_stored_password_is_kept_only_for_its_method_and_account(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(export(runner))
    data["org"].update(
        server_url="https://dav.example.com/",
        service_account="crmsync",
        service_password_env="DAV_PASSWORD",
    )
    file = tmp_path / "crmsync.yaml"
    monkeypatch.setenv("DAV_PASSWORD", "dav password")

    def apply(org: dict[str, object]) -> str:
        file.write_text(yaml.safe_dump({**data, "org": org}))
        return runner.invoke(app, ["config", "apply", str(file), "--yes"]).output

    apply(data["org"])
    kept = {k: v for k, v in data["org"].items() if k != "service_password_env"}
    moved = apply({**kept, "server_url": "https://dav2.example.com/"})
    assert "org.password" not in moved
    for other in (
        {**kept, "service_account": "someone-else"},
        {**kept, "connection_method": "ews", "server_url": ""},
    ):
        refused = apply(other)
        assert "org.password: no password (or app secret) is stored for this" in refused
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        assert service.org_settings().server_url == "https://dav2.example.com/"
        assert service.store.get_secret(SERVICE_PASSWORD) == "dav password"


def test_the_overdue_threshold_is_exported_and_applied_within_its_bounds(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(export(runner))
    assert data["org"]["overdue_after_minutes"] == 5
    data["org"].update(
        server_url="https://dav.example.com/",
        service_account="crmsync",
        service_password_env="DAV_PASSWORD",
        overdue_after_minutes=0,
    )
    monkeypatch.setenv("DAV_PASSWORD", "s3cret-Value")
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(data))
    refused = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert refused.exit_code == 1
    assert "org.overdue_after_minutes: must be 1 to 1440, not 0" in refused.output

    data["org"]["overdue_after_minutes"] = 35
    file.write_text(yaml.safe_dump(data))
    applied = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert applied.exit_code == 0, applied.output
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        assert service.org_settings().overdue_after_minutes == 35
    assert yaml.safe_load(export(runner))["org"]["overdue_after_minutes"] == 35


def test_description_series_list_warnings_and_delete(runner: CliRunner, tmp_path: Path) -> None:
    added = runner.invoke(
        app,
        ["config", "add", "Quiet", "--description", "no series", "--no-sync-series"],
    )
    assert added.exit_code == 0, added.output
    assert "syncs nobody" in added.output
    quiet = saved_configs(tmp_path)["Quiet"]
    assert (quiet.description, quiet.events.sync_series) == ("no series", False)
    listed = runner.invoke(app, ["config", "list"])
    assert "Quiet" in listed.output and "syncs nobody" in listed.output
    assert runner.invoke(app, ["config", "delete", "Quiet"]).exit_code == 0
    assert "Quiet" not in saved_configs(tmp_path)
    missing = runner.invoke(app, ["config", "delete", "Quiet"])
    assert missing.exit_code == 1 and "no configuration named 'Quiet'" in str(missing.exception)
