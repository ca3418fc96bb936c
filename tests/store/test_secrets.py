"""Secrets are encrypted at rest, the key file is private, and values never leak."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.store import SecretError, StateStore
from crmsync.store.configs import DEFAULT_ORG
from crmsync.store.database import display_url
from crmsync.store.encrypted_secrets import load_or_create_key
from crmsync.store.settings_versions import settings_version

PLAINTEXT = "hunter2-service-account-password"


def test_round_trip_and_replace(store: StateStore) -> None:
    assert store.get_secret("ews.password") is None
    store.set_secret("ews.password", PLAINTEXT)
    assert store.get_secret("ews.password") == PLAINTEXT
    store.set_secret("ews.password", "changed")
    assert store.get_secret("ews.password") == "changed"
    assert store.secret_names() == ["ews.password"]
    assert store.delete_secret("ews.password") is True
    assert store.get_secret("ews.password") is None


def version_of(store: StateStore) -> int:
    with store.engine.connect() as conn:
        return settings_version(conn, DEFAULT_ORG)


def test_saving_or_deleting_a_secret_moves_the_settings_version(store: StateStore) -> None:
    # A process holding a mail server or CRM opened with the old value looks again.
    versions = [version_of(store)]
    store.set_secret("ews.password", PLAINTEXT)
    versions.append(version_of(store))
    store.delete_secret("ews.password")
    versions.append(version_of(store))
    assert versions[0] < versions[1] < versions[2]
    store.delete_secret("ews.password")  # nothing there: nothing moves
    assert version_of(store) == versions[2]


def test_a_reps_login_leaves_the_settings_version_the_org_secrets_move_it(
    store: StateStore,
) -> None:
    # Read at each use, a rep's login is no reason for every process to look again.
    before = version_of(store)
    store.set_rep_credentials("Ann@example.com", "ann", "app-password")
    store.mark_rep_credentials_refused("ann@example.com", "401 Unauthorized")
    assert store.rep_credentials("ann@example.com") is not None
    assert store.delete_rep_credentials("ann@example.com") is True
    assert version_of(store) == before
    store.set_secret(SERVICE_PASSWORD, PLAINTEXT)
    moved = version_of(store)
    assert moved > before
    store.set_secret(SALESFORCE_SECRET, "-----BEGIN PRIVATE KEY-----")
    assert version_of(store) > moved


def test_key_file_is_created_private(store: StateStore, tmp_path: Path) -> None:
    key = tmp_path / "secrets.key"
    assert not key.exists()  # created on first use, not on open
    store.set_secret("x", "y")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert load_or_create_key(key) == key.read_bytes().strip()
    assert list(tmp_path.glob(".secrets.key.*")) == []  # no temporary file left behind


def test_plaintext_is_not_in_the_database_file(store: StateStore, tmp_path: Path) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("reads the SQLite file's bytes")
    store.set_secret("ews.password", PLAINTEXT)
    store.close()  # checkpoint the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))
    assert b"ews.password" in raw  # the name is stored in the clear, so the file was read
    assert PLAINTEXT.encode() not in raw


def test_wrong_key_raises_without_the_value(store: StateStore, tmp_path: Path, db_url: str) -> None:
    store.set_secret("ews.password", PLAINTEXT)
    other = StateStore(db_url, tmp_path / "another.key")
    try:
        with pytest.raises(SecretError) as caught:
            other.get_secret("ews.password")
    finally:
        other.close()
    assert PLAINTEXT not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_repr_shows_no_secret(store: StateStore) -> None:
    store.set_secret("ews.password", PLAINTEXT)
    assert PLAINTEXT not in repr(store)
    assert display_url("postgresql+psycopg://crm:pw-123@db/state") == (
        "postgresql+psycopg://crm:***@db/state"
    )
