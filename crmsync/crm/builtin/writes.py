"""The writes every path shares (Python API, `ItemSide`, JSONL import), on a Connection.

Each function expects to run inside a write transaction and takes its stamp first (see
`changefeed`). Ids are ``<prefix>_<uuid4 hex>``: unique across processes and imports
without a second shared sequence to contend on, and the prefix tells a contact id from an
event id in logs and on the command line. Any other string is accepted as a given id.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from crmsync.crm.builtin import tables
from crmsync.crm.builtin.changefeed import allocate_stamps, record_deletions, record_owner_moves
from crmsync.crm.builtin.errors import Duplicate, NotFound, StaleVersion
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


_MARKED = uuid.UUID("5d1c3f7e-6b8a-4f7e-9a51-0c2f8d4b6e13")


def marked_id(prefix: str, rep_id: str, marker: str) -> str:
    """The id a record created for ``rep_id`` from the mail item ``marker`` gets when free:
    known before the write, so a crashed cycle's successor can tell that create's
    deletion from a create that never happened."""
    return f"{prefix}_{uuid.uuid5(_MARKED, rep_id + chr(10) + marker).hex}"


def require_user(conn: Connection, user_id: str) -> None:
    """Raise `NotFound` unless a user has ``user_id``."""
    found = conn.execute(select(tables.users.c.id).where(tables.users.c.id == user_id)).first()
    if found is None:
        raise NotFound(f"no user with id {user_id!r}")


def check_record_type(kind: OwnedKind, record: Any) -> None:
    expected = CODECS[kind].record_type
    if not isinstance(record, expected):
        raise TypeError(f"a {kind} needs a {expected.__name__}, not {type(record).__name__}")


def insert_record(
    conn: Connection,
    kind: OwnedKind,
    owner_id: str,
    record: Any,
    record_id: str | None = None,
    marker: tuple[str, str] | None = None,
) -> Stored[Any]:
    """Insert one record owned by ``owner_id``; ``marker`` is ``(rep id, marker)`` to stamp.

    Raises `InvalidRecord`, `NotFound` (owner) or `Duplicate` (id taken).
    """
    codec = CODECS[kind]
    check_record_type(kind, record)
    row = codec.to_row(record)
    stamp = allocate_stamps(conn)
    require_user(conn, owner_id)
    record_id = record_id or new_id(codec.id_prefix)
    taken = conn.execute(select(codec.table.c.id).where(codec.table.c.id == record_id)).first()
    if taken is not None:
        raise Duplicate(f"a {kind} with id {record_id!r} already exists")
    conn.execute(insert(codec.table).values(**row, id=record_id, owner_id=owner_id, stamp=stamp))
    if marker is not None:
        rep_id, text = marker
        conn.execute(
            insert(tables.markers).values(
                kind=kind.value, record_id=record_id, rep_id=rep_id, marker=text
            )
        )
    return Stored(record_id, owner_id, str(stamp), codec.from_row(row))


def update_record(
    conn: Connection,
    kind: OwnedKind,
    record_id: str,
    record: Any,
    *,
    new_owner_id: str | None = None,
    expected_version: str | None = None,
    expected_owner_id: str | None = None,
    keep: tuple[str, ...] = (),
) -> Stored[Any]:
    """Replace a record's content (and owner, with ``new_owner_id``).

    ``keep`` names columns whose stored values survive the update. Raises `NotFound` when
    the record is missing or not owned by ``expected_owner_id``, `StaleVersion` when its
    version is not ``expected_version``, and `InvalidRecord` for bad content.
    """
    codec = CODECS[kind]
    table = codec.table
    check_record_type(kind, record)
    row = codec.to_row(record)
    stamp = allocate_stamps(conn)
    current = conn.execute(
        select(table.c.owner_id, table.c.stamp, *(table.c[k] for k in keep)).where(
            table.c.id == record_id
        )
    ).first()
    if current is None or expected_owner_id not in (None, current.owner_id):
        raise NotFound(f"no {kind} with id {record_id!r}")
    if expected_version is not None and str(current.stamp) != expected_version:
        raise StaleVersion(
            f"{kind} {record_id} is at version {current.stamp}, not {expected_version}"
        )
    for name in keep:
        row[name] = current._mapping[name]
    owner_id = new_owner_id or current.owner_id
    if owner_id != current.owner_id:
        require_user(conn, owner_id)
    conn.execute(
        update(table).where(table.c.id == record_id).values(**row, owner_id=owner_id, stamp=stamp)
    )
    record_owner_moves(conn, kind.value, [(record_id, current.owner_id, owner_id)], stamp)
    return Stored(record_id, owner_id, str(stamp), codec.from_row(row))


def delete_record(
    conn: Connection,
    kind: OwnedKind,
    record_id: str,
    *,
    expected_version: str | None = None,
    expected_owner_id: str | None = None,
) -> bool:
    """Delete a record, leaving a tombstone; returns ``False`` if it was not there.

    A record owned by someone other than ``expected_owner_id`` counts as not there.
    Raises `StaleVersion` when the version is not ``expected_version``.
    """
    table = CODECS[kind].table
    stamp = allocate_stamps(conn)
    current = conn.execute(
        select(table.c.owner_id, table.c.stamp).where(table.c.id == record_id)
    ).first()
    if current is None or expected_owner_id not in (None, current.owner_id):
        return False
    if expected_version is not None and str(current.stamp) != expected_version:
        raise StaleVersion(
            f"{kind} {record_id} is at version {current.stamp}, not {expected_version}"
        )
    # Relations go with the record through ON DELETE CASCADE.
    conn.execute(delete(table).where(table.c.id == record_id))
    record_deletions(conn, kind.value, [(record_id, current.owner_id)], stamp)
    return True


def replace_custom_values(conn: Connection, contact_id: str, values: dict[str, str]) -> None:
    """Set the contact's custom values; ``""`` clears one. The caller stamps the contact."""
    cv = tables.contact_custom_values
    if not values:
        return
    conn.execute(delete(cv).where(cv.c.contact_id == contact_id, cv.c.name.in_(values)))
    kept = [{"contact_id": contact_id, "name": n, "value": v} for n, v in values.items() if v]
    if kept:
        conn.execute(insert(cv), kept)


def touch_contact(conn: Connection, contact_id: str) -> str:
    """Give the contact a new version (its custom values changed)."""
    table = tables.contacts
    stamp = allocate_stamps(conn)
    conn.execute(update(table).where(table.c.id == contact_id).values(stamp=stamp))
    return str(stamp)


def custom_values_of(conn: Connection, contact_ids: list[str]) -> dict[str, dict[str, str]]:
    """Each listed contact's custom values by field name (contacts without any: absent)."""
    cv = tables.contact_custom_values
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(contact_ids), 500):
        chunk = contact_ids[start : start + 500]
        rows = conn.execute(
            select(cv.c.contact_id, cv.c.name, cv.c.value).where(cv.c.contact_id.in_(chunk))
        )
        for contact_id, name, value in rows:
            found.setdefault(contact_id, {})[name] = value
    return found
