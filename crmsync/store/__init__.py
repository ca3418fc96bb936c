"""The state store: links, cursors, statuses, error report, activity, settings, secrets.

SQLAlchemy Core over SQLite (default) or PostgreSQL, with the schema kept by the Alembic
migrations in ``migrations/``. Imports only `crmsync.domain`. Open it with `StateStore`.
"""

from crmsync.store.activity import hour_of
from crmsync.store.configs import DEFAULT_ORG
from crmsync.store.cycles import RepCycleRecord
from crmsync.store.error_report import ErrorSort
from crmsync.store.exceptions import (
    ConfigConflict,
    LeaseLost,
    LinkConflict,
    SchemaTooNew,
    SecretError,
    StoreError,
)
from crmsync.store.fencing import CLAIM_BATCH, FencedState
from crmsync.store.org_snapshot import OrgSnapshot
from crmsync.store.read_ahead import ReadAhead
from crmsync.store.rep_credentials import RepCredentials
from crmsync.store.state import StateStore
from crmsync.store.status import CHECKS, FLOWS, MailPause, RepStatus, ResetStatus, SyncStatus

__all__ = [
    "CHECKS",
    "CLAIM_BATCH",
    "DEFAULT_ORG",
    "FLOWS",
    "ConfigConflict",
    "ErrorSort",
    "FencedState",
    "LeaseLost",
    "LinkConflict",
    "MailPause",
    "OrgSnapshot",
    "ReadAhead",
    "RepCredentials",
    "RepCycleRecord",
    "RepStatus",
    "ResetStatus",
    "SchemaTooNew",
    "SecretError",
    "StateStore",
    "StoreError",
    "SyncStatus",
    "hour_of",
]
