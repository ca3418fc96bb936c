"""Per-rep sign-in through the API, the rep's page, `crmsync setup` and `config apply`
(issue 12): the app password stored encrypted and never shown back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from crmsync.admin import cli, setup_cli
from crmsync.admin.cli import app
from crmsync.domain.settings import DavSignIn
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.admin.web.conftest import Console as WebConsole
from tests.admin.web.conftest import console

__all__ = ["console"]

ANN = "ann@example.com"
SECRET = "app-pass-Zq8"
PER_REP_SETUP = {
    "connection_method": "dav",
    "server_url": "https://cloud.example.com/remote.php/dav",
    "principal_path": "/principals/users/{user}/",
    "dav_sign_in": "per_rep",
}


def test_the_api_takes_a_per_rep_setup_and_a_reps_login_never_returning_it(
    console: WebConsole,
) -> None:
    auth = console.bearer("manager")
    # No service account, no password: each rep signs in with their own.
    setup = console.client.put("/api/v1/setup", json=PER_REP_SETUP, headers=auth)
    assert setup.status_code == 200, setup.text
    assert setup.json()["dav_sign_in"] == "per_rep"
    console.service.crm.create_user(ANN, "Ann")
    put = console.client.put(
        f"/api/v1/reps/{ANN}/sign-in", json={"login": "ann", "password": SECRET}, headers=auth
    )
    assert put.status_code == 200, put.text
    shown = console.client.get(f"/api/v1/reps/{ANN}/sign-in", headers=auth)
    assert shown.json()["login"] == "ann" and shown.json()["password_stored"] is True
    assert SECRET not in put.text + shown.text
    assert console.service.store.rep_credentials(ANN).password == SECRET
    assert SECRET.encode() not in (console.home / "state.sqlite").read_bytes()
    unknown = console.client.get("/api/v1/reps/nobody@example.com/sign-in", headers=auth)
    assert unknown.status_code == 404
    reader = console.client.get(f"/api/v1/reps/{ANN}/sign-in", headers=console.bearer("reader"))
    assert reader.status_code == 403
    gone = console.client.delete(f"/api/v1/reps/{ANN}/sign-in", headers=auth)
    assert gone.status_code == 204 and console.service.store.rep_credentials(ANN) is None


def test_an_unknown_principal_placeholder_is_refused_listing_the_valid_ones(
    console: WebConsole,
) -> None:
    bad = {**PER_REP_SETUP, "principal_path": "/principals/{login}/"}
    refused = console.client.put("/api/v1/setup", json=bad, headers=console.bearer("manager"))
    assert refused.status_code == 422
    assert "{login}" in refused.text and "{email}, {local}, {user}" in refused.text


def test_the_reps_page_takes_the_login_and_shows_needs_attention(console: WebConsole) -> None:
    console.client.put("/api/v1/setup", json=PER_REP_SETUP, headers=console.bearer("manager"))
    console.service.crm.create_user(ANN, "Ann")
    csrf = console.sign_in("manager")
    page = console.client.get(f"/status/{ANN}")
    assert 'id="sign-in"' in page.text and "none stored" in page.text
    saved = console.client.post(
        f"/status/{ANN}/sign-in",
        data={"csrf_token": csrf, "login": "ann", "password": SECRET},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "Saved" in saved.text and SECRET not in saved.text
    console.service.store.mark_rep_credentials_refused(ANN, "HTTP 401")
    assert 'id="needs-attention"' in console.client.get(f"/status/{ANN}").text


def test_the_reps_page_reads_the_reps_login_once(
    console: WebConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    console.client.put("/api/v1/setup", json=PER_REP_SETUP, headers=console.bearer("manager"))
    console.service.crm.create_user(ANN, "Ann")
    store = console.service.store
    store.set_rep_credentials(ANN, "ann", SECRET)
    store.mark_rep_credentials_refused(ANN, "HTTP 401")
    console.sign_in("manager")
    reads: list[str] = []
    read = store.rep_credentials
    monkeypatch.setattr(store, "rep_credentials", lambda email: reads.append(email) or read(email))
    page = console.client.get(f"/status/{ANN}").text
    assert reads == [ANN]
    # Both places that show it still do: the attention line and the sign-in form.
    assert "Needs attention: Sign-in refused" in page and 'id="needs-attention"' in page


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setattr(cli, "console", Console(width=200))
    monkeypatch.setattr(setup_cli, "console", Console(width=200))
    return CliRunner()


def _service(tmp_path: Path) -> SyncService:
    return SyncService(Deployment.from_env(tmp_path / "home"))


def test_setup_dav_per_rep_and_rep_login_from_the_command_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = runner.invoke(app, ["setup", "dav", "https://baikal.example.com/dav.php", "--per-rep"])
    assert setup.exit_code == 0, setup.output
    monkeypatch.setenv("ANN_APP_PASSWORD", SECRET)
    saved = runner.invoke(
        app, ["setup", "rep-login", ANN, "--login", ANN, "--password-env", "ANN_APP_PASSWORD"]
    )
    assert saved.exit_code == 0, saved.output
    assert SECRET not in saved.output
    with _service(tmp_path) as service:
        assert service.org_settings().dav_sign_in is DavSignIn.PER_REP
        assert service.store.rep_credentials(ANN).password == SECRET  # type: ignore[union-attr]


def test_config_apply_sets_reps_logins_from_the_environment_and_exports_no_password(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = {
        "org": {**PER_REP_SETUP, "server_url": "https://cloud.example.com/remote.php/dav"},
        "reps": [{"email": ANN, "login": "ann", "password_env": "ANN_APP_PASSWORD"}],
        "configurations": [],
    }
    file = tmp_path / "crmsync.yaml"
    file.write_text(yaml.safe_dump(document))
    missing = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert missing.exit_code != 0 and "ANN_APP_PASSWORD" in missing.output
    monkeypatch.setenv("ANN_APP_PASSWORD", SECRET)
    applied = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert applied.exit_code == 0, applied.output
    exported = runner.invoke(app, ["config", "export"])
    assert "login: ann" in exported.output and SECRET not in exported.output
    # The export applies again as it is: the stored app password is kept.
    file.write_text(exported.output)
    again = runner.invoke(app, ["config", "apply", str(file), "--yes"])
    assert again.exit_code == 0, again.output
    with _service(tmp_path) as service:
        assert service.store.rep_credentials(ANN).password == SECRET  # type: ignore[union-attr]


def test_the_setup_page_keeps_and_sets_per_rep_sign_in(console: WebConsole) -> None:
    csrf = console.sign_in("manager")
    form = {
        "csrf_token": csrf,
        "connection_method": "dav",
        "server_url": "https://cloud.example.com/remote.php/dav",
        "principal_path": "/principals/users/{user}/",
        "dav_sign_in": "per_rep",
    }
    saved = console.client.post("/setup", data=form)
    assert saved.status_code == 200, saved.text
    assert console.service.org_settings().dav_sign_in is DavSignIn.PER_REP
    assert 'value="per_rep" selected' in console.client.get("/setup").text
