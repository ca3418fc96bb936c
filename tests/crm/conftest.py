"""Fixtures for the built-in CRM: a fresh database per test.

SQLite files live in ``tmp_path``. With ``CRMSYNC_TEST_POSTGRES_URL`` set (a URL to a
server where the user may create databases, e.g. ``postgresql+psycopg://u:p@host/postgres``)
every CRM test also runs against a throw-away PostgreSQL database of its own, so xdist
workers never share one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.records import User

POSTGRES_URL = os.environ.get("CRMSYNC_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'crm-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    assert POSTGRES_URL is not None
    name = f"crmsync_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def crm(crm_url: str) -> Iterator[BuiltinCrm]:
    with BuiltinCrm(crm_url) as opened:
        yield opened


@pytest.fixture
def ann(crm: BuiltinCrm) -> User:
    return crm.create_user("ann@example.com", "Ann", time_zone="Europe/Paris")


@pytest.fixture
def bob(crm: BuiltinCrm) -> User:
    return crm.create_user("bob@example.com", "Bob")
