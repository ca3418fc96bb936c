"""One rep's owned contacts or events as a sync side (structurally `ItemSide`).

Versions are record stamps as text and the cursor is the highest committed stamp, so a
no-change cycle costs two indexed queries. The side never imports the engine: it only
builds `crmsync.domain.sync` values and raises its errors.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, and_, func, select

from crmsync.crm.builtin import tables, writes
from crmsync.crm.builtin.changefeed import feed_position
from crmsync.crm.builtin.errors import InvalidRecord, NotFound, StaleVersion
from crmsync.crm.builtin.relations import EventRelations
from crmsync.crm.builtin.rows import CODECS, OwnedKind
from crmsync.domain.contact_fields import (
    CUSTOM_PREFIX,
    IDENTITY_MAP,
    STANDARD_CRM_FIELDS,
    ContactFieldMap,
    InvalidValue,
    as_text,
    custom_name,
    is_custom,
)
from crmsync.domain.records import Contact, Event, ItemKind, Record
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
        field_map: ContactFieldMap = IDENTITY_MAP,
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
        # Contacts synced through a changed field mapping are converted on the way in and
        # out; the identity mapping (the default) skips that work.
        self.field_map = (
            None if field_map.is_identity or kind is not ItemKind.CONTACT else field_map
        )
        self._custom = self.field_map is not None and any(
            is_custom(crm) for crm, _ in self.field_map.fields.values()
        )

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

    def _seen_rows(self, conn: Connection, rows: list[Mapping[str, Any]]) -> list[Seen]:
        customs = writes.custom_values_of(conn, [r["id"] for r in rows]) if self._custom else {}
        return [self._seen(row, customs.get(row["id"], {})) for row in rows]

    def _mapped(self, stored: Contact, customs: Mapping[str, str]) -> Contact:
        """The synced view of a stored contact and its custom values."""
        assert self.field_map is not None
        values: dict[str, Any] = {name: getattr(stored, name) for name in STANDARD_CRM_FIELDS}
        values.update({CUSTOM_PREFIX + name: value for name, value in customs.items()})
        return self.field_map.to_contact(values)

    def _seen(self, row: Mapping[str, Any], customs: Mapping[str, str]) -> Seen:
        version = str(row["stamp"])
        try:
            record = self._codec.from_row(row)
            if self.field_map is not None:
                record = self._mapped(record, customs)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, InvalidValue):
                what = f"has a value its mapped mail field cannot hold: {exc}"
                fix = (
                    "Correct the value in the CRM, or map the field to a mail field of its "
                    "type in the configuration's field mappings."
                )
            else:
                what = f"cannot be read: {exc}"
                fix = (
                    "Fix or re-save the record in the CRM; it was probably edited directly "
                    "in the database."
                )
            problem = ItemProblem(ErrorType.MALFORMED_ITEM, f"{self.kind} {row['id']} {what}", fix)
            return Seen(row["id"], version, None, row["marker"], problem)
        return Seen(row["id"], version, record, row["marker"])

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """Records changed since ``cursor`` (a stamp), or all of them.

        Incremental: records of the rep with a newer stamp, and the ids deleted or moved to
        another owner since (one query each, none while the feed stands at the cursor). A
        cursor that is not a stamp, lies ahead of the database or predates pruned
        tombstones gets a full listing that leaves out records whose version equals
        ``known`` and reports missing known ids as deleted.
        """
        with self.crm.reading() as conn:
            head, pruned = feed_position(conn)
            since = self._parse_cursor(cursor)
            if since is None or since > head or since < pruned:
                return self._full(conn, head, known)
            if since == head:  # nothing committed since: no record or tombstone to look for
                return Changes((), (), cursor=str(head))
            return self._since(conn, since, head)

    def cursor_after_writes(self, cursor: str | None, written: Collection[str]) -> str | None:
        """``cursor`` as it is (`CarriesWrites`): the feed's stamps only grow, so every
        later write of any record, crmsync's included, lies after it."""
        return cursor

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
        rows = []
        items: list[Seen] = []
        for row in conn.execute(self._listing()).mappings():
            present.add(row["id"])
            if known.get(row["id"]) != str(row["stamp"]):
                if self._custom:
                    rows.append(row)  # their custom values are read in one query below
                else:
                    # Read as it comes: holding every row until the end doubled the
                    # listing's memory at tens of thousands of records.
                    items.append(self._seen(row, {}))
        if rows:
            items = self._seen_rows(conn, rows)
        deleted = tuple(sorted(i for i in known if i not in present))
        return Changes(tuple(items), deleted, cursor=str(head), full=True)

    def _since(self, conn: Connection, since: int, head: int) -> Changes:
        # Bounded by ``head``: everything up to it is committed (see changefeed), anything
        # above it is picked up by the next call.
        table, tomb = self._codec.table, tables.tombstones
        rows = conn.execute(
            self._listing().where(table.c.stamp > since, table.c.stamp <= head)
        ).mappings()
        items = tuple(self._seen_rows(conn, list(rows)))
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
            return None if row is None else self._seen_rows(conn, [row])[0]

    # ---- writing ------------------------------------------------------------------------

    def _check(self, record: Record) -> None:
        if not isinstance(record, self._codec.record_type):
            raise TypeError(f"a {self.kind} side cannot store a {type(record).__name__}")

    def create(self, record: Record, marker: str) -> Written:
        """Create a record owned by the rep, carrying ``marker``; idempotent per marker.

        Raises `RejectedWrite` for content the CRM cannot store or a rep who is not a user.
        """
        self._check(record)
        stored_record, customs, _ = self._to_store(record)
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
                        stored_now = self._codec.from_row(row._mapping)
                        return self._written(conn, row.id, str(row.stamp), stored_now, record)
                record_id: str | None = self.planned_id(marker)
                table = self._codec.table
                if conn.execute(select(table.c.id).where(table.c.id == record_id)).first():
                    record_id = None  # taken by a record that moved to another owner
                stored = writes.insert_record(
                    conn,
                    self.kind,
                    self.rep_id,
                    stored_record,
                    record_id=record_id,
                    marker=(self.rep_id, marker),
                )
                if customs:
                    writes.replace_custom_values(conn, stored.id, customs)
                written = self._written(conn, stored.id, stored.version, stored.record, record)
        except InvalidRecord as exc:
            raise RejectedWrite(str(exc), "Correct the item on the mail server.") from exc
        except NotFound as exc:
            raise RejectedWrite(
                f"rep {self.rep_id} is not a user of the built-in CRM",
                "Add the user to the CRM or remove the rep from the configuration.",
            ) from exc
        self._relate(stored.id, record)
        return written

    def planned_id(self, marker: str) -> str:
        """The id `create` gives the record stamped with ``marker``, unless it is taken."""
        return writes.marked_id(self._codec.id_prefix, self.rep_id, marker)

    def _to_store(self, record: Record) -> tuple[Record, dict[str, str], tuple[str, ...]]:
        """What the CRM stores for a synced record: its standard record, its custom values
        and the columns an update must leave alone (the ones that do not sync)."""
        if self.field_map is None:
            return record, {}, _KEPT_ON_UPDATE[self.kind]
        assert isinstance(record, Contact)
        try:
            values = self.field_map.to_crm(record)
        except InvalidValue as exc:
            raise RejectedWrite(
                f"the contact has a value its mapped CRM field cannot hold: {exc}",
                "Correct the value on the mail server, or change the configuration's field "
                "mappings.",
            ) from exc
        standard = {k: v for k, v in values.items() if not is_custom(k)}
        customs = {custom_name(k): as_text(v) for k, v in values.items() if is_custom(k)}
        kept = (set(STANDARD_CRM_FIELDS) - set(standard)) | set(_KEPT_ON_UPDATE[self.kind])
        return Contact(**standard), customs, tuple(sorted(kept))

    def _written(
        self, conn: Connection, record_id: str, version: str, stored: Any, synced: Record
    ) -> Written:
        """The write's result as this side reads it (through the field mapping)."""
        if self.field_map is None:
            return Written(record_id, version, stored)
        customs = writes.custom_values_of(conn, [record_id]).get(record_id, {})
        try:
            return Written(record_id, version, self._mapped(stored, customs))
        except InvalidValue:
            return Written(record_id, version, synced)

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """Replace the record's content; `VersionConflict` when it changed since ``version``
        or has left the rep's scope, `RejectedWrite` for content the CRM cannot store."""
        self._check(record)
        stored_record, customs, kept = self._to_store(record)
        try:
            with self.crm.writing() as conn:
                stored = writes.update_record(
                    conn,
                    self.kind,
                    item_id,
                    stored_record,
                    expected_version=version,
                    expected_owner_id=self.owner_id,
                    keep=kept,
                )
                if customs:
                    writes.replace_custom_values(conn, stored.id, customs)
                written = self._written(conn, stored.id, stored.version, stored.record, record)
        except (StaleVersion, NotFound) as exc:
            raise VersionConflict(
                str(exc), "The record changed in the CRM; the next cycle merges it."
            ) from exc
        except InvalidRecord as exc:
            raise RejectedWrite(str(exc), "Correct the item on the mail server.") from exc
        self._relate(stored.id, record)
        return written

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
