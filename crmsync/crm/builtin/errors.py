"""The errors the built-in CRM's Python API raises.

The `ItemSide` adapter (`sides.py`) turns them into `crmsync.domain.sync` errors; the CLI
prints their message. All derive from `CrmError`.
"""

from __future__ import annotations


class CrmError(Exception):
    """Something the caller asked of the built-in CRM cannot be done; the message says why."""


class NotFound(CrmError, LookupError):
    """No record of that kind has that id (or no user has that email)."""


class Duplicate(CrmError):
    """The write would break a uniqueness rule (a user email, a profile name, an id)."""


class InvalidRecord(CrmError, ValueError):
    """The record's content cannot be stored as given (a naive datetime, end before start ...)."""


class InUse(CrmError):
    """The record is still referenced (a user owning records, a profile assigned to users)."""


class StaleVersion(CrmError):
    """The record changed since the version the caller read."""
