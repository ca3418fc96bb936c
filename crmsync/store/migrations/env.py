"""Alembic environment: runs on the connection the store passes, or on a URL for the CLI.

The store calls migrations programmatically with ``config.attributes["connection"]``. For
writing new migrations, developers run the Alembic CLI with ``alembic.ini`` beside this
file and ``CRMSYNC_STATE_URL`` pointing at a scratch database.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from crmsync.store.schema import UTCDateTime, metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import the store's code, which changes over time: a UTCDateTime
    # column is written to migration files as the plain type it stores.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("CRMSYNC_STATE_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set CRMSYNC_STATE_URL to the database to migrate")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
_run_online()
