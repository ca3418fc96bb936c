"""Org settings and sync configurations: converter, round trips, effective configuration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.domain.records import User
from crmsync.domain.settings import (
    ConflictBehaviour,
    ConnectionMethod,
    ContactSettings,
    Direction,
    EventSettings,
    OrgSettings,
    SyncConfig,
)
from crmsync.store import ConfigConflict, StateStore
from crmsync.store.codec import from_json, to_json

# Text the databases can hold: PostgreSQL refuses NUL, no database wants lone surrogates.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
IDS = st.lists(TEXT.filter(bool), max_size=4).map(tuple)

CONFIGS = st.builds(
    SyncConfig,
    name=TEXT.filter(bool),
    active=st.booleans(),
    description=TEXT,
    user_ids=IDS,
    profile_ids=IDS,
    contacts=st.builds(ContactSettings),
    events=st.builds(EventSettings),
)
ORG_SETTINGS = st.builds(
    OrgSettings,
    connection_method=st.sampled_from(ConnectionMethod),
    server_url=TEXT,
    service_account=TEXT,
    principal_path=TEXT,
    additional_domains=st.lists(TEXT).map(tuple),
    contacts_folder=TEXT,
    event_category=TEXT,
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateStore]:
    """One SQLite store for Hypothesis examples; each example uses its own org."""
    home: Path = tmp_path_factory.mktemp("configs")
    store = StateStore(f"sqlite:///{home / 'state.sqlite'}", home / "secrets.key")
    yield store
    store.close()


def normalised(config: SyncConfig) -> SyncConfig:
    return SyncConfig(
        name=config.name,
        active=config.active,
        description=config.description,
        user_ids=tuple(sorted(set(config.user_ids))),
        profile_ids=tuple(sorted(set(config.profile_ids))),
        contacts=config.contacts,
        events=config.events,
    )


@given(st.one_of(CONFIGS, ORG_SETTINGS))
def test_codec_round_trip(value: Any) -> None:
    assert from_json(type(value), to_json(value)) == value


def test_codec_defaults_missing_fields_and_ignores_unknown_ones() -> None:
    stored = {"direction": "crm_to_mail", "added_in_a_later_version": 1}
    assert from_json(ContactSettings, stored) == ContactSettings(direction=Direction.CRM_TO_MAIL)


def test_org_settings_saved_before_the_overdue_threshold_read_with_its_default() -> None:
    saved = to_json(OrgSettings(mass_delete_count=70))
    del saved["overdue_after_minutes"]
    assert from_json(OrgSettings, saved) == OrgSettings(mass_delete_count=70)


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (ContactSettings, {"direction": "sideways"}),
        (ContactSettings, {"propagate_deletions": "yes"}),
        (OrgSettings, {"additional_domains": "example.com"}),
        (ContactSettings, ["not", "an", "object"]),
    ],
)
def test_codec_refuses_values_of_the_wrong_type(cls: type, data: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        from_json(cls, data)


@settings(max_examples=50, deadline=None)
@given(config=CONFIGS, org=ORG_SETTINGS)
def test_store_round_trip(shared_store: StateStore, config: SyncConfig, org: OrgSettings) -> None:
    org_id = uuid.uuid4().hex
    shared_store.save_config(config, org_id)
    shared_store.save_org_settings(org, org_id)
    assert shared_store.config(config.name, org_id) == normalised(config)
    assert shared_store.configs(org_id) == [normalised(config)]
    assert shared_store.org_settings(org_id) == org


def test_round_trip_on_each_database(store: StateStore) -> None:
    config = SyncConfig(
        name="Sales",
        description="Reps in the field",
        user_ids=("u2", "u1"),
        profile_ids=("p1",),
        contacts=ContactSettings(Direction.MAIL_TO_CRM, ConflictBehaviour.MAIL_WINS, True),
        events=EventSettings(sync_private=True, sync_series=False),
    )
    store.save_config(config)
    assert store.config("Sales") == normalised(config)
    org = OrgSettings(ConnectionMethod.GRAPH, additional_domains=("b.example", "a.example"))
    store.save_org_settings(org)
    assert store.org_settings() == org
    assert store.org_settings("elsewhere") == OrgSettings()


def test_save_replaces_by_name_and_delete(store: StateStore) -> None:
    store.save_config(SyncConfig("Sales", user_ids=("u1",)))
    store.save_config(SyncConfig("Sales", active=False, user_ids=("u2",)))
    assert store.configs() == [SyncConfig("Sales", active=False, user_ids=("u2",))]
    assert store.delete_config("Sales") is True
    assert store.delete_config("Sales") is False
    assert store.configs() == []


def test_one_configuration_per_user_and_profile_per_org(store: StateStore) -> None:
    store.save_config(SyncConfig("A", user_ids=("u1",), profile_ids=("p1",)))
    with pytest.raises(ConfigConflict):
        store.save_config(SyncConfig("B", user_ids=("u1",)))
    with pytest.raises(ConfigConflict):
        store.save_config(SyncConfig("B", profile_ids=("p1",)))
    assert store.config("B") is None
    store.save_config(SyncConfig("B", user_ids=("u1",)), org_id="other-org")


def test_effective_configuration(store: StateStore) -> None:
    store.save_config(SyncConfig("By profile", profile_ids=("sales",)))
    store.save_config(SyncConfig("Direct", user_ids=("alice",)))
    store.save_config(SyncConfig("Inactive", active=False, user_ids=("bob",)))
    alice = User("alice", "alice@example.com", profile_id="sales")
    bob = User("bob", "bob@example.com", profile_id="sales")
    carol = User("carol", "carol@example.com", profile_id="sales")
    dave = User("dave", "dave@example.com", profile_id=None)

    def name(user: User) -> str | None:
        found = store.effective_config(user)
        return found.name if found else None

    assert name(alice) == "Direct"  # a direct assignment beats the profile's
    assert name(bob) == "By profile"  # an inactive direct one does not count
    assert name(carol) == "By profile"
    assert name(dave) is None
    store.save_config(SyncConfig("By profile", active=False, profile_ids=("sales",)))
    assert name(carol) is None
    assert store.effective_config(alice, org_id="other-org") is None
