"""The org's settings version: moved by every save of its settings, CRM section or
configurations, and of the service password or Salesforce key (a secret saved with
``versioned``, `encrypted_secrets`), in the save's own transaction, so that a process
holding them in memory (`crmsync.store.org_snapshot`), or a mail server or CRM opened with
them, learns with one read whether they still hold. A rep's own login does not move it."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from crmsync.store import schema
from crmsync.store.database import insert_for

_V = schema.settings_versions

_VERSION = select(_V.c.version).where(_V.c.org_id == bindparam("org_id"))


def settings_version(conn: Connection, org_id: str) -> int:
    """The org's settings version (0 before its first save)."""
    return conn.execute(_VERSION, {"org_id": org_id}).scalar_one_or_none() or 0


def bump_settings_version(conn: Connection, org_id: str) -> None:
    """Move the org's settings version; call it in the transaction of the save."""
    stmt = insert_for(conn)(_V).values(org_id=org_id, version=1)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["org_id"], set_={"version": _V.c.version + 1})
    )
