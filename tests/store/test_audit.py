"""The audit trail: history by either side's id, and retention."""

from __future__ import annotations

import datetime as dt

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, Side
from crmsync.store import StateStore
from tests.store.conftest import Clock


def entry(at: dt.datetime, crm_id: str | None, mail_id: str | None, rule: str) -> AuditEntry:
    return AuditEntry("rep-1", ItemKind.EVENT, crm_id, mail_id, "update", Side.MAIL, rule, at)


def test_history_follows_the_partner_id_and_is_in_time_order(
    store: StateStore, clock: Clock
) -> None:
    t0 = clock.now
    store.record_audit(
        [
            entry(t0, "c1", None, "new in crm"),
            entry(t0 + dt.timedelta(minutes=1), "c1", "m1", "changed in crm"),
            entry(t0 + dt.timedelta(minutes=2), None, "m1", "unreadable item"),
            entry(t0, "c2", "m2", "someone else"),
        ]
    )
    by_crm = [e.rule for e in store.item_history("c1")]
    assert by_crm == ["new in crm", "changed in crm", "unreadable item"]
    assert [e.rule for e in store.item_history("m1")] == by_crm
    assert store.item_history("unknown") == []


def test_old_entries_are_pruned(store: StateStore, clock: Clock) -> None:
    old, recent = clock.now - dt.timedelta(days=40), clock.now - dt.timedelta(days=1)
    store.record_audit([entry(old, "c1", "m1", "old"), entry(recent, "c1", "m1", "recent")])
    assert store.prune_audit(clock.now - dt.timedelta(days=30)) == 1
    assert [e.rule for e in store.item_history("c1")] == ["recent"]
