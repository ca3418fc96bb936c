"""What a cycle's opening read gives it (issue 16): the org's settings from memory while
no save moved them, in this process or another, and the rep's cursors and write intents
(`ReadAhead`) as the cycle itself changes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from sqlalchemy import event

from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.crm_settings import CrmKind, CrmSettings
from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import OrgSettings, SyncConfig
from crmsync.domain.sync import AuditEntry, Link, Side, WriteIntent, WriteOperation
from crmsync.store import LinkConflict, ReadAhead, StateStore

ANN = User("ann", "ann@example.com", profile_id="sales")
AT = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
SALESFORCE = CrmSettings(CrmKind.SALESFORCE, my_domain_url="https://acme.my.salesforce.com")


@contextmanager
def statements(owner: StateStore | BuiltinCrm) -> Iterator[list[str]]:
    """The SQL statements ``owner``'s engine runs inside the block (a BEGIN counts)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(owner.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(owner.engine, "before_cursor_execute", note)


def test_a_save_by_another_process_reaches_the_next_cycle(
    open_store: Callable[[], StateStore],
) -> None:
    worker, console = open_store(), open_store()
    first = worker.open_cycle(ANN.id).org
    assert first is not None and first.settings == OrgSettings()
    assert first.config_of(ANN) is None and first.crm == CrmSettings()

    console.save_org_settings(OrgSettings(server_url="https://dav.example.com"))
    console.save_config(SyncConfig("Sales", profile_ids=("sales",)))
    console.save_crm_settings(SALESFORCE)
    seen = worker.open_cycle(ANN.id).org
    assert seen is not None
    assert seen.settings.server_url == "https://dav.example.com"
    assert seen.crm == SALESFORCE
    config = seen.config_of(ANN)
    assert config is not None and config.name == "Sales"

    console.replace_configs([SyncConfig("Direct", user_ids=(ANN.id,))])
    replaced = worker.open_cycle(ANN.id).org
    assert replaced is not None
    assert [c.name for c in replaced.configs] == ["Direct"]
    console.delete_config("Direct")
    emptied = worker.open_cycle(ANN.id).org
    assert emptied is not None and emptied.config_of(ANN) is None


def test_unchanged_settings_are_not_read_again(store: StateStore) -> None:
    store.save_config(SyncConfig("Sales", user_ids=(ANN.id,)))
    kept = store.open_cycle(ANN.id).org
    with statements(store) as seen:
        again = store.open_cycle(ANN.id).org
    assert again is kept
    read = " ".join(seen)
    assert "org_settings" not in read and "sync_configs" not in read and "crm_settings" not in read
    assert "settings_versions" in read  # the one number that says whether they still hold


def test_the_cycles_configuration_follows_the_stores_rule(store: StateStore) -> None:
    store.save_config(SyncConfig("By profile", profile_ids=("sales",)))
    store.save_config(SyncConfig("Direct", user_ids=("alice",)))
    store.save_config(SyncConfig("Inactive", active=False, user_ids=("bob",)))
    users = [
        User("alice", "a@x.test", profile_id="sales"),
        User("bob", "b@x.test", profile_id="sales"),
        User("dave", "d@x.test"),
    ]
    org = store.open_cycle("alice").org
    assert org is not None
    for user in users:
        assert org.config_of(user) == store.effective_config(user)


def intent(crm_id: str) -> WriteIntent:
    return WriteIntent(ANN.id, ItemKind.CONTACT, WriteOperation.UPDATE, Side.MAIL, crm_id, "/m")


