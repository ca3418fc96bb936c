"""Per-rep statuses: the spec's wording, transitions, checks and cycle bookkeeping."""

from __future__ import annotations

import datetime as dt

import pytest

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import Direction
from crmsync.domain.sync import Link
from crmsync.store import RepStatus, ResetStatus, StateStore, SyncStatus
from tests.store.conftest import Clock

TO_MAIL = Direction.CRM_TO_MAIL
TO_CRM = Direction.MAIL_TO_CRM


def test_display_texts_are_the_specs() -> None:
    assert [s.display for s in SyncStatus] == [
        "Not started",
        "Initial sync in progress",
        "Initial sync completed",
        "Sync in progress",
        "In sync",
        "Configuration not set to sync",
    ]
    assert ResetStatus.MARKED.display == "Marked for reset"
    assert ResetStatus.IN_PROGRESS.display == "Reset in progress"


@pytest.mark.parametrize(
    ("before", "started", "finished"),
    [
        (
            SyncStatus.NOT_STARTED,
            SyncStatus.INITIAL_SYNC_IN_PROGRESS,
            SyncStatus.INITIAL_SYNC_COMPLETED,
        ),
        (
            SyncStatus.INITIAL_SYNC_IN_PROGRESS,
            SyncStatus.INITIAL_SYNC_IN_PROGRESS,
            SyncStatus.INITIAL_SYNC_COMPLETED,
        ),
        (SyncStatus.INITIAL_SYNC_COMPLETED, SyncStatus.SYNC_IN_PROGRESS, SyncStatus.IN_SYNC),
        (SyncStatus.IN_SYNC, SyncStatus.SYNC_IN_PROGRESS, SyncStatus.IN_SYNC),
        (
            SyncStatus.NOT_CONFIGURED,
            SyncStatus.INITIAL_SYNC_IN_PROGRESS,
            SyncStatus.INITIAL_SYNC_COMPLETED,
        ),
    ],
)
def test_transitions(before: SyncStatus, started: SyncStatus, finished: SyncStatus) -> None:
    assert before.started() is started
    assert before.started().finished() is finished


def test_unknown_rep_reads_as_not_started(store: StateStore) -> None:
    status = store.rep_status("nobody")
    assert status == RepStatus("nobody")
    assert status.sync_status(ItemKind.CONTACT, TO_MAIL) is SyncStatus.NOT_STARTED
    assert store.rep_statuses() == []


def test_a_cycle_record_writes_only_what_changed(store: StateStore, clock: Clock) -> None:
    record = store.open_cycle("rep-1")
    assert record.status(ItemKind.CONTACT, TO_MAIL) is SyncStatus.NOT_STARTED
    record.set_status(ItemKind.CONTACT, TO_MAIL, SyncStatus.INITIAL_SYNC_COMPLETED)
    record.set_status(ItemKind.EVENT, TO_CRM, SyncStatus.NOT_CONFIGURED)
    record.set_checks(recognized=True)
    assert store.close_cycle(record) == 0
    status = store.rep_status("rep-1")
    assert status.sync == {
        (ItemKind.CONTACT, TO_MAIL): SyncStatus.INITIAL_SYNC_COMPLETED,
        (ItemKind.EVENT, TO_CRM): SyncStatus.NOT_CONFIGURED,
    }
    assert status.recognized is True
    assert status.last_cycle_started == status.last_cycle_finished == clock.now
    assert status.sync_status(ItemKind.CONTACT, TO_CRM) is SyncStatus.NOT_STARTED

    again = store.open_cycle("rep-1")
    again.set_status(ItemKind.EVENT, TO_CRM, SyncStatus.NOT_CONFIGURED)
    again.set_checks(recognized=True)
    assert again.changed == {} and again.changed_sync == {}


def test_a_flow_shows_as_started_while_the_reps_lease_is_held(
    store: StateStore, clock: Clock
) -> None:
    record = store.open_cycle("rep-1")
    record.set_status(ItemKind.CONTACT, TO_MAIL, SyncStatus.IN_SYNC)
    record.set_status(ItemKind.EVENT, TO_MAIL, SyncStatus.NOT_CONFIGURED)
    store.close_cycle(record)
    assert store.claim_rep("rep-1", "worker-a", dt.timedelta(minutes=5)) is not None
    running = store.rep_status("rep-1")
    assert running.sync_status(ItemKind.CONTACT, TO_MAIL) is SyncStatus.SYNC_IN_PROGRESS
    assert running.sync_status(ItemKind.EVENT, TO_MAIL) is SyncStatus.NOT_CONFIGURED
    clock.advance(minutes=6)  # the lease ran out: nothing runs any more
    assert store.rep_status("rep-1").sync_status(ItemKind.CONTACT, TO_MAIL) is SyncStatus.IN_SYNC


def test_status_is_kept_per_direction_only(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.open_cycle("rep-1").set_status(ItemKind.CONTACT, Direction.BOTH, SyncStatus.IN_SYNC)


def test_checks_update_only_what_is_named(store: StateStore) -> None:
    store.set_rep_checks("rep-1", mailbox_supported=True, recognized=False)
    store.set_rep_checks("rep-1", calendar_found=True, recognized=None)
    status = store.rep_status("rep-1")
    assert status.mailbox_supported is True
    assert status.recognized is None
    assert status.calendar_found is True
    assert status.contacts_folder_found is None
    with pytest.raises(TypeError):
        store.set_rep_checks("rep-1", outlook_integration=True)


def test_cycles_count_consecutive_failures(store: StateStore, clock: Clock) -> None:
    record = store.open_cycle("rep-1")
    assert store.close_cycle(record, error="gone") == 1
    assert store.rep_status("rep-1").last_cycle_started == clock.now
    assert store.close_cycle(store.open_cycle("rep-1")) == 0
    due = clock.now + dt.timedelta(minutes=5)
    assert store.cycle_finished("rep-1", error="mailbox gone", next_due=due) == 1
    assert store.cycle_finished("rep-1", error="still gone") == 2
    status = store.rep_status("rep-1")
    assert (status.consecutive_failures, status.last_error, status.next_due) == (
        2,
        "still gone",
        due,
    )
    assert store.cycle_finished("rep-1") == 0
    status = store.rep_status("rep-1")
    assert status.last_error is None and status.last_cycle_finished == clock.now
    store.set_next_due("rep-1", None)
    assert store.rep_status("rep-1").next_due is None


def test_reset_status_and_records_in_sync(store: StateStore) -> None:
    store.set_reset_status("rep-1", ResetStatus.MARKED)
    assert store.rep_status("rep-1").reset_status is ResetStatus.MARKED
    store.set_reset_status("rep-1", None)
    for i in range(3):
        store.save_link(Link("rep-1", ItemKind.EVENT, f"c{i}", f"m{i}", "1", "1", "h", "h"))
    status = store.rep_status("rep-1")
    assert status.reset_status is None
    assert status.records_in_sync == {ItemKind.EVENT: 3}


def test_all_reps(store: StateStore) -> None:
    store.set_rep_checks("rep-b", recognized=True)
    record = store.open_cycle("rep-a")
    record.set_status(ItemKind.CONTACT, TO_MAIL, SyncStatus.INITIAL_SYNC_IN_PROGRESS)
    store.write_statuses(record)
    statuses = store.rep_statuses()
    assert [s.rep_id for s in statuses] == ["rep-a", "rep-b"]
    assert statuses[0].sync == {(ItemKind.CONTACT, TO_MAIL): SyncStatus.INITIAL_SYNC_IN_PROGRESS}
    assert statuses[1].recognized is True and statuses[1].sync == {}
