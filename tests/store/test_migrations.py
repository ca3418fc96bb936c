"""The schema comes from the Alembic migrations, and the models never drift from them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from crmsync.store import SchemaTooNew, StateStore
from crmsync.store.database import (
    alembic_config,
    current_revision,
    head_revision,
    migrate,
    open_engine,
)
from crmsync.store.schema import metadata


def test_first_open_creates_schema_through_alembic(store: StateStore) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert "alembic_version" in tables
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert current_revision(store.engine) == head_revision()


def test_second_open_is_a_no_op(open_store: Callable[[], StateStore]) -> None:
    first = open_store()
    first.set_next_due("rep-1", None)
    second = open_store()
    assert migrate(second.engine) is False
    assert current_revision(second.engine) == head_revision()
    assert [s.rep_id for s in second.rep_statuses()] == ["rep-1"]


def test_models_match_migrations(store: StateStore) -> None:
    """What ``alembic check`` does: autogenerate finds nothing to change."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []
        command.check(alembic_config(conn))


def test_unknown_revision_is_refused(store: StateStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine = open_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        with pytest.raises(SchemaTooNew):
            migrate(engine)
    finally:
        engine.dispose()


def test_sqlite_settings(store: StateStore) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_concurrent_first_opens_migrate_once(db_url: str, tmp_path: Path) -> None:
    def open_and_close(_: int) -> str | None:
        store = StateStore(db_url, tmp_path / "secrets.key")
        try:
            return current_revision(store.engine)
        finally:
            store.close()

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(open_and_close, range(4))) == {head_revision()}


def test_in_memory_database(tmp_path: Path) -> None:
    with StateStore("sqlite://", tmp_path / "secrets.key") as store:
        store.set_next_due("rep-1", None)
        assert [s.rep_id for s in store.rep_statuses()] == ["rep-1"]
