"""Links, cursors and write intents: what the engine reads and writes every cycle (DESIGN
rules 1, 2 and 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, Link, Side, WriteIntent, WriteOperation
from crmsync.store import schema
from crmsync.store.audit import insert_audit
from crmsync.store.database import Fence, StoreBase, upsert_once
from crmsync.store.exceptions import LinkConflict

_L = schema.links
_C = schema.cursors
_I = schema.write_intents

_LINK_FIELDS = ("crm_id", "mail_id", "crm_version", "mail_version", "crm_hash", "mail_hash")
INTENT_FIELDS = (
    "intent_key",
    "operation",
    "target",
    "crm_id",
    "mail_id",
    "source_version",
    "source_hash",
    "previous_hash",
    "replaces",
    "previous_version",
    "target_cursor",
)


# Built once: a cycle that finds changes reads them per kind.
_LINKS = (
    select(*(_L.c[f] for f in _LINK_FIELDS), _L.c.detached)
    .where(_L.c.rep_id == bindparam("rep_id"), _L.c.kind == bindparam("kind"))
    .order_by(_L.c.crm_id)
)


class LinksMixin(StoreBase):
    """Links (one row per synced pair) and change cursors, per rep and item kind."""

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]:
        """Every link of the rep and kind, in one query, ordered by CRM id."""
        with self._read() as conn:
            rows = conn.execute(_LINKS, {"rep_id": rep_id, "kind": kind.value}).all()
        return [
            Link(rep_id, kind, *row[:-1], detached=Side(row[-1]) if row[-1] else None)
            for row in rows
        ]

    def count_links(self, rep_id: str, kind: ItemKind) -> int:
        """The spec's "Records in sync": how many pairs of the rep and kind still sync
        (detached ones left out)."""
        stmt = select(func.count()).where(
            _L.c.rep_id == rep_id, _L.c.kind == kind.value, _L.c.detached.is_(None)
        )
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        """Drop the links of the CRM ids in ``drops``, then insert or replace ``saves``,
        and forget the pending write intents whose keys are in ``settled``.

        One transaction, whatever the batch size. Raises `LinkConflict` (and changes
        nothing) if a saved link's mail id stays linked to another CRM id.
        """
        self._apply_links(rep_id, kind, saves, drops, None, settled)

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        """The rep's unsettled write intents of the kind, in the order recorded."""
        stmt = (
            select(*(_I.c[f] for f in INTENT_FIELDS))
            .where(_I.c.rep_id == rep_id, _I.c.kind == kind.value)
            .order_by(_I.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [write_intent(rep_id, kind, row) for row in rows]

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        """Add the intents (replacing any pending one of the same key), in one transaction."""
        self._record_intents(rep_id, kind, intents, None)

    def save_link(self, link: Link) -> None:
        """Insert or replace the link of ``(rep_id, kind, crm_id)``, stamped with now."""
        self._apply_links(link.rep_id, link.kind, [link], [], None)

    def drop_link(self, rep_id: str, kind: ItemKind, crm_id: str) -> None:
        """Remove the link of ``(rep_id, kind, crm_id)``; a missing link is no error."""
        self._apply_links(rep_id, kind, [], [crm_id], None)

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None:
        """The change cursor last saved for the rep, kind and side, or ``None``."""
        stmt = select(_C.c.cursor).where(
            _C.c.rep_id == rep_id, _C.c.kind == kind.value, _C.c.side == side.value
        )
        with self._read() as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def save_cursor(self, rep_id: str, kind: ItemKind, side: Side, cursor: str | None) -> None:
        """Replace the cursor; ``None`` forgets it (the next read is a full listing)."""
        self._save_cursors(rep_id, kind, {side: cursor}, None)

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """`save_cursor` for each side in ``cursors``, and ``audit`` appended to the audit
        trail, in one transaction."""
        self._save_cursors(rep_id, kind, cursors, None, audit)

    def clear_rep(self, rep_id: str, fence: Fence | None = None) -> None:
        """Reset sync (DESIGN rule 9): drop the rep's links and cursors, nothing else.

        Detached links stay: a reset restores the connections between items, and must not
        bring back a record whose deletion was deliberately not carried over. Statuses,
        errors, settings and other reps are untouched; one transaction.
        """
        with self._write(fence) as conn:
            conn.execute(delete(_L).where(_L.c.rep_id == rep_id, _L.c.detached.is_(None)))
            conn.execute(delete(_C).where(_C.c.rep_id == rep_id))
            conn.execute(delete(_I).where(_I.c.rep_id == rep_id))

    # -- writes, optionally under a rep's fence (see `crmsync.store.fencing`) --

    def _apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        fence: Fence | None,
        settled: Sequence[str] = (),
    ) -> None:
        if not saves and not drops and not settled:
            return
        now = self._clock()
        rows = [
            {
                "rep_id": rep_id,
                "kind": kind.value,
                **{f: getattr(link, f) for f in _LINK_FIELDS},
                "detached": link.detached.value if link.detached else None,
                "synced_at": now,
            }
            for link in saves
        ]
        try:
            with self._write(fence) as conn:
                for start in range(0, len(drops), _CHUNK):
                    conn.execute(
                        delete(_L).where(
                            _L.c.rep_id == rep_id,
                            _L.c.kind == kind.value,
                            _L.c.crm_id.in_(drops[start : start + _CHUNK]),
                        )
                    )
                if rows:
                    conn.execute(upsert_once(conn, _L, _replacing), rows)
                for start in range(0, len(settled), _CHUNK):
                    conn.execute(
                        delete(_I).where(
                            _I.c.rep_id == rep_id,
                            _I.c.kind == kind.value,
                            _I.c.intent_key.in_(settled[start : start + _CHUNK]),
                        )
                    )
        except IntegrityError as exc:
            if "mail_id" not in str(exc.orig):
                raise
            raise LinkConflict(
                f"mail item is already linked to another CRM item of rep {rep_id!r}"
            ) from None

    def _record_intents(
        self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent], fence: Fence | None
    ) -> None:
        if not intents:
            return
        now = self._clock()
        rows = [
            {
                "rep_id": rep_id,
                "kind": kind.value,
                "intent_key": intent.key,
                "operation": intent.operation.value,
                "target": intent.target.value,
                "crm_id": intent.crm_id,
                "mail_id": intent.mail_id,
                "source_version": intent.source_version,
                "source_hash": intent.source_hash,
                "previous_hash": intent.previous_hash,
                "replaces": intent.replaces,
                "previous_version": intent.previous_version,
                "target_cursor": intent.target_cursor,
                "recorded_at": now,
            }
            for intent in intents
        ]
        with self._write(fence) as conn:
            conn.execute(upsert_once(conn, _I, _replacing), rows)

    def _save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        fence: Fence | None,
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        if not cursors and not audit:
            return
        with self._write(fence) as conn:
            kept = []
            for side, cursor in cursors.items():
                key = {"rep_id": rep_id, "kind": kind.value, "side": side.value}
                if cursor is None:
                    conn.execute(delete(_C).where(*(_C.c[k] == v for k, v in key.items())))
                else:
                    kept.append({**key, "cursor": cursor})
            if kept:
                conn.execute(upsert_once(conn, _C, _replacing), kept)
            insert_audit(conn, audit)


