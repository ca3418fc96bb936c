"""The built-in CRM's database: its engine and the transactions every part runs in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select

from crmsync.crm.builtin.errors import NotFound
from crmsync.crm.builtin.rows import CODECS, OwnedKind


def make_engine(url: str) -> Engine:
    """An engine for the CRM's database at ``url``; on SQLite, transactions begin as
    `CrmTransactions` asks (``BEGIN IMMEDIATE`` for writes)."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling starts transactions late and never for
            # reads; we issue BEGIN ourselves (below) so reads see one snapshot and writes
            # take the write lock up front instead of failing to upgrade a read lock.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if url.rstrip("/") not in ("sqlite:", "sqlite://") and ":memory:" not in url:
                # Readers (sync cycles) then never wait for a writer (an import).
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("crm_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class CrmTransactions:
    """Read and write transactions on ``engine`` (set by `BuiltinCrm`)."""

    engine: Engine

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction: committed on normal exit, rolled back on an exception."""
        with self.engine.connect() as conn:
            conn.execution_options(crm_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction (one snapshot on SQLite)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @staticmethod
    def _require(conn: Connection, kind: OwnedKind, record_id: str) -> None:
        table = CODECS[kind].table
        if conn.execute(select(table.c.id).where(table.c.id == record_id)).first() is None:
            raise NotFound(f"no {kind} with id {record_id!r}")