def test_read_ahead_answers_as_the_store_after_the_cycles_own_writes(store: StateStore) -> None:
    store.save_cursor(ANN.id, ItemKind.CONTACT, Side.MAIL, "token-1")
    store.record_intents(ANN.id, ItemKind.CONTACT, [intent("c1")])
    record = store.open_cycle(ANN.id)
    ahead = ReadAhead(store, record)
    with statements(store) as seen:
        assert ahead.cursor(ANN.id, ItemKind.CONTACT, Side.MAIL) == "token-1"
        assert ahead.cursor(ANN.id, ItemKind.EVENT, Side.CRM) is None
        assert ahead.pending_intents(ANN.id, ItemKind.CONTACT) == [intent("c1")]
        assert ahead.pending_intents(ANN.id, ItemKind.EVENT) == []
    assert seen == []  # all of it came with the opening read

    ahead.save_cursors(ANN.id, ItemKind.CONTACT, {Side.MAIL: "token-2", Side.CRM: "3"})
    ahead.record_intents(ANN.id, ItemKind.CONTACT, [intent("c2")])
    for reader in (ahead, store):
        assert reader.cursor(ANN.id, ItemKind.CONTACT, Side.MAIL) == "token-2"
        assert reader.cursor(ANN.id, ItemKind.CONTACT, Side.CRM) == "3"
        assert reader.pending_intents(ANN.id, ItemKind.CONTACT) == [intent("c1"), intent("c2")]
    settled = [intent("c1").key, intent("c2").key]
    ahead.apply_links(ANN.id, ItemKind.CONTACT, [link("c1", "/m1")], [], settled)
    with statements(store) as seen:
        assert ahead.pending_intents(ANN.id, ItemKind.CONTACT) == []
    assert seen == []  # every intent known to be pending was settled
    assert store.pending_intents(ANN.id, ItemKind.CONTACT) == []
    ahead.save_cursors(ANN.id, ItemKind.CONTACT, {Side.MAIL: None})
    assert ahead.cursor(ANN.id, ItemKind.CONTACT, Side.MAIL) is None

    ahead.save_cursors(ANN.id, ItemKind.EVENT, {Side.CRM: "7"})
    ahead.clear_rep(ANN.id)  # reset sync
    assert ahead.cursor(ANN.id, ItemKind.EVENT, Side.CRM) is None
    assert ahead.pending_intents(ANN.id, ItemKind.EVENT) == []
    assert store.cursor(ANN.id, ItemKind.EVENT, Side.CRM) is None
    assert ahead.links(ANN.id, ItemKind.CONTACT) == store.links(ANN.id, ItemKind.CONTACT) == []


def link(crm_id: str, mail_id: str, version: str = "1") -> Link:
    return Link(ANN.id, ItemKind.CONTACT, crm_id, mail_id, version, "e" + version, "h", "h")


def test_read_ahead_reads_the_links_once_and_follows_its_own_link_writes(
    store: StateStore,
) -> None:
    store.apply_links(ANN.id, ItemKind.CONTACT, [link("c2", "/m2"), link("c5", "/m5")], [])
    ahead = ReadAhead(store, store.open_cycle(ANN.id))
    assert ahead.links(ANN.id, ItemKind.CONTACT) == store.links(ANN.id, ItemKind.CONTACT)
    ahead.apply_links(ANN.id, ItemKind.CONTACT, [link("c1", "/m1"), link("c5", "/m5", "2")], ["c2"])
    with statements(store) as seen:
        held = ahead.links(ANN.id, ItemKind.CONTACT)
    assert seen == []
    assert held == store.links(ANN.id, ItemKind.CONTACT)  # in CRM id order, as the store's
    assert [k.crm_id for k in held] == ["c1", "c5"]
    with pytest.raises(LinkConflict):  # a mail item linked twice: refused, links as stored
        ahead.apply_links(ANN.id, ItemKind.CONTACT, [link("c9", "/m1")], [])
    assert ahead.links(ANN.id, ItemKind.CONTACT) == store.links(ANN.id, ItemKind.CONTACT)


def test_read_ahead_writes_audit_entries_with_the_cursors(store: StateStore) -> None:
    ahead = ReadAhead(store, store.open_cycle(ANN.id))
    entry = AuditEntry(ANN.id, ItemKind.CONTACT, "c1", "/m1", "update", Side.MAIL, "edited", AT)
    ahead.save_cursors(ANN.id, ItemKind.CONTACT, {Side.CRM: "4"}, [entry])
    assert store.rep_history(ANN.id) == [entry]
    ahead.record_audit([replace(entry, crm_id="c2")])  # a kind that saved no cursors
    assert [e.crm_id for e in store.rep_history(ANN.id)] == ["c2", "c1"]


def test_read_ahead_leaves_other_reps_to_the_store(store: StateStore) -> None:
    store.save_cursor("bob", ItemKind.CONTACT, Side.CRM, "5")
    ahead = ReadAhead(store, store.open_cycle(ANN.id))
    # One rep's cycle state, as FencedState: another rep is the store's to answer.
    with pytest.raises(ValueError, match="bob"):
        ahead.cursor("bob", ItemKind.CONTACT, Side.CRM)
    assert store.cursor("bob", ItemKind.CONTACT, Side.CRM) == "5"
    store.record_intents("bob", ItemKind.CONTACT, [replace(intent("c9"), rep_id="bob")])
    with pytest.raises(ValueError, match="bob"):
        ahead.pending_intents("bob", ItemKind.CONTACT)
    assert [i.crm_id for i in store.pending_intents("bob", ItemKind.CONTACT)] == ["c9"]
    with pytest.raises(ValueError, match="bob"):  # and nothing is written for it
        ahead.apply_links("bob", ItemKind.CONTACT, [replace(link("c9", "/m9"), rep_id="bob")], [])
    assert store.links("bob", ItemKind.CONTACT) == []
