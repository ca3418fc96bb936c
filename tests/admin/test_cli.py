"""The `crmsync` command end to end: demo, setup, configurations, sync, status, reset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli
from crmsync.admin.cli import app
from crmsync.groupware.dav.local_server import LocalRadicale, free_port
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore
from tests.servers import REP_EMAIL, SERVICE_ACCOUNT, SERVICE_PASSWORD, start_radicale


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    # Wide enough that Rich wraps no table cell the assertions look for.
    monkeypatch.setattr(cli, "console", Console(width=200))
    return CliRunner()


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[LocalRadicale]:
    """A Radicale with the test service account and rep, stopped after the test."""
    server = start_radicale(tmp_path)
    yield server
    server.stop()


def connect_and_seed(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, url: str, folder: Path, jsonl: str
) -> None:
    """`setup dav` against ``url`` as the test service account, then `crm import` ``jsonl``."""
    monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", SERVICE_PASSWORD)
    setup = runner.invoke(app, ["setup", "dav", url, "--service-account", SERVICE_ACCOUNT])
    assert setup.exit_code == 0, setup.output
    people = folder / "people.jsonl"
    people.write_text(jsonl)
    imported = runner.invoke(app, ["crm", "import", str(people)])
    assert imported.exit_code == 0, imported.output


def test_demo_syncs_the_sample_org_and_keeps_syncing(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--cycles", "1", "--interval", "0", "--port", str(free_port())]
    )
    assert result.exit_code == 0, result.output
    assert "ann@example.com: contacts → mail 4, → CRM 0, errors 0; events → mail 5" in result.output
    assert "Initial sync completed" in result.output
    assert "password:" in result.output

    status = runner.invoke(app, ["--home", str(tmp_path / "home" / "demo"), "status"])
    assert status.exit_code == 0, status.output
    # The column header, then 3 reps x 2 kinds x 2 directions.
    assert status.output.count("In sync") == 1 + 12
    assert "Initial sync completed" not in status.output


def test_an_admin_sets_up_configures_syncs_and_resets(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    connect_and_seed(
        runner,
        monkeypatch,
        radicale.url,
        tmp_path,
        f'{{"kind": "user", "email": "{REP_EMAIL}", "name": "Rita"}}\n'
        f'{{"kind": "contact", "owner": "{REP_EMAIL}", "first_name": "Ada", '
        '"email": "ada@example.org"}\n',
    )

    unconfigured = runner.invoke(app, ["sync"])
    assert "configuration not set to sync" in unconfigured.output

    added = runner.invoke(app, ["config", "add", "Sales", "--user", REP_EMAIL])
    assert added.exit_code == 0, added.output
    first = runner.invoke(app, ["sync", "--rep", REP_EMAIL])
    assert first.exit_code == 0, first.output
    assert "contacts → mail 1" in first.output
    again = runner.invoke(app, ["sync"])
    assert "contacts → mail 0, → CRM 0" in again.output

    marked = runner.invoke(app, ["reset", "--rep", REP_EMAIL])
    assert "Marked for reset" in marked.output
    assert "Marked for reset" in runner.invoke(app, ["status"]).output
    after_reset = runner.invoke(app, ["sync"])
    # Reset re-pairs by marker and content: nothing is written again.
    assert "contacts → mail 0, → CRM 0" in after_reset.output
    status = runner.invoke(app, ["status", "--rep", REP_EMAIL])
    assert "Marked for reset" not in status.output
    assert "No sync errors." in runner.invoke(app, ["errors"]).output


def test_a_wrong_password_is_reported_not_raised(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", "not-the-password")
    runner.invoke(app, ["setup", "dav", radicale.url, "--service-account", SERVICE_ACCOUNT])
    runner.invoke(app, ["crm", "add", "user", f"email={REP_EMAIL}"])
    runner.invoke(app, ["config", "add", "Sales", "--user", REP_EMAIL])
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    errors = runner.invoke(app, ["errors"]).output
    assert "authentication" in errors.lower() or "refused" in errors.lower()
    assert "not-the-password" not in result.output + errors


def test_a_mass_deletion_waits_for_the_admin_to_confirm_it(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    lines = [f'{{"kind": "user", "email": "{REP_EMAIL}"}}']
    lines += [
        f'{{"kind": "contact", "id": "c{n}", "owner": "{REP_EMAIL}", "first_name": "P{n}"}}'
        for n in range(10)
    ]
    connect_and_seed(runner, monkeypatch, radicale.url, tmp_path, "\n".join(lines) + "\n")
    runner.invoke(
        app, ["config", "add", "Sales", "--user", REP_EMAIL, "--propagate-contact-deletions"]
    )
    assert "contacts → mail 10" in runner.invoke(app, ["sync"]).output
    for n in range(7):
        assert runner.invoke(app, ["crm", "delete", "contact", f"c{n}"]).exit_code == 0

    held = runner.invoke(app, ["sync"])
    assert held.exit_code == 1
    assert "7 contact deletions held back" in held.output
    assert "mass_delete" in runner.invoke(app, ["errors"]).output

    assert runner.invoke(app, ["confirm-deletes", "--rep", REP_EMAIL]).exit_code == 0
    done = runner.invoke(app, ["sync"])
    assert done.exit_code == 0, done.output
    status = runner.invoke(app, ["status"]).output
    assert "│ 3 " in status  # contacts in sync after the confirmed deletions


def test_preview_lists_the_next_cycle_and_writes_nothing(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    connect_and_seed(
        runner,
        monkeypatch,
        radicale.url,
        tmp_path,
        f'{{"kind": "user", "email": "{REP_EMAIL}"}}\n'
        f'{{"kind": "contact", "id": "c1", "owner": "{REP_EMAIL}", "first_name": "Ada"}}\n',
    )
    runner.invoke(app, ["config", "add", "Pilot", "--user", REP_EMAIL, "--inactive"])
    storage = tmp_path / "radicale" / "collections" / "collection-root" / REP_EMAIL

    first = runner.invoke(app, ["preview", "--config", "Pilot"])
    assert first.exit_code == 0, first.output
    assert "first cycle creates it" in first.output
    assert list(storage.iterdir()) == []  # no calendar or address book was created

    runner.invoke(app, ["config", "add", "Pilot", "--user", REP_EMAIL])
    assert "contacts → mail 1" in runner.invoke(app, ["sync"]).output
    assert "nothing to do" in runner.invoke(app, ["preview"]).output

    runner.invoke(app, ["crm", "edit", "contact", "c1", "title=CFO"])
    planned = runner.invoke(app, ["preview", "--rep", REP_EMAIL])
    assert "update" in planned.output and "changed in crm" in planned.output
    assert "Ada" in planned.output
    # The preview wrote nothing: the next cycle still has the update to make.
    assert "contacts → mail 1" in runner.invoke(app, ["sync"]).output


def test_why_prints_an_items_history_from_either_sides_id(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    connect_and_seed(
        runner,
        monkeypatch,
        radicale.url,
        tmp_path,
        f'{{"kind": "user", "email": "{REP_EMAIL}"}}\n'
        f'{{"kind": "event", "id": "e1", "owner": "{REP_EMAIL}", "subject": "Demo", '
        '"start": "2030-03-04T09:00:00+00:00", "end": "2030-03-04T10:00:00+00:00"}\n'
        f'{{"kind": "event", "id": "e2", "owner": "{REP_EMAIL}", "subject": "Dentist", '
        '"is_private": true, '
        '"start": "2030-03-05T09:00:00+00:00", "end": "2030-03-05T10:00:00+00:00"}\n',
    )
    runner.invoke(
        app, ["config", "add", "Sales", "--user", REP_EMAIL, "--events-conflict", "mail_wins"]
    )
    runner.invoke(app, ["sync"])
    runner.invoke(app, ["crm", "edit", "event", "e1", "location=Room 2"])
    runner.invoke(app, ["sync"])

    history = runner.invoke(app, ["why", "e1"]).output
    assert "create" in history and "new in crm" in history
    assert "update" in history and "changed in crm" in history
    deployment = Deployment.from_env()
    with StateStore(deployment.state_url, deployment.secrets_key_path) as store:
        mail_id = next(e.mail_id for e in store.item_history("e1") if e.mail_id)
    by_mail_id = runner.invoke(app, ["why", mail_id]).output
    assert by_mail_id.splitlines()[1:] == history.splitlines()[1:]  # all but the title
    private = runner.invoke(app, ["why", "e2"]).output
    assert "private, not synced" in private
    assert "No history" in runner.invoke(app, ["why", "nothing-here"]).output


def test_a_mailbox_is_in_one_active_configuration_across_orgs(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The spec's sandbox / production warning, enforced on save and again at sync time."""
    rep = f'{{"kind": "user", "email": "{REP_EMAIL}", "name": "Rita"}}\n'
    people = tmp_path / "people.jsonl"
    people.write_text(rep)
    assert runner.invoke(app, ["org", "add", "sandbox"]).exit_code == 0
    for org in ("default", "sandbox"):
        imported = runner.invoke(app, ["--org", org, "crm", "import", str(people)])
        assert imported.exit_code == 0, imported.output
    added = runner.invoke(app, ["config", "add", "Production", "--user", REP_EMAIL])
    assert added.exit_code == 0, added.output

    refused = runner.invoke(app, ["--org", "sandbox", "config", "add", "Test", "--user", REP_EMAIL])
    assert refused.exit_code != 0
    message = str(refused.exception)
    assert "'Production'" in message and "'default'" in message and REP_EMAIL in message
    inactive = ["--org", "sandbox", "config", "add", "Test", "--user", REP_EMAIL, "--inactive"]
    assert runner.invoke(app, inactive).exit_code == 0

    # Activated behind the check's back (say, by restoring a database): the sandbox's
    # cycle refuses the rep and the error report says why.
    sandbox = Deployment.from_env(tmp_path / "home", "sandbox")
    with StateStore(sandbox.state_url, sandbox.secrets_key_path) as store:
        store.save_config(replace(store.config("Test"), active=True))
    synced = runner.invoke(app, ["--org", "sandbox", "sync"])
    assert synced.exit_code == 1
    with StateStore(sandbox.state_url, sandbox.secrets_key_path) as store:
        (row,) = store.errors()
    assert "also in the active configuration 'Production' of org 'default'" in row.message
    assert row.suggestion.startswith("Remove the rep from one of the two configurations")
    listed = runner.invoke(app, ["org", "list"])
    assert "default" in listed.output and "sandbox" in listed.output


def test_connection_test_command_reports_each_step(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    radicale: LocalRadicale,
) -> None:
    connect_and_seed(
        runner,
        monkeypatch,
        radicale.url,
        tmp_path,
        f'{{"kind": "user", "email": "{REP_EMAIL}", "name": "Rita"}}\n',
    )
    passed = runner.invoke(app, ["connection-test", "--rep", REP_EMAIL])
    assert passed.exit_code == 0, passed.output
    assert "Service account recognized" in passed.output and "failed" not in passed.output
    outside = runner.invoke(app, ["connection-test", "--rep", "someone@elsewhere.example"])
    assert outside.exit_code == 1 and "failed" in outside.output
