"""Fixtures: a fresh store per test on SQLite, and on PostgreSQL when configured.

PostgreSQL variants run only with ``CRMSYNC_TEST_POSTGRES_URL`` set (a server URL whose
user may create databases); each test gets its own database, so xdist workers never meet.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crmsync.store import StateStore

POSTGRES_URL = os.environ.get("CRMSYNC_TEST_POSTGRES_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


class Clock:
    """A settable ``now`` for the store."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    yield from postgres_database()


def postgres_database() -> Iterator[str]:
    assert POSTGRES_URL
    name = f"crmsync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def open_store(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Callable[[], StateStore]]:
    """Opens (another) store on the test's database; all are closed after the test."""
    opened: list[StateStore] = []

    def _open() -> StateStore:
        store = StateStore(db_url, tmp_path / "secrets.key", clock=clock)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], StateStore]) -> StateStore:
    return open_store()
