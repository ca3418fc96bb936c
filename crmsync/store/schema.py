"""The state store's tables, as SQLAlchemy Core metadata.

Alembic migrations under ``migrations/versions`` create and upgrade these tables; the
test suite checks that the two never drift apart. Types are chosen to mean the same on
SQLite and PostgreSQL: ids and versions are ``Text`` (mail-side ids such as EWS item ids
or DAV hrefs have no useful bound), enums are stored as their string values, instants are
`UTCDateTime`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware instant, stored in UTC and always read back aware in UTC.

    SQLite has no time zone support, so values are stored there as naive UTC text, which
    still sorts and compares correctly. Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the state store only accepts aware datetimes")
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Explicit constraint names keep migrations identical across databases and let future
# migrations on SQLite (batch mode) find constraints by name.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rep_id", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("crm_id", Text, nullable=False),
    Column("mail_id", Text, nullable=False),
    Column("crm_version", Text, nullable=False),
    Column("mail_version", Text, nullable=False),
    Column("crm_hash", Text, nullable=False),
    Column("mail_hash", Text, nullable=False),
    # The side whose item is gone when a deletion was not carried over (see `Link`).
    Column("detached", String(16), nullable=True),
    Column("synced_at", UTCDateTime, nullable=False),
    UniqueConstraint("rep_id", "kind", "crm_id"),
    UniqueConstraint("rep_id", "kind", "mail_id"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("rep_id", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("side", String(16), nullable=False),
    Column("cursor", Text, nullable=False),
    PrimaryKeyConstraint("rep_id", "kind", "side"),
)

# Writes the engine is about to make, settled with their links (DESIGN rule 5); rows
# that outlive a cycle are what a crash left between a write and its link.
write_intents = Table(
    "write_intents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rep_id", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("intent_key", Text, nullable=False),
    Column("operation", String(16), nullable=False),
    Column("target", String(16), nullable=False),
    Column("crm_id", Text),
    Column("mail_id", Text),
    Column("source_version", Text, nullable=False),
    Column("source_hash", Text, nullable=False),
    Column("previous_hash", Text),
    Column("replaces", Text),
    Column("previous_version", Text),
    Column("target_cursor", Text),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("rep_id", "kind", "intent_key"),
)

errors = Table(
    "errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rep_id", Text, nullable=False),
    Column("kind", String(16), nullable=True),
    Column("item_id", Text, nullable=True),
    Column("operation", Text, nullable=False),
    Column("error_type", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("suggestion", Text, nullable=False),
    # The latest occurrence; a failure that repeats (every cycle, say) is one row whose
    # count grows, from ``first_at`` on.
    Column("at", UTCDateTime, nullable=False),
    Column("first_at", UTCDateTime, nullable=True),
    Column("occurrences", Integer, nullable=False, default=1, server_default="1"),
    Index(None, "at"),
    Index(None, "rep_id", "at"),
)

audit_trail = Table(
    "audit_trail",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rep_id", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("crm_id", Text, nullable=True),
    Column("mail_id", Text, nullable=True),
    Column("action", String(16), nullable=False),
    Column("target", String(8), nullable=True),
    Column("rule", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "crm_id"),
    Index(None, "mail_id"),
    Index(None, "at"),
)

reps = Table(
    "reps",
    metadata,
    Column("rep_id", Text, primary_key=True),
    Column("mailbox_supported", Boolean, nullable=True),
    Column("recognized", Boolean, nullable=True),
    Column("contacts_folder_found", Boolean, nullable=True),
    Column("calendar_found", Boolean, nullable=True),
    Column("addresses_linked", Boolean, nullable=True),
    Column("last_cycle_started", UTCDateTime, nullable=True),
    Column("last_cycle_finished", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("reset_status", String(32), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, default=0, server_default="0"),
    Column("next_due", UTCDateTime, nullable=True),
    Column("lease_owner", Text, nullable=True),
    Column("lease_expires", UTCDateTime, nullable=True),
    Column("fence", Integer, nullable=False, default=0, server_default="0"),
    # When an admin let the held-back deletions of a tripped mass-delete guard through.
    Column("deletes_confirmed_at", UTCDateTime, nullable=True),
    # The mail server told crmsync to leave the rep alone until then (Google's usage
    # limits): kept here so a restart, another worker and `crmsync sync` honour it too.
    Column("paused_until", UTCDateTime, nullable=True),
    Column("paused_by", Text, nullable=True),
    Column("paused_because", Text, nullable=True),
    Index(None, "next_due"),
)

sync_statuses = Table(
    "sync_statuses",
    metadata,
    Column("rep_id", Text, ForeignKey("reps.rep_id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    PrimaryKeyConstraint("rep_id", "kind", "direction"),
)

activity = Table(
    "activity",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("kind", "hour"),
)

org_settings = Table(
    "org_settings",
    metadata,
    Column("org_id", Text, primary_key=True),
    Column("settings", JSON, nullable=False),
)

# Moved by every save of the org's settings, CRM section or configurations (in the same
# transaction): a process keeps those in memory while the version it read them at holds.
settings_versions = Table(
    "settings_versions",
    metadata,
    Column("org_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
)

sync_configs = Table(
    "sync_configs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("settings", JSON, nullable=False),
    UniqueConstraint("org_id", "name"),
)

config_assignments = Table(
    "config_assignments",
    metadata,
    Column("config_id", Integer, ForeignKey("sync_configs.id", ondelete="CASCADE"), nullable=False),
    # Repeated here so the database itself refuses assigning one user (or profile) to two
    # configurations of an org, which would leave a rep's configuration ambiguous.
    Column("org_id", Text, nullable=False),
    Column("subject", String(16), nullable=False),
    Column("subject_id", Text, nullable=False),
    PrimaryKeyConstraint("config_id", "subject", "subject_id"),
    UniqueConstraint("org_id", "subject", "subject_id"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("token", LargeBinary, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# ---- the admin console: local admin accounts, sessions, API tokens, failed sign-ins ----

admins = Table(
    "admins",
    metadata,
    Column("username", String(128), primary_key=True),
    # An argon2 hash (the whole encoded string, salt and parameters included).
    Column("password_hash", Text, nullable=False),
    Column("permissions", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


def _held_by_admin(name: str, *columns: Column[Any]) -> Table:
    """A table of secrets an admin holds, keyed by the SHA-256 of the secret (a leaked
    table signs nobody in); they go when the admin goes."""
    return Table(
        name,
        metadata,
        Column("token_hash", String(64), primary_key=True),
        Column(
            "username",
            String(128),
            ForeignKey("admins.username", ondelete="CASCADE"),
            nullable=False,
        ),
        *columns,
    )


admin_sessions = _held_by_admin(
    "admin_sessions",
    Column("csrf_token", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
api_tokens = _held_by_admin(
    "api_tokens",
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Who was tried and from where, e.g. "user:ann" or "ip:10.0.0.5".
    Column("key", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "key", "at"),
)

# ---- the org's CRM: which one and how to reach it, and the API calls spent on it ----

crm_settings = Table(
    "crm_settings",
    metadata,
    Column("org_id", Text, primary_key=True),
    Column("settings", JSON, nullable=False),
)

# A metered CRM's (Salesforce's) API calls this deployment made, in one-hour buckets (UTC):
# the org status's calls per day, beside the org-wide usage Salesforce reports.
crm_api_calls = Table(
    "crm_api_calls",
    metadata,
    Column("hour", UTCDateTime, primary_key=True),
    Column("calls", Integer, nullable=False),
    # Rep cycles that ran in the hour: calls / cycles is the average cost of a cycle.
    Column("cycles", Integer, nullable=False, default=0, server_default="0"),
)
