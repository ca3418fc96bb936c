"""The built-in CRM's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Every record table carries ``stamp``: the value of the one shared modification counter
(`counter`) at the record's last insert or update. Deletes leave a row in `tombstones`.
Nested values (addresses, attendees, categories, recurrence) are JSON columns; instants
are UTC and times of all-day events are plain dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.types import TypeDecorator

# Names for constraints, so a later Alembic migration can refer to them on both dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
EMAIL = String(320)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as naive UTC.

    SQLite has no time zone type and PostgreSQL's ``timestamptz`` would hand back the
    session's zone; storing naive UTC gives the same value back on both.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is needed")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


counter = Table(
    "crm_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
STAMP_COUNTER = "stamp"
# The highest stamp whose tombstones may have been pruned; an older cursor is refused.
PRUNED_COUNTER = "tombstones_pruned_through"

profiles = Table(
    "crm_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("stamp", BigInteger, nullable=False),
)

users = Table(
    "crm_users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", EMAIL, nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("profile_id", ID, ForeignKey("crm_profiles.id"), nullable=True),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("active", Boolean, nullable=False, default=True),
    Column("stamp", BigInteger, nullable=False),
)
# Case-insensitive uniqueness as an expression index: both SQLite and PostgreSQL support it,
# and lookups by lower(email) use it.
Index("uq_crm_users_email_lower", func.lower(users.c.email), unique=True)


def _owned(name: str, *columns: Column[Any]) -> Table:
    """A record table owned by a user, with the change-feed index the sides read by."""
    table = Table(
        name,
        metadata,
        Column("id", ID, primary_key=True),
        Column("owner_id", ID, ForeignKey("crm_users.id"), nullable=False),
        Column("stamp", BigInteger, nullable=False),
        *columns,
    )
    Index(f"ix_{name}_owner_stamp", table.c.owner_id, table.c.stamp)
    return table


def _text(name: str) -> Column[str]:
    return Column(name, Text, nullable=False, default="")


contacts = _owned(
    "crm_contacts",
    *(
        _text(n)
        for n in (
            "first_name",
            "last_name",
            "salutation",
            "title",
            "department",
            "account_name",
            "email",
            "phone",
            "mobile_phone",
            "home_phone",
            "other_phone",
            "fax",
            "description",
        )
    ),
    Column("mailing_address", JSON, nullable=False),
    Column("other_address", JSON, nullable=False),
    Column("birthdate", Date, nullable=True),
    Column("is_person_account", Boolean, nullable=False, default=False),
)

leads = _owned(
    "crm_leads",
    *(_text(n) for n in ("first_name", "last_name", "company", "title", "email", "phone")),
    Column("status", String(64), nullable=False, default="Open"),
)

events = _owned(
    "crm_events",
    Column("subject", Text, nullable=False),
    _text("location"),
    _text("description"),
    _text("organizer"),
    Column("is_private", Boolean, nullable=False, default=False),
    Column("show_as", String(32), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("attendees", JSON, nullable=False),
    # Timed events fill the *_at pair, all-day events the *_date pair; never both.
    Column("start_at", UtcDateTime, nullable=True),
    Column("end_at", UtcDateTime, nullable=True),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("tzid", String(128), nullable=True),
    Column("recurrence_rule", Text, nullable=True),
    Column("recurrence_exdates", JSON, nullable=False),
    Column("recurrence_overrides", JSON, nullable=False),
    # Added after the first release: nullable, so older databases gain it (see crm.py).
    Column("recurrence_rdates", JSON, nullable=True),
    # The end's zone where it differs from the start's (a flight); added later, nullable.
    Column("end_tzid", String(128), nullable=True),
    CheckConstraint(
        "(start_at IS NOT NULL AND end_at IS NOT NULL AND start_date IS NULL AND end_date IS NULL)"
        " OR (start_at IS NULL AND end_at IS NULL"
        " AND start_date IS NOT NULL AND end_date IS NOT NULL)",
        name="timing",
    ),
)

# An event relates to any number of contacts and at most one lead (like Salesforce's
# EventRelation + WhoId). Two nullable foreign keys rather than a polymorphic id, so the
# database removes a relation when its contact or lead goes.
event_relations = Table(
    "crm_event_relations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", ID, ForeignKey("crm_events.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", ID, ForeignKey("crm_contacts.id", ondelete="CASCADE"), nullable=True),
    Column("lead_id", ID, ForeignKey("crm_leads.id", ondelete="CASCADE"), nullable=True),
    CheckConstraint("(contact_id IS NULL) <> (lead_id IS NULL)", name="one_target"),
    UniqueConstraint("event_id", "contact_id"),
)
Index(
    "uq_crm_event_relations_one_lead",
    event_relations.c.event_id,
    unique=True,
    sqlite_where=event_relations.c.lead_id.is_not(None),
    postgresql_where=event_relations.c.lead_id.is_not(None),
)

tombstones = Table(
    "crm_tombstones",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("owner_id", ID, nullable=True),
    Column("stamp", BigInteger, nullable=False),
)
Index("ix_crm_tombstones_feed", tombstones.c.kind, tombstones.c.owner_id, tombstones.c.stamp)

# The mail-side id crmsync stamped on a record it created (DESIGN rule 5): the CRM's
# external-id field, kept beside the record so every kind gets one without a column each.
markers = Table(
    "crm_markers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("record_id", ID, nullable=False),
    Column("rep_id", ID, nullable=False),
    Column("marker", String(1024), nullable=False),
    UniqueConstraint("kind", "rep_id", "marker"),
    # One marker per record and rep, so joining markers onto a listing never repeats a row.
    UniqueConstraint("kind", "record_id", "rep_id"),
)

# Custom contact fields an admin defined, and their values per contact. Values are text;
# the field's type (a `FieldType` value) says how the sync reads them.
custom_fields = Table(
    "crm_custom_fields",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("type", String(16), nullable=False),
)

contact_custom_values = Table(
    "crm_contact_custom_values",
    metadata,
    Column("contact_id", ID, ForeignKey("crm_contacts.id", ondelete="CASCADE"), nullable=False),
    Column(
        "name", String(64), ForeignKey("crm_custom_fields.name", ondelete="CASCADE"), nullable=False
    ),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("contact_id", "name"),
)
