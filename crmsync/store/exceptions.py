"""What the state store raises, beyond the database driver's own errors."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the state store's own errors."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer crmsync than this one; it is left untouched."""


class LinkConflict(StoreError):
    """A link would pair a mail-side item that another CRM item is already linked to.

    The engine must drop the old link first: silently replacing it would orphan the other
    CRM item and duplicate it on the next cycle.
    """


class ConfigConflict(StoreError):
    """A user or profile is already assigned to another configuration of the org."""


class SecretError(StoreError):
    """A secret cannot be decrypted (wrong or replaced key file). Never carries the value."""


class LeaseLost(StoreError):
    """The rep's lease moved to another worker (its fence changed); the write was refused."""
