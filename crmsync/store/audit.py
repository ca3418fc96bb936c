"""The audit trail: what each cycle did or skipped per item, and the rule behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, Side
from crmsync.store import schema
from crmsync.store.database import StoreBase

_A = schema.audit_trail


def insert_audit(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    """Append ``entries`` in ``conn``'s transaction."""
    if not entries:
        return
    rows = [
        {
            "rep_id": e.rep_id,
            "kind": e.kind.value,
            "crm_id": e.crm_id,
            "mail_id": e.mail_id,
            "action": e.action,
            "target": e.target.value if e.target else None,
            "rule": e.rule,
            "error": e.error,
            "at": e.at,
        }
        for e in entries
    ]
    conn.execute(insert(_A), rows)


class AuditMixin(StoreBase):
    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` in one transaction."""
        if not entries:
            return
        with self._write(None) as conn:
            insert_audit(conn, entries)

    def item_history(self, item_id: str) -> list[AuditEntry]:
        """Every entry about the item with this CRM or mail-server id, oldest first; the
        partner's id is followed too, so either side's id gives the whole history."""
        with self._read() as conn:
            partners = {item_id}
            for row in conn.execute(
                select(_A.c.crm_id, _A.c.mail_id).where(
                    or_(_A.c.crm_id == item_id, _A.c.mail_id == item_id)
                )
            ):
                partners.update(i for i in row if i)
            rows = conn.execute(
                select(_A)
                .where(or_(_A.c.crm_id.in_(partners), _A.c.mail_id.in_(partners)))
                .order_by(_A.c.at, _A.c.id)
            ).mappings()
            return [_entry(r) for r in rows]

    def rep_history(self, rep_id: str, limit: int = 50, offset: int = 0) -> list[AuditEntry]:
        """The rep's newest entries, newest first, from the ``offset``-th."""
        with self._read() as conn:
            rows = conn.execute(
                select(_A)
                .where(_A.c.rep_id == rep_id)
                .order_by(_A.c.at.desc(), _A.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).mappings()
            return [_entry(r) for r in rows]

    def count_rep_history(self, rep_id: str) -> int:
        with self._read() as conn:
            return conn.execute(
                select(func.count()).select_from(_A).where(_A.c.rep_id == rep_id)
            ).scalar_one()

    def prune_audit(self, older_than: dt.datetime) -> int:
        """Drop entries older than ``older_than`` (the retention setting); returns how many."""
        with self._write(None) as conn:
            return conn.execute(delete(_A).where(_A.c.at < older_than)).rowcount


def _entry(r: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        r["rep_id"],
        ItemKind(r["kind"]),
        r["crm_id"],
        r["mail_id"],
        r["action"],
        Side(r["target"]) if r["target"] else None,
        r["rule"],
        r["at"],
        r["error"],
    )
