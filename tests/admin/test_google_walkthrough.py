"""The admin guide's section 5.3 from a fresh install to "In sync", against the fake
Google on 127.0.0.1: the commands the guide prints, through the CLI (the hidden
``--api-url`` points `setup google` at the fake instead of Google)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli, setup_cli
from crmsync.admin.cli import app
from tests.groupware.google.fake_google import service_account_key
from tests.groupware.google.fake_server import FakeGoogleServer

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "admin-guide.md"
REP = "rep@example.com"
SETUP = "crmsync setup google --key-file crmsync-sa.json --domain example.com --event-color 11"


def test_from_a_fresh_install_to_in_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = GUIDE.read_text()
    assert SETUP in guide and "https://www.googleapis.com/auth/calendar.events," in guide
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.chdir(tmp_path)
    for module in (cli, setup_cli):
        monkeypatch.setattr(module, "console", Console(width=250))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    server = FakeGoogleServer()
    try:
        key = service_account_key()
        (tmp_path / "crmsync-sa.json").write_text(key)
        run(*SETUP.split()[1:], "--api-url", server.url)
        run("crm", "add", "user", f"email={REP}", "name=Rita Rep")
        run("crm", "add", "contact", "first_name=Ada", "last_name=Lovelace", "--owner", REP)
        tested = run("connection-test", "--rep", REP)
        assert "Domain-wide delegation granted for each scope" in tested
        assert "failed" not in tested and "not run" not in tested
        run("config", "add", "Sales", "--user", REP)
        run("sync", "--rep", REP)
        run("sync", "--rep", REP)
        status = run("status", "--rep", REP)
        assert status.count("In sync    │") == 4, status  # both kinds, both ways
        exported = run("config", "export")
        assert "connection_method: google" in exported and "google_event_color: '11'" in exported
        assert "PRIVATE KEY" not in exported
        # The guide's org section, applied with a new key from the variable it names.
        document = yaml.safe_load(exported)
        document["org"] = yaml.safe_load(_guide_block(guide, "org:\n  connection_method: google"))[
            "org"
        ]
        (tmp_path / "crmsync.yaml").write_text(yaml.safe_dump(document))
        new_key = service_account_key()
        monkeypatch.setenv("GOOGLE_KEY", new_key)
        applied = run("config", "apply", "crmsync.yaml", "--yes")
        assert "the service account password is replaced" in applied
        assert json.loads(new_key)["private_key"] not in applied
        assert [
            p["names"][0]["familyName"] for p in server.fake.people.book(REP).people.values()
        ] == ["Lovelace"]
    finally:
        server.stop()


def _guide_block(guide: str, starts: str) -> str:
    """The text of the guide's code block that starts with ``starts``."""
    start = guide.index("```yaml\n" + starts) + len("```yaml\n")
    return guide[start : guide.index("```", start)]