def write_intent(rep_id: str, kind: ItemKind, row: Mapping[str, Any]) -> WriteIntent:
    """The intent a ``write_intents`` row (its `INTENT_FIELDS`) holds."""
    return WriteIntent(
        rep_id,
        kind,
        WriteOperation(row["operation"]),
        Side(row["target"]),
        row["crm_id"],
        row["mail_id"],
        row["source_version"],
        row["source_hash"],
        row["previous_hash"],
        row["replaces"],
        row["previous_version"],
        row["target_cursor"],
    )


# Each table's key, and the columns an upsert replaces.
_UPSERT_COLUMNS = {
    "links": (("rep_id", "kind", "crm_id"), (*_LINK_FIELDS[1:], "detached", "synced_at")),
    "cursors": (("rep_id", "kind", "side"), ("cursor",)),
    "write_intents": (("rep_id", "kind", "intent_key"), (*INTENT_FIELDS[1:], "recorded_at")),
}


def _replacing(ins: Any, dialect: str) -> Executable:
    """The upsert of a row keyed as `_UPSERT_COLUMNS` says: its other columns replaced."""
    index, replaced = _UPSERT_COLUMNS[ins.table.name]
    return ins.on_conflict_do_update(
        index_elements=list(index), set_={c: ins.excluded[c] for c in replaced}
    )


# Bound parameters per IN list: well under SQLite's and PostgreSQL's limits.
_CHUNK = 500
