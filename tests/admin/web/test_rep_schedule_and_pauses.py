"""What the admin sees of the schedule and of parked reps (issue 16 point 4): an overdue
cycle, the worker running a rep's cycle, a pause the mail server asked for, a refused
sign-in; on the reps list, the rep's page and the API's rep lines, with the counts the
pages show (held deletions, failing items, errors)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
from rich.console import Console as RichConsole
from typer.testing import CliRunner

from crmsync.admin import cli
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.domain.sync import ErrorEntry, ErrorType
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from crmsync.service.workers import Dispatcher
from crmsync.store import MailPause, StateStore
from tests.admin.web.conftest import Console
from tests.admin.web.seeding import stamp_cycle

NOW = dt.datetime(2031, 3, 4, 15, 30, tzinfo=dt.UTC)
WORKER = "worker:host-b.example.com:4242:9f3c1a"


def _rows(listing: str) -> dict[str, str]:
    """Each rep's line of the reps list, by its email as the link writes it."""
    return {
        m[1]: m[2]
        for m in re.finditer(
            r'<tr[^>]*>\s*<td data-label="Rep"><a href="/status/([^"]+)">(.*?)</tr>', listing, re.S
        )
    }


def _api_reps(console: Console) -> dict[str, dict[str, object]]:
    answer = console.client.get("/api/v1/reps", headers=console.bearer("manager"))
    assert answer.status_code == 200
    return {line["email"]: line for line in answer.json()}


