"""Prometheus metrics: real cycles against a real Radicale, read back from the exposition
text the way Prometheus would parse it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, User
from crmsync.domain.settings import Direction
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.deployment import Deployment
from crmsync.service.metrics import REP_STATES, SyncMetrics, rep_state
from crmsync.service.runner import RepReport
from crmsync.service.scheduler import Scheduler
from crmsync.store import RepStatus, SyncStatus
from tests.servers import running_dav_server
from tests.service.worlds import BOTH_WAYS, World, at

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: SyncMetrics) -> Samples:
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[name, frozenset(labels.items())]


def by_label(found: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in found.items() if n == name}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_dav_server("radicale", tmp_path) as server:
        w = World(server, tmp_path / "home", BOTH_WAYS, retry=RetryPolicy(base_delay=0.01))
        yield w
        w.close()


CLIENT_CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:client-card-1\r\nFN:Milo Mail\r\nN:Mail;Milo;;;\r\n"
    "EMAIL;TYPE=INTERNET:milo@client.example\r\nEND:VCARD\r\n"
)


def test_a_cycle_counts_its_outcome_items_by_kind_and_direction_and_duration(
    world: World,
) -> None:
    metrics = SyncMetrics()
    world.crm.create_contact(world.rep.id, Contact(first_name="Ada", last_name="Lovelace"))
    world.crm.create_event(world.rep.id, Event("Call", EventTiming(at(5, 14), at(5, 15))))

    metrics.observe(world.sync(), 0.42)
    found = samples(metrics)
    assert by_label(found, "crmsync_cycles_total", "outcome") == {
        "ok": 1,
        "error": 0,
        "not_configured": 0,
    }
    assert value(found, "crmsync_items_synced_total", kind="contact", direction="to_mail") == 1
    assert value(found, "crmsync_items_synced_total", kind="event", direction="to_mail") == 1
    assert value(found, "crmsync_items_synced_total", kind="contact", direction="to_crm") == 0
    assert value(found, "crmsync_cycle_duration_seconds_count") == 1
    assert value(found, "crmsync_cycle_duration_seconds_sum") == pytest.approx(0.42)
    assert value(found, "crmsync_cycle_duration_seconds_bucket", le="0.5") == 1
    assert value(found, "crmsync_cycle_duration_seconds_bucket", le="0.25") == 0
    assert set(by_label(found, "crmsync_errors_total", "error_type").values()) == {0}

    assert world.put_raw(ItemKind.CONTACT, "client-card-1", CLIENT_CARD).status_code == 201
    metrics.observe(world.sync(), 0.1)
    found = samples(metrics)
    assert value(found, "crmsync_items_synced_total", kind="contact", direction="to_crm") == 1
    assert value(found, "crmsync_items_synced_total", kind="contact", direction="to_mail") == 1
    assert value(found, "crmsync_cycles_total", outcome="ok") == 2
    assert value(found, "crmsync_cycle_duration_seconds_count") == 2


def test_scheduled_cycles_count_outcomes_errors_by_type_and_reps_by_status(
    world: World,
) -> None:
    service = world.service
    service.configure_server(
        world.server.settings(additional_domains=("example.com",)), world.server.password
    )
    outsider = world.crm.create_user("outsider@elsewhere.test", "Otto Outsider")
    world.crm.create_user("idle@example.com", "Ida Idle")  # no configuration covers her
    service.store.save_config(replace(BOTH_WAYS, user_ids=(world.rep.id, outsider.id)))
    world.crm.create_contact(world.rep.id, Contact(first_name="Ada", last_name="Lovelace"))
    metrics = SyncMetrics(rep_statuses=service.store.rep_statuses)
    # An hour's interval: each rep runs exactly once.
    scheduler = Scheduler(
        Deployment.from_env(world.home), interval=3600, metrics=metrics, retry=world.service.retry
    )
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while sum(by_label(samples(metrics), "crmsync_cycles_total", "outcome").values()) < 3:
            assert time.monotonic() < deadline, "three cycles did not run"
            time.sleep(0.02)
    finally:
        assert scheduler.stop(60)

    found = samples(metrics)
    assert by_label(found, "crmsync_cycles_total", "outcome") == {
        "ok": 1,
        "error": 1,
        "not_configured": 1,
    }
    errors = by_label(found, "crmsync_errors_total", "error_type")
    assert errors.pop("authentication") == 1  # the outsider's row in the error report
    assert set(errors.values()) == {0}
    assert value(found, "crmsync_items_synced_total", kind="contact", direction="to_mail") == 1
    assert value(found, "crmsync_cycle_duration_seconds_count") == 2  # configured reps only
    reps = by_label(found, "crmsync_reps", "status")
    assert set(reps) == set(REP_STATES)
    assert {state: n for state, n in reps.items() if n} == {
        "initial_sync_completed": 1,
        "error": 1,
        "not_configured": 1,
    }


CONTACTS_OUT = (ItemKind.CONTACT, Direction.CRM_TO_MAIL)
EVENTS_IN = (ItemKind.EVENT, Direction.MAIL_TO_CRM)


def state(last_error: str | None = None, **flows: SyncStatus) -> str:
    """`rep_state` of a rep whose contacts go out and events come in with ``flows``."""
    keys = {"contacts_out": CONTACTS_OUT, "events_in": EVENTS_IN}
    sync = {keys[name]: s for name, s in flows.items()}
    return rep_state(RepStatus("rep-1", last_error=last_error, sync=sync))


def test_a_reps_state_is_its_least_advanced_configured_flow_or_error() -> None:
    assert state() == "not_started"
    assert (
        state(contacts_out=SyncStatus.IN_SYNC, events_in=SyncStatus.SYNC_IN_PROGRESS)
        == "sync_in_progress"
    )
    assert (
        state(contacts_out=SyncStatus.INITIAL_SYNC_IN_PROGRESS, events_in=SyncStatus.IN_SYNC)
        == "initial_sync_in_progress"
    )
    assert state(contacts_out=SyncStatus.NOT_CONFIGURED, events_in=SyncStatus.IN_SYNC) == "in_sync"
    assert state(events_in=SyncStatus.NOT_CONFIGURED) == "not_configured"
    assert state("server down", events_in=SyncStatus.IN_SYNC) == "error"


def test_every_instance_has_its_own_registry() -> None:
    first, second = SyncMetrics(), SyncMetrics()
    first.observe(RepReport(User("u1", "a@example.com", "A"), configured=False), 0.0)
    assert value(samples(first), "crmsync_cycles_total", outcome="not_configured") == 1
    assert value(samples(second), "crmsync_cycles_total", outcome="not_configured") == 0
    assert REGISTRY.get_sample_value("crmsync_cycles_total", {"outcome": "not_configured"}) is None


def test_a_scrape_answers_while_the_reps_statuses_cannot_be_read() -> None:
    def unreadable() -> list[RepStatus]:
        raise OSError("database unreachable")

    found = samples(SyncMetrics(rep_statuses=unreadable))
    assert value(found, "crmsync_cycles_total", outcome="ok") == 0
    assert not by_label(found, "crmsync_reps", "status")


def test_without_reps_every_status_reads_zero() -> None:
    found = samples(SyncMetrics(rep_statuses=list))
    assert by_label(found, "crmsync_reps", "status") == dict.fromkeys(REP_STATES, 0)


def test_the_schedules_backlog_counts_unclaimed_due_reps_and_the_longest_wait() -> None:
    now = dt.datetime.now(dt.UTC)
    statuses = [
        RepStatus("waiting", next_due=now - dt.timedelta(minutes=10)),
        RepStatus("new"),  # never scheduled: due, no age
        RepStatus("claimed", next_due=now - dt.timedelta(hours=1), lease_owner="worker"),
        RepStatus("later", next_due=now + dt.timedelta(minutes=1)),
    ]
    found = samples(SyncMetrics(rep_statuses=lambda: statuses))
    assert value(found, "crmsync_reps_due") == 2
    assert 600 <= value(found, "crmsync_oldest_due_age_seconds") < 3600
    # A lease that expired frees the rep for the next claim: it waits again.
    lapsed = RepStatus(
        "lapsed",
        next_due=now - dt.timedelta(hours=1),
        lease_owner="dead worker",
        lease_expires=now - dt.timedelta(minutes=1),
    )
    found = samples(SyncMetrics(rep_statuses=lambda: [*statuses, lapsed]))
    assert value(found, "crmsync_reps_due") == 3
    assert value(found, "crmsync_oldest_due_age_seconds") >= 3600
    idle = samples(SyncMetrics(rep_statuses=list))
    assert value(idle, "crmsync_reps_due") == 0
    assert value(idle, "crmsync_oldest_due_age_seconds") == 0
