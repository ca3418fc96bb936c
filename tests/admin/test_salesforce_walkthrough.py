"""The admin guide's section 5a from a fresh install to "In sync", with the fake Salesforce
and Radicale: the same commands an admin types, through the CLI. The org starts without
crmsync's marker fields: `--create-fields` makes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli, setup_cli
from crmsync.admin.cli import app
from tests.crm.salesforce.fake_org import FakeOrg
from tests.servers import running_dav_server
from tests.service.salesforce_world import INTEGRATION_USER, fake_salesforce


def test_from_a_fresh_install_to_in_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    for module in (cli, setup_cli):
        monkeypatch.setattr(module, "console", Console(width=250))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    with running_dav_server("radicale", tmp_path) as dav:
        fake, pem, rep_id = fake_salesforce(dav.email, org=FakeOrg(marker_fields=False))
        try:
            fake.org.create("Contact", {"LastName": "Lovelace", "OwnerId": rep_id})
            key = tmp_path / "crmsync.key"
            key.write_text(pem)
            monkeypatch.setenv("CRMSYNC_SERVICE_PASSWORD", dav.password)
            run("setup", "dav", dav.url, "--service-account", dav.username)
            setup = (
                "setup", "salesforce", fake.url, "--client-id", fake.client_id,
                "--username", INTEGRATION_USER, "--key-file", str(key), "--create-fields",
            )  # fmt: skip
            created = run(*setup)
            assert "Contact.CrmSync_Key__c: created: Text(255), External ID, Unique" in created
            assert "Event.CrmSync_Key__c: created: Text(255)" in created
            assert f"assigned: to {INTEGRATION_USER}" in created
            again = run(*setup)  # the same command again finds everything in place
            assert "created" not in again and "already assigned" in again
            tested = run("connection-test", "--rep", dav.email)
            assert "Rep is a Salesforce user" in tested and "failed" not in tested
            run("config", "add", "Sales", "--profile", "Sales")
            run("sync", "--rep", dav.email)
            run("sync", "--rep", dav.email)
            listed = run("org", "list")
            assert f"Salesforce {fake.url}" in listed and "crm.sqlite" not in listed
            status = run("status", "--rep", dav.email)
            assert status.count("In sync    │") == 4, status  # both kinds, both ways
        finally:
            fake.stop()
