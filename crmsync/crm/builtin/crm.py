"""`BuiltinCrm`: the embedded CRM's Python API over its own SQL database.

This database is the CRM's, not crmsync's sync state: it holds users, profiles, contacts
(person accounts among them), leads, events and their relations, plus the change feed the
sync reads through `BuiltinCrm.side`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row as SqlRow
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from crmsync.crm.builtin import tables, writes
from crmsync.crm.builtin.changefeed import (
    allocate_stamps,
    committed_stamp,
    ensure_counters,
    prune_tombstones,
    record_deletions,
)
from crmsync.crm.builtin.errors import Duplicate, InUse, InvalidRecord, NotFound
from crmsync.crm.builtin.rows import CODECS, OwnedKind, Stored
from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap, FieldType, convert
from crmsync.domain.records import Contact, Event, ItemKind, Lead, Profile, User

if TYPE_CHECKING:
    from crmsync.crm.builtin.sides import OwnerSide


@dataclass(frozen=True)
class EventRelations:
    """Who an event is about: any number of contacts and at most one lead."""

    contact_ids: tuple[str, ...] = ()
    lead_id: str | None = None


def _make_engine(url: str) -> Engine:
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


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRecord(f"unknown time zone {name!r}") from exc


def _user(row: SqlRow[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        profile_id=row.profile_id,
        time_zone=row.time_zone,
        active=bool(row.active),
    )


class BuiltinCrm:
    """The built-in CRM at a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://``).

    The schema is created on first use. Every method runs in its own transaction and is
    safe to call from several threads or processes. Owned records (contacts, leads,
    events) come back as `Stored` values whose ``version`` changes on every write.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
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

    # ---- profiles -----------------------------------------------------------------------

    def create_profile(self, name: str, *, id: str | None = None) -> Profile:
        """A new profile; raises `Duplicate` when the name or id is taken."""
        profile = Profile(id or writes.new_id("prf"), name)
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            p = tables.profiles
            taken = conn.execute(
                select(p.c.id).where(or_(p.c.id == profile.id, p.c.name == name))
            ).first()
            if taken is not None:
                raise Duplicate(f"a profile named {name!r} or with id {profile.id!r} exists")
            conn.execute(insert(p).values(id=profile.id, name=name, stamp=stamp))
        return profile

    def get_profile(self, profile_id: str) -> Profile:
        with self.reading() as conn:
            row = conn.execute(
                select(tables.profiles).where(tables.profiles.c.id == profile_id)
            ).first()
        if row is None:
            raise NotFound(f"no profile with id {profile_id!r}")
        return Profile(row.id, row.name)

    def find_profile(self, name: str) -> Profile | None:
        """The profile with exactly this name, if any."""
        with self.reading() as conn:
            row = conn.execute(
                select(tables.profiles).where(tables.profiles.c.name == name)
            ).first()
        return None if row is None else Profile(row.id, row.name)

    def update_profile(self, profile: Profile) -> Profile:
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            p = tables.profiles
            clash = conn.execute(
                select(p.c.id).where(p.c.name == profile.name, p.c.id != profile.id)
            ).first()
            if clash is not None:
                raise Duplicate(f"another profile is named {profile.name!r}")
            done = conn.execute(
                update(p).where(p.c.id == profile.id).values(name=profile.name, stamp=stamp)
            )
            if done.rowcount != 1:
                raise NotFound(f"no profile with id {profile.id!r}")
        return profile

    def delete_profile(self, profile_id: str) -> None:
        """Raises `NotFound`, or `InUse` while users are assigned to it."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            users = tables.users
            if conn.execute(select(exists().where(users.c.profile_id == profile_id))).scalar():
                raise InUse(f"profile {profile_id} is assigned to users")
            done = conn.execute(delete(tables.profiles).where(tables.profiles.c.id == profile_id))
            if done.rowcount != 1:
                raise NotFound(f"no profile with id {profile_id!r}")
            record_deletions(conn, "profile", [(profile_id, None)], stamp)

    def list_profiles(self) -> list[Profile]:
        with self.reading() as conn:
            rows = conn.execute(select(tables.profiles).order_by(tables.profiles.c.name))
            return [Profile(r.id, r.name) for r in rows]

    # ---- users --------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        name: str = "",
        *,
        profile_id: str | None = None,
        time_zone: str = "UTC",
        active: bool = True,
        id: str | None = None,
    ) -> User:
        """A new user; raises `Duplicate` when the email (in any case) or id is taken."""
        user = User(id or writes.new_id("usr"), email, name, profile_id, time_zone, active)
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            self._check_user(conn, user)
            if conn.execute(select(tables.users.c.id).where(tables.users.c.id == user.id)).first():
                raise Duplicate(f"a user with id {user.id!r} exists")
            conn.execute(insert(tables.users).values(**_user_values(user), stamp=stamp))
        return user

    def _check_user(self, conn: Connection, user: User) -> None:
        if "@" not in user.email:
            raise InvalidRecord(f"{user.email!r} is not an email address")
        _check_zone(user.time_zone)
        users = tables.users
        clash = conn.execute(
            select(users.c.id).where(
                func.lower(users.c.email) == user.email.lower(), users.c.id != user.id
            )
        ).first()
        if clash is not None:
            raise Duplicate(f"another user has the email {user.email!r}")
        if user.profile_id is not None:
            found = conn.execute(
                select(tables.profiles.c.id).where(tables.profiles.c.id == user.profile_id)
            ).first()
            if found is None:
                raise NotFound(f"no profile with id {user.profile_id!r}")

    def get_user(self, user_id: str) -> User:
        with self.reading() as conn:
            row = conn.execute(select(tables.users).where(tables.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user with id {user_id!r}")
        return _user(row)

    def get_user_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively."""
        return self.get_users_by_email([email]).get(email.lower())

    def get_users_by_email(self, emails: Iterable[str]) -> dict[str, User]:
        """Users by lower-cased email, for those of ``emails`` (any case) that exist."""
        keys = sorted({e.lower() for e in emails})
        if not keys:
            return {}
        with self.reading() as conn:
            rows = conn.execute(
                select(tables.users).where(func.lower(tables.users.c.email).in_(keys))
            )
            return {row.email.lower(): _user(row) for row in rows}

    def update_user(self, user: User) -> User:
        """Replace the user with ``user.id``; raises `NotFound`, `Duplicate`, `InvalidRecord`."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            self._check_user(conn, user)
            done = conn.execute(
                update(tables.users)
                .where(tables.users.c.id == user.id)
                .values(**_user_values(user), stamp=stamp)
            )
            if done.rowcount != 1:
                raise NotFound(f"no user with id {user.id!r}")
        return user

    def delete_user(self, user_id: str) -> None:
        """Raises `NotFound`, or `InUse` while the user owns records (reassign them first)."""
        with self.writing() as conn:
            stamp = allocate_stamps(conn)
            for codec in CODECS.values():
                owned = exists().where(codec.table.c.owner_id == user_id)
                if conn.execute(select(owned)).scalar():
                    raise InUse(f"user {user_id} still owns {codec.kind} records")
            done = conn.execute(delete(tables.users).where(tables.users.c.id == user_id))
            if done.rowcount != 1:
                raise NotFound(f"no user with id {user_id!r}")
            conn.execute(delete(tables.markers).where(tables.markers.c.rep_id == user_id))
            record_deletions(conn, "user", [(user_id, None)], stamp)

    def list_users(self, *, active: bool | None = None) -> list[User]:
        query = select(tables.users).order_by(tables.users.c.email)
        if active is not None:
            query = query.where(tables.users.c.active == active)
        with self.reading() as conn:
            return [_user(r) for r in conn.execute(query)]

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

    # ---- event relations ------------------------------------------------------------------

    def relate_event(
        self, event_id: str, *, contact_id: str | None = None, lead_id: str | None = None
    ) -> None:
        """Relate the event to a contact or (replacing any other) a lead; relating twice is
        a no-op. Raises `NotFound` when the event, contact or lead is missing."""
        if (contact_id is None) == (lead_id is None):
            raise ValueError("give exactly one of contact_id and lead_id")
        with self.writing() as conn:
            self._require(conn, OwnedKind.EVENT, event_id)
            rel = tables.event_relations
            if contact_id is not None:
                self._require(conn, OwnedKind.CONTACT, contact_id)
                have = conn.execute(
                    select(rel.c.id).where(
                        rel.c.event_id == event_id, rel.c.contact_id == contact_id
                    )
                ).first()
                if have is None:
                    conn.execute(insert(rel).values(event_id=event_id, contact_id=contact_id))
            else:
                assert lead_id is not None
                self._require(conn, OwnedKind.LEAD, lead_id)
                conn.execute(
                    delete(rel).where(rel.c.event_id == event_id, rel.c.lead_id.is_not(None))
                )
                conn.execute(insert(rel).values(event_id=event_id, lead_id=lead_id))

    def unrelate_event(
        self, event_id: str, *, contact_id: str | None = None, lead_id: str | None = None
    ) -> None:
        """Remove one relation; removing one that is not there is a no-op."""
        if (contact_id is None) == (lead_id is None):
            raise ValueError("give exactly one of contact_id and lead_id")
        rel = tables.event_relations
        target = (
            rel.c.contact_id == contact_id if contact_id is not None else rel.c.lead_id == lead_id
        )
        with self.writing() as conn:
            conn.execute(delete(rel).where(and_(rel.c.event_id == event_id, target)))

    def set_event_relations(self, event_id: str, relations: EventRelations) -> None:
        """Replace all of the event's relations; raises `NotFound` for a missing record."""
        rel = tables.event_relations
        with self.writing() as conn:
            self._require(conn, OwnedKind.EVENT, event_id)
            for contact_id in relations.contact_ids:
                self._require(conn, OwnedKind.CONTACT, contact_id)
            if relations.lead_id is not None:
                self._require(conn, OwnedKind.LEAD, relations.lead_id)
            conn.execute(delete(rel).where(rel.c.event_id == event_id))
            rows = [
                {"event_id": event_id, "contact_id": c, "lead_id": None}
                for c in dict.fromkeys(relations.contact_ids)
            ]
            if relations.lead_id is not None:
                rows.append(
                    {"event_id": event_id, "contact_id": None, "lead_id": relations.lead_id}
                )
            if rows:
                conn.execute(insert(rel), rows)

    def event_relations(self, event_id: str) -> EventRelations:
        with self.reading() as conn:
            return self.relations_of(conn, [event_id]).get(event_id, EventRelations())

    @staticmethod
    def relations_of(conn: Connection, event_ids: list[str]) -> dict[str, EventRelations]:
        """Relations of several events in one query; events without any are left out."""
        rel = tables.event_relations
        contacts: dict[str, list[str]] = {}
        leads: dict[str, str] = {}
        rows = conn.execute(
            select(rel.c.event_id, rel.c.contact_id, rel.c.lead_id)
            .where(rel.c.event_id.in_(event_ids))
            .order_by(rel.c.id)
        )
        for row in rows:
            if row.contact_id is not None:
                contacts.setdefault(row.event_id, []).append(row.contact_id)
            else:
                leads[row.event_id] = row.lead_id
        return {
            eid: EventRelations(tuple(contacts.get(eid, ())), leads.get(eid))
            for eid in contacts.keys() | leads.keys()
        }

    @staticmethod
    def _require(conn: Connection, kind: OwnedKind, record_id: str) -> None:
        table = CODECS[kind].table
        if conn.execute(select(table.c.id).where(table.c.id == record_id)).first() is None:
            raise NotFound(f"no {kind} with id {record_id!r}")


def _user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "profile_id": user.profile_id,
        "time_zone": user.time_zone,
        "active": user.active,
    }
