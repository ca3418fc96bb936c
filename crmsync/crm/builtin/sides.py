"""One rep's owned contacts or events as a sync side (structurally `ItemSide`).

Versions are record stamps as text and the cursor is the highest committed stamp, so a
no-change cycle costs two indexed queries. The side never imports the engine: it only
builds `crmsync.domain.sync` values and raises its errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, and_, func, select

from crmsync.crm.builtin import tables, writes
from crmsync.crm.builtin.changefeed import committed_stamp, pruned_through
from crmsync.crm.builtin.crm import EventRelations
from crmsync.crm.builtin.errors import InvalidRecord, NotFound, StaleVersion
from crmsync.crm.builtin.rows import CODECS, OwnedKind
from crmsync.domain.records import Event, ItemKind, Record
from crmsync.domain.sync import (
    Changes,
    ErrorType,
    ItemProblem,
    RejectedWrite,
    Seen,
    VersionConflict,
    Written,
)

if TYPE_CHECKING:
    from crmsync.crm.builtin.crm import BuiltinCrm

_KINDS = {ItemKind.CONTACT: OwnedKind.CONTACT, ItemKind.EVENT: OwnedKind.EVENT}

# Fields the mail side cannot know, kept as the CRM has them when the sync updates a record:
# a vCard has no notion of a person account.
_KEPT_ON_UPDATE = {OwnedKind.CONTACT: ("is_person_account",), OwnedKind.EVENT: ()}


class OwnerSide:
    """The records of one kind that ``rep_id`` owns in a `BuiltinCrm`.

    Satisfies `crmsync.engine.ports.ItemSide`. A record reassigned to another owner leaves
    this scope: `changes` reports it deleted, `fetch` returns ``None``, and `update` and
    `delete` treat it as gone.
    """

    def __init__(
        self,
        crm: BuiltinCrm,
        rep_id: str,
        kind: ItemKind,
        *,
        auto_relate: bool = False,
        all_owners: bool = False,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"the built-in CRM syncs contacts and events, not {kind}")
        self.crm = crm
        self.rep_id = rep_id
        self.kind = _KINDS[kind]
        self._codec = CODECS[self.kind]
        # Events written from the mail server are related to the contacts whose email
        # matches an attendee, or to one lead when no contact does (the spec's
        # "automatically relate events to CRM records").
        self.auto_relate = auto_relate and self.kind is OwnedKind.EVENT
        # The spec's "All contacts": every record the rep can see, whoever owns it (new
        # ones from the mail server are still the rep's). Otherwise only the rep's own.
        self.owner_id: str | None = None if all_owners else rep_id

    def __repr__(self) -> str:
        return f"OwnerSide({self.crm.url!r}, rep={self.rep_id!r}, kind={self.kind.value!r})"

    # ---- reading ------------------------------------------------------------------------

    def _listing(self) -> Select[Any]:
        """The rep's records with the rep's marker on each, in one outer join."""
        table, m = self._codec.table, tables.markers
        joined = table.outerjoin(
            m,
            and_(
                m.c.kind == self.kind.value, m.c.record_id == table.c.id, m.c.rep_id == self.rep_id
            ),
        )
        query = select(table, m.c.marker).select_from(joined).order_by(table.c.stamp)
        if self.owner_id is not None:
            query = query.where(table.c.owner_id == self.owner_id)
        return query

    def _seen(self, row: Mapping[str, Any]) -> Seen:
        version = str(row["stamp"])
        try:
            record = self._codec.from_row(row)
        except (ValueError, TypeError, KeyError) as exc:
            problem = ItemProblem(
                ErrorType.MALFORMED_ITEM,
                f"{self.kind} {row['id']} cannot be read: {exc}",
                "Fix or re-save the record in the CRM; it was probably edited directly in the"
                " database.",
            )
            return Seen(row["id"], version, None, row["marker"], problem)
        return Seen(row["id"], version, record, row["marker"])

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """Records changed since ``cursor`` (a stamp), or all of them.

        Incremental: records of the rep with a newer stamp, and the ids deleted or moved to
        another owner since (one query each). A cursor that is not a stamp, lies ahead of
        the database or predates pruned tombstones gets a full listing that leaves out
        records whose version equals ``known`` and reports missing known ids as deleted.
        """
        with self.crm.reading() as conn:
            head = committed_stamp(conn)
            since = self._parse_cursor(cursor)
            if since is None or since > head or since < pruned_through(conn):
                return self._full(conn, head, known)
            return self._since(conn, since, head)

    @staticmethod
    def _parse_cursor(cursor: str | None) -> int | None:
        if cursor is None:
            return None
        try:
            return int(cursor)
        except ValueError:
            return None

    def _full(self, conn: Connection, head: int, known: Mapping[str, str]) -> Changes:
        # No upper bound: a record written after ``head`` is listed now and again next time,
        # which is harmless; leaving it out would report a known record as deleted.
        present: set[str] = set()
        items = []
        for row in conn.execute(self._listing()).mappings():
            present.add(row["id"])
            if known.get(row["id"]) != str(row["stamp"]):
                items.append(self._seen(row))
        deleted = tuple(sorted(i for i in known if i not in present))
        return Changes(tuple(items), deleted, cursor=str(head), full=True)

    def _since(self, conn: Connection, since: int, head: int) -> Changes:
        # Bounded by ``head``: everything up to it is committed (see changefeed), anything
        # above it is picked up by the next call.
        table, tomb = self._codec.table, tables.tombstones
        rows = conn.execute(
            self._listing().where(table.c.stamp > since, table.c.stamp <= head)
        ).mappings()
        items = tuple(self._seen(row) for row in rows)
        in_range = [tomb.c.kind == self.kind.value, tomb.c.stamp > since, tomb.c.stamp <= head]
        if self.owner_id is not None:
            in_range.append(tomb.c.owner_id == self.owner_id)
        gone = conn.execute(
            select(tomb.c.record_id).where(*in_range).order_by(tomb.c.stamp)
        ).scalars()
        # A record that left and came back (or was re-imported under its id) is present.
        listed = {seen.id for seen in items}
        deleted = tuple(dict.fromkeys(i for i in gone if i not in listed))
        return Changes(items, deleted, cursor=str(head))

    def fetch(self, item_id: str) -> Seen | None:
        """The record as it is now; ``None`` when deleted or owned by someone else."""
        with self.crm.reading() as conn:
            row = (
                conn.execute(self._listing().where(self._codec.table.c.id == item_id))
                .mappings()
                .first()
            )
        return None if row is None else self._seen(row)

    # ---- writing ------------------------------------------------------------------------

    def _check(self, record: Record) -> None:
        if not isinstance(record, self._codec.record_type):
            raise TypeError(f"a {self.kind} side cannot store a {type(record).__name__}")

    def create(self, record: Record, marker: str) -> Written:
        """Create a record owned by the rep, carrying ``marker``; idempotent per marker.

        Raises `RejectedWrite` for content the CRM cannot store or a rep who is not a user.
        """
        self._check(record)
        m = tables.markers
        try:
            with self.crm.writing() as conn:
                # Writers are serialised (changefeed), so this check cannot race a twin.
                existing = conn.execute(
                    select(m.c.record_id).where(
                        m.c.kind == self.kind.value, m.c.rep_id == self.rep_id, m.c.marker == marker
                    )
                ).scalar()
                if existing is not None:
                    row = conn.execute(
                        select(self._codec.table).where(self._codec.table.c.id == existing)
                    ).first()
                    if row is not None:
                        return Written(row.id, str(row.stamp), self._codec.from_row(row._mapping))
                stored = writes.insert_record(
                    conn, self.kind, self.rep_id, record, marker=(self.rep_id, marker)
                )
        except InvalidRecord as exc:
            raise RejectedWrite(str(exc), "Correct the item on the mail server.") from exc
        except NotFound as exc:
            raise RejectedWrite(
                f"rep {self.rep_id} is not a user of the built-in CRM",
                "Add the user to the CRM or remove the rep from the configuration.",
            ) from exc
        self._relate(stored.id, record)
        return Written(stored.id, stored.version, stored.record)

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """Replace the record's content; `VersionConflict` when it changed since ``version``
        or has left the rep's scope, `RejectedWrite` for content the CRM cannot store."""
        self._check(record)
        try:
            with self.crm.writing() as conn:
                stored = writes.update_record(
                    conn,
                    self.kind,
                    item_id,
                    record,
                    expected_version=version,
                    expected_owner_id=self.owner_id,
                    keep=_KEPT_ON_UPDATE[self.kind],
                )
        except (StaleVersion, NotFound) as exc:
            raise VersionConflict(
                str(exc), "The record changed in the CRM; the next cycle merges it."
            ) from exc
        except InvalidRecord as exc:
            raise RejectedWrite(str(exc), "Correct the item on the mail server.") from exc
        self._relate(stored.id, record)
        return Written(stored.id, stored.version, stored.record)

    def _relate(self, event_id: str, record: Record) -> None:
        if not self.auto_relate or not isinstance(record, Event):
            return
        emails = {a.email.casefold() for a in record.attendees if a.email}
        if not emails:
            return
        with self.crm.reading() as conn:
            contact_ids = tuple(
                sorted(
                    conn.execute(
                        select(tables.contacts.c.id).where(
                            func.lower(tables.contacts.c.email).in_(emails)
                        )
                    ).scalars()
                )
            )
            lead_id = (
                None
                if contact_ids
                else conn.execute(
                    select(tables.leads.c.id)
                    .where(func.lower(tables.leads.c.email).in_(emails))
                    .order_by(tables.leads.c.id)
                )
                .scalars()
                .first()
            )
        if contact_ids or lead_id:
            self.crm.set_event_relations(event_id, EventRelations(contact_ids, lead_id))

    def delete(self, item_id: str, version: str) -> None:
        """Delete the record; a record already gone (or now someone else's) is not an error,
        one changed since ``version`` raises `VersionConflict` so no CRM edit is lost."""
        try:
            with self.crm.writing() as conn:
                writes.delete_record(
                    conn,
                    self.kind,
                    item_id,
                    expected_version=version,
                    expected_owner_id=self.owner_id,
                )
        except StaleVersion as exc:
            raise VersionConflict(
                str(exc), "The record changed in the CRM; the next cycle decides again."
            ) from exc
