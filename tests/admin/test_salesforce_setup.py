"""`crmsync setup salesforce`, `setup builtin-crm` and the `crm` section of `config export`
/ `config apply`, through the CLI against the fake Salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli, setup_cli
from crmsync.admin.cli import app
from crmsync.crm.salesforce import SalesforceCrm
from crmsync.domain.crm_settings import CrmKind, SalesforceFlow
from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.crm.salesforce.fake_server import FakeSalesforce
from tests.service.salesforce_world import INTEGRATION_USER, fake_salesforce

REP = "rita@example.com"


@dataclass
class Setup:
    runner: CliRunner
    fake: FakeSalesforce
    key_file: Path
    home: Path

    def run(self, *args: str, ok: bool = True) -> str:
        result = self.runner.invoke(app, list(args))
        assert (result.exit_code == 0) == ok, (result.exit_code, result.output)
        return result.output

    def service(self) -> SyncService:
        return SyncService(Deployment.from_env(self.home))

    def setup_salesforce(self, *extra: str, ok: bool = True) -> str:
        return self.run(
            "setup",
            "salesforce",
            self.fake.url,
            "--client-id",
            self.fake.client_id,
            "--username",
            INTEGRATION_USER,
            "--key-file",
            str(self.key_file),
            *extra,
            ok=ok,
        )


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    for module in (cli, setup_cli):
        monkeypatch.setattr(module, "console", Console(width=200))
    fake, pem, _ = fake_salesforce(REP)
    key_file = tmp_path / "crmsync.key"
    key_file.write_text(pem)
    yield Setup(CliRunner(), fake, key_file, tmp_path / "home")
    fake.stop()


def test_setup_salesforce_stores_the_key_encrypted_and_never_prints_it(setup: Setup) -> None:
    output = setup.setup_salesforce()
    assert "Saved the Salesforce org" in output and "PRIVATE KEY" not in output
    with setup.service() as service:
        saved = service.crm_settings()
        assert saved.kind is CrmKind.SALESFORCE and saved.my_domain_url == setup.fake.url
        assert saved.flow is SalesforceFlow.JWT_BEARER and saved.username == INTEGRATION_USER
        assert service.store.get_secret(SALESFORCE_SECRET) == setup.key_file.read_text()
        assert isinstance(service.crm, SalesforceCrm)
        assert service.rep_by_email(REP).name == "Rita Rep"
    exported = setup.run("config", "export")
    assert "PRIVATE KEY" not in exported
    assert yaml.safe_load(exported)["crm"]["my_domain_url"] == setup.fake.url
    # Without --key-file the stored key stays.
    setup.run("setup", "salesforce", setup.fake.url, "--client-id", "other", "--username", "x@y.z")
    with setup.service() as service:
        assert service.store.get_secret(SALESFORCE_SECRET) == setup.key_file.read_text()
    setup.run("setup", "builtin-crm")
    with setup.service() as service:
        assert service.crm_settings().kind is CrmKind.BUILTIN
        assert service.store.get_secret(SALESFORCE_SECRET) is None


def test_setup_salesforce_refuses_what_the_api_refuses(setup: Setup, tmp_path: Path) -> None:
    refused = setup.run(
        "setup", "salesforce", "http://acme.my.salesforce.com", "--client-id", "", ok=False
    )
    assert "my_domain_url: must start with https://" in refused
    assert "client_id: " in refused and "username: " in refused
    assert "secret: " in refused and "--key-file" in refused
    sandbox = setup.run(
        "setup",
        "salesforce",
        "https://acme--uat.sandbox.my.salesforce.com",
        "--client-id",
        "k",
        "--username",
        "u@example.com",
        "--key-file",
        str(setup.key_file),
        ok=False,
    )
    assert "sandbox: " in sandbox
    not_a_key = tmp_path / "cert.pem"
    not_a_key.write_text("-----BEGIN CERTIFICATE-----\n")
    wrong = setup.run(
        "setup",
        "salesforce",
        "https://acme.my.salesforce.com",
        "--client-id",
        "k",
        "--username",
        "u@example.com",
        "--key-file",
        str(not_a_key),
        ok=False,
    )
    assert "PEM private key" in wrong
    with setup.service() as service:
        assert service.crm_settings().kind is CrmKind.BUILTIN


def test_config_apply_switches_to_salesforce_checking_reps_in_salesforce(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_KEY", setup.key_file.read_text())
    document = {
        "crm": {
            "kind": "salesforce",
            "my_domain_url": setup.fake.url,
            "client_id": setup.fake.client_id,
            "username": INTEGRATION_USER,
            "secret_env": "SF_KEY",
        },
        "configurations": [{"name": "Sales", "users": [REP], "profiles": ["Sales"]}],
    }
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(document))
    dry = setup.run("config", "apply", str(file), "--dry-run")
    assert "+crm:" in dry and "Salesforce key or secret is replaced" in dry
    assert "PRIVATE KEY" not in dry
    setup.run("config", "apply", str(file), "--yes")
    with setup.service() as service:
        assert service.crm_settings().kind is CrmKind.SALESFORCE
        [config] = service.store.configs()
        assert config.user_ids == (service.rep_by_email(REP).id,)
    exported = tmp_path / "exported.yaml"
    setup.run("config", "export", "-o", str(exported))
    assert "Nothing to change." in setup.run("config", "apply", str(exported))

    # A user Salesforce does not have, and a typo in the section: every problem at once.
    document["crm"]["my_domian_url"] = document["crm"].pop("my_domain_url")  # type: ignore[index]
    document["configurations"] = [{"name": "Sales", "users": ["ghost@example.com"]}]
    file.write_text(yaml.safe_dump(document))
    refused = setup.run("config", "apply", str(file), "--yes", ok=False)
    assert "did you mean 'my_domain_url'" in refused
    document["crm"]["my_domain_url"] = document["crm"].pop("my_domian_url")  # type: ignore[index]
    file.write_text(yaml.safe_dump(document))
    refused = setup.run("config", "apply", str(file), "--yes", ok=False)
    assert "no CRM user has the email ghost@example.com" in refused
