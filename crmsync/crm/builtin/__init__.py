"""The built-in CRM: crmsync's embedded default CRM on SQLAlchemy (SQLite or PostgreSQL).

`BuiltinCrm` is the Python API; `BuiltinCrm.side` gives the sync engine one rep's owned
contacts or events; `jsonl` imports and exports records as JSON Lines.
"""

from crmsync.crm.builtin.crm import BuiltinCrm
from crmsync.crm.builtin.errors import (
    CrmError,
    Duplicate,
    InUse,
    InvalidRecord,
    NotFound,
    StaleVersion,
)
from crmsync.crm.builtin.relations import EventRelations
from crmsync.crm.builtin.rows import OwnedKind, Stored
from crmsync.crm.builtin.sides import OwnerSide

__all__ = [
    "BuiltinCrm",
    "CrmError",
    "Duplicate",
    "EventRelations",
    "InUse",
    "InvalidRecord",
    "NotFound",
    "OwnedKind",
    "OwnerSide",
    "StaleVersion",
    "Stored",
]
