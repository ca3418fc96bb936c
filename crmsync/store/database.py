"""Opening the database: engine settings, migrations and the transaction helpers.

Everything else in the store builds on `StoreBase`, which owns the engine and hands out
read and write transactions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, Table, create_engine, event, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.expression import Executable

from crmsync.store import schema
from crmsync.store.exceptions import LeaseLost, SchemaTooNew

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# How long a SQLite writer waits for another one before giving up, in milliseconds. A
# cycle's writes are short, so waiting is always better than failing the item.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Any constant works; it only has to be the same for every crmsync process.
_MIGRATION_LOCK = 0x63726D73796E63

# Marks a connection whose next transaction must take SQLite's write lock up front.
_BEGIN_OPTION = "crmsync_sqlite_begin"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def display_url(url: str | URL) -> str:
    """``url`` with its password masked, for reprs and log lines."""
    return make_url(url).render_as_string(hide_password=True)


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the store's settings.

    SQLite: WAL journal, a busy timeout, foreign keys on, and real ``BEGIN`` statements
    (the driver's own transaction handling skips them for reads). Parameters are hidden
    from error messages and logs, so no stored value ever leaks through an exception.
    An in-memory SQLite URL (``sqlite://``) gets one shared connection: fine for a
    single-threaded test, not for concurrent use.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Every connection to ":memory:" opens a new, empty database: share one instead.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the "begin" listener).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        # The timeout first: switching a new database to WAL needs a lock, too.
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL never corrupts the database; a power cut may lose the last
        # commits, which the engine recovers from by markers (DESIGN rule 5). It makes each
        # small commit several times cheaper than FULL.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock at BEGIN: a deferred transaction that reads first
        # and writes later fails at once (SQLITE_BUSY_SNAPSHOT) instead of waiting.
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, bound to ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration this version of crmsync ships."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return heads[0] if heads else None


def migrate(engine: Engine) -> bool:
    """Bring the schema to the newest migration; returns whether anything was applied.

    Safe to call from several processes at once: on SQLite the migration holds the write
    lock, and an already current database costs one query. Raises `SchemaTooNew` when the
    database carries a revision this crmsync does not know.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return False
    if current is not None and not _known(current):
        raise SchemaTooNew(f"database is at unknown revision {current!r}; upgrade crmsync")
    with write_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Serialise concurrent first opens; SQLite's write lock already does.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), "head")
    return True


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on normal exit."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


def insert_for(conn: Connection) -> Callable[[Table], Any]:
    """The dialect's ``insert`` construct, which offers ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert
    if conn.dialect.name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"unsupported database: {conn.dialect.name}")


def upsert_once(
    conn: Connection, table: Table, build: Callable[[Any, str], Executable]
) -> Executable:
    """``table``'s upsert for ``conn``'s dialect: ``build(insert, dialect name)`` with
    the dialect's INSERT into ``table`` (`insert_for`), built on first use per dialect and
    table and reused after. Run with parameters, SQLAlchemy's statement cache then makes
    each run of a hot statement cost little more than the driver call."""
    key = (conn.dialect.name, table.name)
    stmt = _UPSERTS.get(key)
    if stmt is None:
        stmt = _UPSERTS[key] = build(insert_for(conn)(table), conn.dialect.name)
    return stmt


_UPSERTS: dict[tuple[str, str], Executable] = {}


@dataclass(frozen=True)
class Fence:
    """A rep's lease as one worker holds it: writes under it require the fence unchanged."""

    rep_id: str
    number: int


class StoreBase:
    """The engine and transaction helpers the store's parts share."""

    def __init__(self, url: str, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._url = make_url(url)
        self._clock = clock
        self._engine = open_engine(url)
        try:
            migrate(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Release every pooled connection; the store is unusable afterwards."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_url(self._url)!r})"

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, fence: Fence | None = None) -> Iterator[Connection]:
        """A write transaction; with ``fence``, first checks it and raises `LeaseLost`.

        The check is an UPDATE of the rep's row, so the row stays locked (PostgreSQL) or
        the database write-locked (SQLite) until commit: a claim by another worker can
        not slip in between the check and the writes.
        """
        with write_connection(self._engine) as conn:
            if fence is not None:
                _check_fence(conn, fence)
            yield conn


def _check_fence(conn: Connection, fence: Fence) -> None:
    reps = schema.reps
    touched = conn.execute(
        update(reps)
        .where(reps.c.rep_id == fence.rep_id, reps.c.fence == fence.number)
        .values(fence=reps.c.fence)
    ).rowcount
    if touched != 1:
        raise LeaseLost(f"lease of rep {fence.rep_id!r} moved past fence {fence.number}")


def ensure_rep(conn: Connection, rep_id: str) -> None:
    """Create the rep's status row if it does not exist yet."""
    stmt = insert_for(conn)(schema.reps).values(rep_id=rep_id)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["rep_id"]))