def test_an_overdue_cycle_and_the_worker_running_one_show_everywhere(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    store = service.store
    late = service.crm.create_user("lou@example.com", "Lou Late")
    running = service.crm.create_user("rui@example.com", "Rui Running")
    waiting = service.crm.create_user("wes@example.com", "Wes Waiting")
    store.set_next_due(late.id, NOW - dt.timedelta(minutes=12))
    store.set_next_due(running.id, NOW - dt.timedelta(minutes=12))
    assert store.claim_rep(running.id, WORKER, dt.timedelta(minutes=5), now=NOW)
    # Due a minute ago: within the grace a scheduler needs to claim it.
    store.set_next_due(waiting.id, NOW - dt.timedelta(minutes=1))
    console.sign_in("manager")

    rows = _rows(console.client.get("/status").text)
    assert "Overdue: due 12 min ago" in rows["lou%40example.com"]
    assert f"Cycle running on <code>{WORKER}</code>" in rows["rui%40example.com"]
    assert "Overdue" not in rows["rui%40example.com"]
    assert "Overdue" not in rows["wes%40example.com"] and "running" not in rows["wes%40example.com"]

    page = console.client.get("/status/lou@example.com").text
    assert "Needs attention: Overdue: due 12 min ago" in page
    assert 'id="overdue"' in page and "(overdue)" in page
    assert 'id="running-on">no worker' in page
    page = console.client.get("/status/rui@example.com").text
    assert f'id="running-on"><code>{WORKER}</code>' in page and 'id="overdue"' not in page

    lines = _api_reps(console)
    assert lines["lou@example.com"]["overdue"] is True
    assert lines["lou@example.com"]["running_on"] is None
    assert lines["rui@example.com"]["overdue"] is False
    assert lines["rui@example.com"]["running_on"] == WORKER
    assert lines["wes@example.com"]["overdue"] is False
    one = console.client.get("/api/v1/reps/rui@example.com", headers=console.bearer("manager"))
    assert one.json()["running_on"] == WORKER and one.json()["next_due"] is not None

    # Once the lease has expired, nobody runs the rep: it is overdue.
    service.clock = lambda: NOW + dt.timedelta(minutes=6)
    assert _api_reps(console)["rui@example.com"]["overdue"] is True


@pytest.mark.parametrize(("overdue_after_minutes", "late"), [(5, True), (15, False)])
def test_the_orgs_overdue_threshold_decides_when_a_waiting_rep_is_overdue(
    console: Console, overdue_after_minutes: int, late: bool
) -> None:
    service = console.service
    service.clock = lambda: NOW
    store = service.store
    store.save_org_settings(
        dataclasses.replace(store.org_settings(), overdue_after_minutes=overdue_after_minutes)
    )
    rep = service.crm.create_user("tia@example.com", "Tia Waiting")
    store.set_next_due(rep.id, NOW - dt.timedelta(minutes=10))
    console.sign_in("manager")

    assert _api_reps(console)["tia@example.com"]["overdue"] is late
    row = _rows(console.client.get("/status").text)["tia%40example.com"]
    assert ("Overdue: due 10 min ago" in row) is late
    page = console.client.get("/status/tia@example.com").text
    assert ('id="overdue"' in page) is late


def test_a_rep_with_no_next_due_time_is_due_now_as_the_scheduler_claims_it(
    console: Console,
) -> None:
    service = console.service
    service.clock = lambda: NOW
    store = service.store
    new = service.crm.create_user("nan@example.com", "Nan New")
    late = service.crm.create_user("lou@example.com", "Lou Late")
    store.schedule_reps([new.id])  # a row, no next-due time: the claim takes it first
    store.set_next_due(late.id, NOW - dt.timedelta(minutes=12))
    console.sign_in("manager")

    page = console.client.get("/status/nan@example.com").text
    assert 'id="next-due">due now</td>' in page and "Overdue" not in page
    page = console.client.get("/status/lou@example.com").text
    assert "Needs attention: Overdue: due 12 min ago" in page and "(overdue)" in page
    claimed = store.claim_due("scheduler:test", dt.timedelta(minutes=5), limit=1, now=NOW)
    assert [rep_id for rep_id, _ in claimed] == [new.id]


# What makes a rep due at once, as the console and the CLI call it.
MADE_DUE = {
    "configuration saved": lambda service, rep: service.save_config(
        SyncConfig("Sales", user_ids=(rep.id,))
    ),
    "reset": lambda service, rep: service.mark_for_reset(rep),
    "deletions confirmed": lambda service, rep: service.confirm_deletes(rep),
    "new sign-in": lambda service, rep: service.set_rep_sign_in(rep.email, "cy", "app-pw"),
}


@pytest.mark.parametrize("action", MADE_DUE)
def test_a_rep_made_due_at_once_turns_overdue_while_no_scheduler_runs(
    console: Console, action: str
) -> None:
    service = console.service
    service.clock = lambda: NOW
    rep = service.crm.create_user("cy@example.com", "Cy Waiting")
    service.store.set_next_due(rep.id, NOW + dt.timedelta(hours=1))  # backing off
    MADE_DUE[action](service, rep)
    console.sign_in("manager")
    assert _api_reps(console)["cy@example.com"]["overdue"] is False  # a scheduler takes it

    # No scheduler runs: past the 5 minutes' grace, the wait shows.
    service.clock = lambda: NOW + dt.timedelta(minutes=10)
    page = console.client.get("/status/cy@example.com").text
    assert "Needs attention: Overdue: due 10 min ago" in page and "(overdue)" in page
    assert _api_reps(console)["cy@example.com"]["overdue"] is True


def test_the_scheduler_taking_an_overdue_rep_shows_who_holds_it(console: Console) -> None:
    service = console.service
    rep = service.crm.create_user("lou@example.com", "Lou Late")
    now = service.clock()
    service.store.set_next_due(rep.id, now - dt.timedelta(minutes=20))
    console.sign_in("manager")
    assert _api_reps(console)["lou@example.com"]["overdue"] is True

    sent: list[list[tuple[str, int]]] = []
    dispatcher = Dispatcher(service.deployment, sent.append, worker_id="scheduler:test:1:aa")
    assert dispatcher.round(service) == 1 and [r for r, _ in sent[0]] == [rep.id]

    line = _api_reps(console)["lou@example.com"]
    assert line["overdue"] is False and line["running_on"] == "scheduler:test:1:aa"
    assert "Cycle running on <code>scheduler:test:1:aa</code>" in console.client.get("/status").text


def test_a_pause_the_mail_server_asked_for_shows_as_a_badge_until_it_ends(
    console: Console,
) -> None:
    service = console.service
    service.clock = lambda: NOW
    store = service.store
    rep = service.crm.create_user("pat@example.com", "Pat Paused")
    until = NOW + dt.timedelta(hours=2, minutes=35)
    record = store.open_cycle(rep.id)
    record.set_pause(MailPause(until, "Google", "Calendar usage limits exceeded"))
    store.close_cycle(record, error="Google made pat's calendar read-only")
    console.sign_in("manager")

    row = _rows(console.client.get("/status").text)["pat%40example.com"]
    assert (
        'Paused by Google until <time datetime="2031-03-04T18:05:00+00:00" data-local="time">'
        in row
    )
    assert "18:05 UTC</time>" in row
    assert "Last cycle failed" not in row  # the pause says why
    page = console.client.get("/status/pat@example.com").text
    assert "Needs attention: Paused by Google until <time" in page and "18:05 UTC</time>" in page
    assert 'id="paused"' in page and "Calendar usage limits exceeded" in page
    line = _api_reps(console)["pat@example.com"]
    assert line["paused"] == {
        "by": "Google",
        "until": until.isoformat(),
        "because": "Calendar usage limits exceeded",
    }
    assert line["attention"] == ["Paused by Google until 18:05 UTC"]

    service.clock = lambda: until + dt.timedelta(minutes=1)
    assert "Paused by" not in _rows(console.client.get("/status").text)["pat%40example.com"]
    assert _api_reps(console)["pat@example.com"]["paused"] is None


def test_a_refused_sign_in_shows_on_the_reps_list(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = {
        "connection_method": "dav",
        "server_url": "https://cloud.example.com/remote.php/dav",
        "principal_path": "/principals/users/{user}/",
        "dav_sign_in": "per_rep",
    }
    assert console.client.put(
        "/api/v1/setup", json=setup, headers=console.bearer("manager")
    ).is_success
    service = console.service
    service.crm.create_user("ann@example.com", "Ann Refused")
    service.crm.create_user("bob@example.com", "Bob Fine")
    service.store.set_rep_credentials("Ann@Example.com", "ann", "app-pass-1")
    service.store.set_rep_credentials("bob@example.com", "bob", "app-pass-2")
    service.store.mark_rep_credentials_refused("ann@example.com", "HTTP 401")
    console.sign_in("manager")

    rows = _rows(console.client.get("/status").text)
    assert '<strong class="badge">Sign-in refused</strong>' in rows["ann%40example.com"]
    assert "Sign-in refused" not in rows["bob%40example.com"]
    page = console.client.get("/status/ann@example.com").text
    assert "Needs attention: Sign-in refused" in page and 'href="#sign-in"' in page
    lines = _api_reps(console)
    assert lines["ann@example.com"]["attention"] == ["Sign-in refused"]
    assert lines["bob@example.com"]["attention"] == []
    assert lines["ann@example.com"]["sign_in_refused"] is True
    assert lines["bob@example.com"]["sign_in_refused"] is False

    # Paused as well: the pause comes first, as a local time, then the refusal.
    service.clock = lambda: NOW
    ann = service.crm.get_user_by_email("ann@example.com")
    record = service.store.open_cycle(ann.id)
    record.set_pause(MailPause(NOW + dt.timedelta(hours=1), "Google", "usage limits"))
    service.store.close_cycle(record, error="read-only")
    row = _rows(console.client.get("/status").text)["ann%40example.com"]
    assert re.search(
        r'<strong class="badge paused">Paused by Google until <time [^>]*>16:30 UTC</time>'
        r'</strong>\s*<strong class="badge">Sign-in refused</strong>',
        row,
    )
    page = console.client.get("/status/ann@example.com").text
    assert re.search(
        r"Needs attention: Paused by Google until <time [^>]*>16:30 UTC</time>, "
        r"Sign-in refused</h2>",
        page,
    )
    assert "enter a new login or app password" in page
    assert _api_reps(console)["ann@example.com"]["attention"] == [
        "Paused by Google until 16:30 UTC",
        "Sign-in refused",
    ]

    # One rep's page and answer decrypt that rep's login alone, not every rep's.
    def every_login() -> None:
        raise AssertionError("every rep's login read for one rep")

    monkeypatch.setattr(service.store, "refused_rep_logins", every_login)
    assert "Sign-in refused</h2>" in console.client.get("/status/ann@example.com").text
    bob = console.client.get("/api/v1/reps/bob@example.com", headers=console.bearer("manager"))
    assert bob.json()["sign_in_refused"] is False and bob.json()["attention"] == []


def test_the_api_rep_lines_carry_the_counts_the_pages_show(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    store = service.store
    held = service.crm.create_user("hal@example.com", "Hal Held")
    failing = service.crm.create_user("fay@example.com", "Fay Failing")
    started = NOW - dt.timedelta(minutes=10)
    for user in (held, failing):
        stamp_cycle(store, user.id, started)
    store.record_error(
        ErrorEntry(
            held.id, ItemKind.CONTACT, None, "delete", ErrorType.MASS_DELETE, "held", "fix", started
        )
    )
    for n in range(3):
        store.record_error(
            ErrorEntry(
                failing.id,
                ItemKind.CONTACT,
                f"/fay/{n}.vcf",
                "read from mail server",
                ErrorType.MALFORMED_ITEM,
                "unreadable",
                "fix",
                started,
            )
        )
    # An older cycle's row counts as an error, not as failing now.
    store.record_error(
        ErrorEntry(
            failing.id,
            ItemKind.EVENT,
            "/fay/old.ics",
            "read from mail server",
            ErrorType.MALFORMED_ITEM,
            "unreadable",
            "fix",
            started - dt.timedelta(hours=1),
        )
    )

    lines = _api_reps(console)
    assert lines["hal@example.com"]["held_deletes"] is True
    assert lines["hal@example.com"]["attention"] == ["Deletions held"]
    assert lines["hal@example.com"]["errors"] == 1
    assert lines["fay@example.com"]["failing_items"] == 3
    assert lines["fay@example.com"]["errors"] == 4
    assert lines["fay@example.com"]["held_deletes"] is False
    assert lines["fay@example.com"]["attention"] == ["3 items failing"]
    store.confirm_deletes(held.id)
    assert _api_reps(console)["hal@example.com"]["held_deletes"] is False


def test_crmsync_status_prints_what_needs_attention_and_who_runs_a_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMSYNC_ORG", raising=False)
    monkeypatch.setattr(cli, "console", RichConsole(width=200))
    now = dt.datetime.now(dt.UTC)
    with SyncService(Deployment.from_env(tmp_path / "home")) as service:
        paused = service.crm.create_user("pat@example.com", "Pat Paused")
        late = service.crm.create_user("lou@example.com", "Lou Late")
        running = service.crm.create_user("rui@example.com", "Rui Running")
        service.crm.create_user("fin@example.com", "Fin Fine")
        record = service.store.open_cycle(paused.id)
        until = now + dt.timedelta(hours=3)
        record.set_pause(MailPause(until, "Google", "Calendar usage limits exceeded"))
        service.store.close_cycle(record, error="Google made the calendar read-only")
        service.store.set_next_due(late.id, now - dt.timedelta(minutes=40))
        assert service.store.claim_rep(running.id, WORKER, dt.timedelta(minutes=5))

    shown = CliRunner().invoke(cli.app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert f"pat@example.com: needs attention: Paused by Google until {until:%H:%M} UTC" in (
        shown.output
    )
    assert "lou@example.com: needs attention: Overdue: due 40 min ago" in shown.output
    assert f"rui@example.com: cycle running on {WORKER}" in shown.output
    assert "fin@example.com:" not in shown.output

    # The table and the lines share one read of the statuses, for every rep or for one.
    reads: list[object] = []
    read = StateStore._rep_statuses
    monkeypatch.setattr(StateStore, "_rep_statuses", lambda *a: reads.append(a) or read(*a))
    assert CliRunner().invoke(cli.app, ["status"]).exit_code == 0 and len(reads) == 1
    one = CliRunner().invoke(cli.app, ["status", "--rep", "lou@example.com"])
    assert one.exit_code == 0 and len(reads) == 2
    assert "lou@example.com: needs attention: Overdue: due 40 min ago" in one.output
