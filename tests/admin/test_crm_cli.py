"""``crmsync crm`` commands, run through Typer's test runner against a CRM in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.admin.crm_cli import crm_app
from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.crm_settings import CrmKind, CrmSettings
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path))
    monkeypatch.delenv("CRMSYNC_CRM_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # so Rich tables do not cut ids
    return tmp_path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str, ok: bool = True, stdin: str | None = None) -> str:
    result = runner.invoke(crm_app, list(args), input=stdin)
    assert (result.exit_code == 0) == ok, (result.exit_code, result.output, result.exception)
    return result.stdout


def open_crm() -> BuiltinCrm:
    return BuiltinCrm(Deployment.from_env().crm_url)


def test_add_list_edit_delete(home: Path, runner: CliRunner) -> None:
    run(runner, "add", "profile", "name=Sales")
    user_id = run(
        runner,
        "add",
        "user",
        "email=ann@example.com",
        "name=Ann",
        "profile=Sales",
        "time_zone=Europe/Paris",
    ).strip()
    contact_id = run(
        runner,
        "add",
        "contact",
        "--owner",
        "ANN@example.com",
        "first_name=Bo",
        "mailing_address.city=Lyon",
        "is_person_account=true",
    ).strip()
    with open_crm() as crm:
        stored = crm.get_contact(contact_id)
        assert stored.owner_id == user_id
        assert stored.record.mailing_address.city == "Lyon" and stored.record.is_person_account

    listing = run(runner, "list", "contacts", "--owner", "ann@example.com")
    assert contact_id in listing and "Bo" in listing
    assert "ann@example.com" in run(runner, "list", "users")

    run(runner, "edit", "contact", contact_id, "last_name=Ek", "mailing_address.street=1 Rue")
    with open_crm() as crm:
        record = crm.get_contact(contact_id).record
        assert (record.first_name, record.last_name) == ("Bo", "Ek")
        assert (record.mailing_address.city, record.mailing_address.street) == ("Lyon", "1 Rue")

    run(runner, "delete", "contact", contact_id)
    assert contact_id not in run(runner, "list", "contacts")
    run(runner, "delete", "contact", contact_id, ok=False)


def test_add_event_with_json_and_reassign(home: Path, runner: CliRunner) -> None:
    run(runner, "add", "user", "email=ann@example.com")
    run(runner, "add", "user", "email=bob@example.com")
    lead_id = run(runner, "add", "lead", "--owner", "ann@example.com", "company=Acme").strip()
    fields = {
        "subject": "Demo",
        "start": "2024-05-02T09:00",
        "end": "2024-05-02T10:00",
        "tzid": "Europe/Paris",
        "attendees": [{"email": "x@example.com", "status": "accepted"}],
        "related_lead": lead_id,
    }
    event_id = run(
        runner, "add", "event", "--owner", "ann@example.com", "--json", json.dumps(fields)
    ).strip()
    run(runner, "edit", "event", event_id, "owner=bob@example.com", 'categories=["CRM"]')
    with open_crm() as crm:
        stored = crm.get_event(event_id)
        assert crm.get_user(stored.owner_id).email == "bob@example.com"
        assert stored.record.categories == ("CRM",)
        assert stored.record.attendees[0].email == "x@example.com"
        assert crm.event_relations(event_id).lead_id == lead_id
    assert "Demo" in run(runner, "list", "events")


def test_import_and_export(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"kind": "user", "email": "ann@example.com"}\n'
        '{"kind": "contact", "owner": "ann@example.com", "first_name": "Bo"}\n'
        '{"kind": "contact", "owner": "nobody@example.com"}\n'
        '{"kind": "lead", "owner": "ann@example.com", "company": "Acme"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(crm_app, ["import", str(source)])
    assert result.exit_code == 1  # one bad line, the rest imported
    assert "line 3:" in result.output and "nobody@example.com" in result.output
    assert "imported 3" in result.output

    out = tmp_path / "contacts.jsonl"
    run(runner, "export", "--kind", "contacts", "--out", str(out))
    (line,) = [json.loads(t) for t in out.read_text(encoding="utf-8").splitlines()]
    assert line["kind"] == "contact" and line["first_name"] == "Bo"

    everything = run(runner, "export")
    kinds = [json.loads(t)["kind"] for t in everything.splitlines()]
    assert kinds == ["user", "contact", "lead"]

    again = runner.invoke(crm_app, ["import", "-"], input=everything)
    assert again.exit_code == 0 and "unchanged 3" in again.output


def test_errors_are_clear_and_exit_non_zero(home: Path, runner: CliRunner) -> None:
    cases = [
        (["import", str(home / "missing.jsonl")], "no such file"),
        (["add", "contact", "first_name=x"], "--owner"),
        (["add", "contact", "--owner", "nobody@example.com"], "nobody@example.com"),
        (["add", "user", "email=ann@example.com", "profile=Nope"], "no profile named"),
        (["add", "user", "name"], "key=value"),
        (["add", "contact", "--owner", "a@b.c", "--json", "[1]"], "JSON object"),
        (["edit", "lead", "lea_missing", "company=x"], "no lead"),
        (["delete", "user", "usr_missing"], "no user"),
        (["list", "contacts", "--owner", "nobody@example.com"], "nobody@example.com"),
    ]
    for args, message in cases:
        result = runner.invoke(crm_app, args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args


def test_custom_fields_are_defined_then_set_through_add_and_edit(
    home: Path, runner: CliRunner
) -> None:
    run(runner, "add", "user", "email=ann@example.com")
    defined = run(runner, "field", "add", "direct_line", "phone")
    assert defined.strip() == "custom:direct_line (phone)"
    run(runner, "field", "add", "renewal", "date")
    assert "custom:renewal\tdate" in run(runner, "field", "list")
    contact_id = run(
        runner,
        "add",
        "contact",
        "--owner",
        "ann@example.com",
        "last_name=Ek",
        "custom.direct_line=+46 8 123",
    ).strip()
    run(runner, "edit", "contact", contact_id, "custom.renewal=2027-05-01")
    with open_crm() as crm:
        assert crm.custom_values(contact_id) == {
            "direct_line": "+46 8 123",
            "renewal": "2027-05-01",
        }
    run(runner, "edit", "contact", contact_id, "custom.renewal=not a date", ok=False)
    run(runner, "edit", "contact", contact_id, "custom.direct_line=")
    with open_crm() as crm:
        assert crm.custom_values(contact_id) == {"renewal": "2027-05-01"}
    run(runner, "field", "add", "flag", "address", ok=False)


def test_crm_commands_say_they_edit_only_the_builtin_crm_of_a_salesforce_org(
    home: Path, runner: CliRunner
) -> None:
    deployment = Deployment.from_env()
    with StateStore(deployment.state_url, deployment.secrets_key_path) as store:
        store.save_crm_settings(CrmSettings(CrmKind.SALESFORCE, "https://acme.my.salesforce.com"))
    result = runner.invoke(crm_app, ["list", "contacts"])
    assert result.exit_code == 1
    assert "built-in CRM only" in result.stderr and "acme.my.salesforce.com" in result.stderr


def test_a_narrow_list_keeps_whole_ids_and_shows_events_in_their_own_zone(
    home: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    user_id = run(runner, "add", "user", "email=ann@example.com", "name=Ann").strip()
    contact = ("first_name=Ada", "last_name=Lovelace", "account_name=Analytical Engines Ltd")
    contact_id = run(runner, "add", "contact", "--owner", "ann@example.com", *contact).strip()
    timed = {"subject": "Review", "start": "2024-05-02T09:00", "end": "2024-05-02T10:30"}
    flight = {**timed, "end": "2024-05-02T13:00", "end_tzid": "America/New_York"}
    ids = [
        run(
            runner,
            "add",
            "event",
            "--owner",
            "ann@example.com",
            "--json",
            json.dumps({**fields, "tzid": "Europe/Paris"}),
        ).strip()
        for fields in (timed, flight)
    ]
    # Every id is printed whole, on one line: it can be copied into `crm edit`.
    for kind, record_id in (("users", user_id), ("contacts", contact_id), ("events", ids[0])):
        assert record_id in run(runner, "list", kind), kind
    monkeypatch.setenv("COLUMNS", "200")
    events = run(runner, "list", "events")
    # Wall-clock times in the event's zone (07:00 UTC is 09:00 in Paris), not UTC.
    assert "2024-05-02 09:00" in events and "2024-05-02 10:30" in events
    assert "07:00" not in events and "+00:00" not in events
    assert "2024-05-02 13:00" in events  # the flight lands at 13:00 New York time
    assert "Europe/Paris → America/New_York" in events
