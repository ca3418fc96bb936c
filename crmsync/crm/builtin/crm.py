"""`BuiltinCrm`: the embedded CRM's Python API over its own SQL database.

This database is the CRM's, not crmsync's sync state: it holds users, profiles, contacts
(person accounts among them), leads, events and their relations, plus the change feed the
sync reads through `BuiltinCrm.side`. Profiles and users are in `people`, event relations
in `relations`, the engine and transactions in `transactions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from crmsync.crm.builtin import tables, writes
from crmsync.crm.builtin.changefeed import (
    committed_stamp,
    ensure_counters,
    prune_tombstones,
)
from crmsync.crm.builtin.errors import InvalidRecord, NotFound
from crmsync.crm.builtin.people import PeopleMixin
from crmsync.crm.builtin.relations import EventRelationsMixin
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored
from crmsync.crm.builtin.transactions import make_engine
from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap, FieldType, convert
from crmsync.domain.records import Contact, Event, ItemKind, Lead

if TYPE_CHECKING:
    from crmsync.crm.builtin.sides import OwnerSide


class BuiltinCrm(PeopleMixin, EventRelationsMixin):
    """The built-in CRM at a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://``).

    The schema is created on first use. Every method runs in its own transaction and is
    safe to call from several threads or processes. Owned records (contacts, leads,
    events) come back as `Stored` values whose ``version`` changes on every write.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._create_schema()

    def _create_schema(self) -> None:
        try:
            tables.metadata.create_all(self.engine)
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created the schema between our check and our CREATE.
            tables.metadata.create_all(self.engine)
        self._add_new_columns()
        try:
            with self.writing() as conn:
                ensure_counters(conn)
        except IntegrityError:
            pass  # another process inserted the counters first

    def _add_new_columns(self) -> None:
        """Give a database made by an older crmsync the nullable columns added since."""
        present = inspect(self.engine)
        for table in tables.metadata.sorted_tables:
            have = {c["name"] for c in present.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"{table.name}.{column.name} cannot be added in place")
                kind = column.type.compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                        )
                except (OperationalError, ProgrammingError):
                    pass  # another process added it first

    def close(self) -> None:
        """Release pooled connections; the object must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> BuiltinCrm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def side(
        self,
        rep_id: str,
        kind: ItemKind,
        *,
        auto_relate: bool = False,
        all_owners: bool = False,
        field_map: ContactFieldMap = IDENTITY_MAP,
    ) -> OwnerSide:
        """The rep's owned contacts (person accounts included) or events as an `ItemSide`;
        with ``auto_relate``, events written to the CRM are related to their attendees'
        contacts (or one lead); with ``all_owners``, every record of the kind is in scope,
        not only the rep's own; ``field_map`` says which CRM field each synced contact
        field reads and writes."""
        from crmsync.crm.builtin.sides import OwnerSide  # sides imports this module

        return OwnerSide(
            self,
            rep_id,
            kind,
            auto_relate=auto_relate,
            all_owners=all_owners,
            field_map=field_map,
        )

    def current_stamp(self) -> int:
        """The change feed's position: the highest committed stamp."""
        with self.reading() as conn:
            return committed_stamp(conn)

    def prune_tombstones(self, through_stamp: int) -> int:
        """Forget deletions up to ``through_stamp``; older cursors then get full listings."""
        with self.writing() as conn:
            return prune_tombstones(conn, through_stamp)

    # ---- owned records, any kind ----------------------------------------------------------

    def add_record(
        self, kind: OwnedKind, owner_id: str, record: Any, *, id: str | None = None
    ) -> Stored[Any]:
        """Store a new contact, lead or event; raises `NotFound` (owner), `Duplicate` (id),
        `InvalidRecord` (content) or `TypeError` (wrong record type for ``kind``)."""
        with self.writing() as conn:
            return writes.insert_record(conn, OwnedKind(kind), owner_id, record, id)

    def get_record(self, kind: OwnedKind, record_id: str) -> Stored[Any]:
        codec = CODECS[OwnedKind(kind)]
        with self.reading() as conn:
            row = conn.execute(select(codec.table).where(codec.table.c.id == record_id)).first()
        if row is None:
            raise NotFound(f"no {kind} with id {record_id!r}")
        return Stored(row.id, row.owner_id, str(row.stamp), codec.from_row(row._mapping))

    def update_record(
        self,
        kind: OwnedKind,
        record_id: str,
        record: Any,
        *,
        owner_id: str | None = None,
        version: str | None = None,
    ) -> Stored[Any]:
        """Replace the record's content; ``owner_id`` reassigns it (the old owner's change
        feed then reports it deleted). With ``version``, raises `StaleVersion` if the record
        changed since. Also raises `NotFound` and `InvalidRecord`."""
        with self.writing() as conn:
            return writes.update_record(
                conn,
                OwnedKind(kind),
                record_id,
                record,
                new_owner_id=owner_id,
                expected_version=version,
            )

    def delete_record(self, kind: OwnedKind, record_id: str, *, version: str | None = None) -> None:
        """Delete the record (leaving a tombstone); raises `NotFound` or `StaleVersion`."""
        with self.writing() as conn:
            if not writes.delete_record(conn, OwnedKind(kind), record_id, expected_version=version):
                raise NotFound(f"no {kind} with id {record_id!r}")

    def list_records(self, kind: OwnedKind, *, owner_id: str | None = None) -> list[Stored[Any]]:
        """All records of ``kind`` (of one owner), oldest change first."""
        return list(self.iter_records(kind, owner_id=owner_id))

    def iter_records(
        self, kind: OwnedKind, *, owner_id: str | None = None, batch: int = 500
    ) -> Iterator[Stored[Any]]:
        """Like `list_records`, streamed from the database ``batch`` rows at a time."""
        codec = CODECS[OwnedKind(kind)]
        query = select(codec.table).order_by(codec.table.c.stamp)
        if owner_id is not None:
            query = query.where(codec.table.c.owner_id == owner_id)
        with self.reading() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield Stored(row.id, row.owner_id, str(row.stamp), codec.from_row(row._mapping))

    # ---- custom contact fields ---------------------------------------------------------

    def define_custom_field(self, name: str, field_type: FieldType) -> None:
        """Add (or retype) a custom contact field; names are letters, digits and ``_``."""
        if not name.replace("_", "").isalnum() or len(name) > 64:
            raise InvalidRecord(f"{name!r} is not a field name (letters, digits, _; <= 64)")
        if field_type in (FieldType.ADDRESS, FieldType.FLAG):
            raise InvalidRecord(
                f"custom fields hold text, phones, emails or dates, not {field_type}"
            )
        cf = tables.custom_fields
        with self.writing() as conn:  # writers are serialised: no race between the two
            retyped = conn.execute(
                update(cf).where(cf.c.name == name).values(type=field_type.value)
            ).rowcount
            if not retyped:
                conn.execute(insert(cf).values(name=name, type=field_type.value))

    def custom_field_types(self) -> dict[str, FieldType]:
        cf = tables.custom_fields
        with self.reading() as conn:
            return {r.name: FieldType(r.type) for r in conn.execute(select(cf))}

    def custom_values(self, contact_id: str) -> dict[str, str]:
        with self.reading() as conn:
            return writes.custom_values_of(conn, [contact_id]).get(contact_id, {})

    def set_custom_values(self, contact_id: str, values: dict[str, str]) -> str:
        """Set (``""``: clear) custom values of a contact; returns its new version.

        Raises `InvalidRecord` for an undefined field or a value its type refuses."""
        types = self.custom_field_types()
        for name, value in values.items():
            if name not in types:
                raise InvalidRecord(f"{name!r} is not a custom contact field")
            try:
                convert(value, FieldType.TEXT, types[name])
            except ValueError as exc:
                raise InvalidRecord(f"{name}: {exc}") from None
        with self.writing() as conn:
            self._require(conn, OwnedKind.CONTACT, contact_id)
            writes.replace_custom_values(conn, contact_id, values)
            return writes.touch_contact(conn, contact_id)

    # ---- owned records, typed -------------------------------------------------------------

    def create_contact(
        self, owner_id: str, contact: Contact, *, id: str | None = None
    ) -> Stored[Contact]:
        return self.add_record(OwnedKind.CONTACT, owner_id, contact, id=id)

    def get_contact(self, contact_id: str) -> Stored[Contact]:
        return self.get_record(OwnedKind.CONTACT, contact_id)

    def update_contact(
        self,
        contact_id: str,
        contact: Contact,
        *,
        owner_id: str | None = None,
        version: str | None = None,
    ) -> Stored[Contact]:
        return self.update_record(
            OwnedKind.CONTACT, contact_id, contact, owner_id=owner_id, version=version
        )

    def delete_contact(self, contact_id: str, *, version: str | None = None) -> None:
        self.delete_record(OwnedKind.CONTACT, contact_id, version=version)

    def list_contacts(
        self, *, owner_id: str | None = None, person_accounts: bool | None = None
    ) -> list[Stored[Contact]]:
        """Contacts, person accounts included unless ``person_accounts`` picks one sort."""
        found = self.list_records(OwnedKind.CONTACT, owner_id=owner_id)
        if person_accounts is None:
            return found
        return [s for s in found if s.record.is_person_account == person_accounts]

    def create_lead(self, owner_id: str, lead: Lead, *, id: str | None = None) -> Stored[Lead]:
        return self.add_record(OwnedKind.LEAD, owner_id, lead, id=id)

    def get_lead(self, lead_id: str) -> Stored[Lead]:
        return self.get_record(OwnedKind.LEAD, lead_id)

    def update_lead(
        self, lead_id: str, lead: Lead, *, owner_id: str | None = None, version: str | None = None
    ) -> Stored[Lead]:
        return self.update_record(OwnedKind.LEAD, lead_id, lead, owner_id=owner_id, version=version)

    def delete_lead(self, lead_id: str, *, version: str | None = None) -> None:
        self.delete_record(OwnedKind.LEAD, lead_id, version=version)

    def list_leads(self, *, owner_id: str | None = None) -> list[Stored[Lead]]:
        return self.list_records(OwnedKind.LEAD, owner_id=owner_id)

    def create_event(self, owner_id: str, ev: Event, *, id: str | None = None) -> Stored[Event]:
        return self.add_record(OwnedKind.EVENT, owner_id, ev, id=id)

    def get_event(self, event_id: str) -> Stored[Event]:
        return self.get_record(OwnedKind.EVENT, event_id)

    def update_event(
        self, event_id: str, ev: Event, *, owner_id: str | None = None, version: str | None = None
    ) -> Stored[Event]:
        return self.update_record(OwnedKind.EVENT, event_id, ev, owner_id=owner_id, version=version)

    def delete_event(self, event_id: str, *, version: str | None = None) -> None:
        self.delete_record(OwnedKind.EVENT, event_id, version=version)

    def list_events(self, *, owner_id: str | None = None) -> list[Stored[Event]]:
        return self.list_records(OwnedKind.EVENT, owner_id=owner_id)
