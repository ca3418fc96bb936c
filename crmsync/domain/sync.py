"""What backends hand the engine and the engine hands the state store.

Backends build these values without knowing the engine: a side lists its items as `Seen`
values inside `Changes`, answers a write with `Written`, and raises one of the `SyncError`
subclasses when an item or the whole rep cannot be served.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from crmsync.domain.records import ItemKind, Record


class Side(StrEnum):
    CRM = "crm"
    MAIL = "mail"

    @property
    def other(self) -> Side:
        return Side.MAIL if self is Side.CRM else Side.CRM


class ErrorType(StrEnum):
    MALFORMED_ITEM = "malformed_item"
    REJECTED_WRITE = "rejected_write"
    VERSION_CONFLICT = "version_conflict"
    SERVER_UNAVAILABLE = "server_unavailable"
    AUTHENTICATION = "authentication"
    FOLDER_MISSING = "folder_missing"
    MASS_DELETE = "mass_delete"
    CONFIGURATION = "configuration"
    INTERNAL = "internal"


# The suggestion of an error row for a failure crmsync itself caused.
BUG_SUGGESTION = "This is a crmsync bug: report it with this row."


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """Why one item could not be read or written, in words an admin can act on."""

    error_type: ErrorType
    message: str
    suggestion: str


@dataclass(frozen=True, slots=True)
class Seen:
    """One item as a side lists it.

    ``record`` is ``None`` when the item could not be mapped (``problem`` says why) or is
    left out by a rule (no ``problem``; ``note`` names the rule: a group card, a cancelled
    event). ``marker`` is the other side's id stamped on the item when crmsync created it
    there. ``note`` on a mapped item names a repair made while reading it ("the vCard has
    no FN"), for the audit trail.
    """

    id: str
    version: str
    record: Record | None
    marker: str | None = None
    problem: ItemProblem | None = None
    note: str = ""

    @property
    def left_out(self) -> bool:
        """Not a live item by a rule of its side: as good as deleted, never an error."""
        return self.record is None and self.problem is None

    @classmethod
    def malformed(cls, item_id: str, version: str, message: str, suggestion: str) -> Seen:
        """An item its side could not read: an error-report row, never a raised error."""
        return cls(
            item_id,
            version,
            None,
            problem=ItemProblem(ErrorType.MALFORMED_ITEM, message, suggestion),
        )


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed on one side since a cursor.

    With ``full`` set, ``items`` holds every item in scope, and a linked id absent from it
    was deleted; otherwise ``deleted`` lists the ids removed since the cursor. ``cursor`` is
    saved only once the changes have been applied.
    """

    items: tuple[Seen, ...]
    deleted: tuple[str, ...] = ()
    cursor: str | None = None
    full: bool = False


@dataclass(frozen=True, slots=True)
class Written:
    """The result of a create or update: the item's id, new version and what it now holds."""

    id: str
    version: str
    record: Record


@dataclass(frozen=True, slots=True)
class Link:
    """One synced pair: the truth of pairing (DESIGN rule 1).

    ``detached`` names the side whose item was deleted when the deletion was not carried
    to the other side (deletions not propagated, or the direction forbids it): the pair no
    longer syncs, and the link remains so the surviving item is never taken for a new one.
    """

    rep_id: str
    kind: ItemKind
    crm_id: str
    mail_id: str
    crm_version: str
    mail_version: str
    crm_hash: str
    mail_hash: str
    detached: Side | None = None

    def id_on(self, side: Side) -> str:
        return self.crm_id if side is Side.CRM else self.mail_id

    def version_on(self, side: Side) -> str:
        return self.crm_version if side is Side.CRM else self.mail_version

    def hash_on(self, side: Side) -> str:
        return self.crm_hash if side is Side.CRM else self.mail_hash


class WriteOperation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WriteIntent:
    """A write the engine is about to make, recorded before it is made (DESIGN rule 5).

    A crash between a write and its link leaves the intent unsettled; the next cycle
    compares it with what the target holds then. ``crm_id`` / ``mail_id`` name the pair;
    the target's id is ``None`` for a create into a side that picks ids itself.
    ``source_version`` and ``source_hash`` describe the content being written;
    ``previous_version`` and ``previous_hash`` the target as it was read (an update's),
    which tell a write that never landed. ``replaces`` is the CRM id of the link a
    re-create takes over. ``target_cursor`` is the target side's cursor as of the read
    that planned the write: what changed on the target since it changed after that read.
    """

    rep_id: str
    kind: ItemKind
    operation: WriteOperation
    target: Side
    crm_id: str | None
    mail_id: str | None
    source_version: str = ""
    source_hash: str = ""
    previous_hash: str | None = None
    replaces: str | None = None
    previous_version: str | None = None
    target_cursor: str | None = None

    @property
    def key(self) -> str:
        """Unique among one rep's pending intents of one kind."""
        ids = f"{self.crm_id or ''}:{self.mail_id or ''}"
        return f"{self.operation.value}:{self.target.value}:{ids}"

    def id_on(self, side: Side) -> str | None:
        return self.crm_id if side is Side.CRM else self.mail_id


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """One row of the error report."""

    rep_id: str
    kind: ItemKind | None
    item_id: str | None
    operation: str
    error_type: ErrorType
    message: str
    suggestion: str
    at: dt.datetime
    # Set when read back: how often it happened and, if more than once, when first
    # (``at`` is the latest).
    occurrences: int = 1
    first_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of an item's history: what a cycle did or skipped, and the rule why."""

    rep_id: str
    kind: ItemKind
    crm_id: str | None
    mail_id: str | None
    action: str
    target: Side | None
    rule: str
    at: dt.datetime
    error: str | None = None


class SyncError(Exception):
    """A failure a backend reports in admin terms.

    ``transient`` failures (timeouts, 5xx, throttling after retries) leave the item to be
    tried again next cycle; others are recorded and the item is skipped until it changes.
    """

    error_type = ErrorType.INTERNAL
    transient = False

    def __init__(self, message: str, suggestion: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion

    def problem(self) -> ItemProblem:
        return ItemProblem(self.error_type, self.message, self.suggestion)


class VersionConflict(SyncError):
    """The item changed on the server since we read it (HTTP 412 and the like)."""

    error_type = ErrorType.VERSION_CONFLICT
    transient = True


class AlreadyExists(SyncError):
    """A create found an item already in place under the same client-chosen id."""

    error_type = ErrorType.VERSION_CONFLICT


class RejectedWrite(SyncError):
    """The server refused the item's content (HTTP 400/403/415 and the like)."""

    error_type = ErrorType.REJECTED_WRITE


class ServerUnavailable(SyncError):
    """The server kept failing (timeouts, resets, 5xx, 429) after retries."""

    error_type = ErrorType.SERVER_UNAVAILABLE
    transient = True


class AuthenticationFailed(SyncError):
    """The service account was refused: stops this rep's cycle only."""

    error_type = ErrorType.AUTHENTICATION


class FolderMissing(SyncError):
    """The rep's principal, calendar or contacts folder cannot be found or created.

    ``folder`` is one of ``"principal"``, ``"calendar"`` or ``"contacts"``.
    """

    error_type = ErrorType.FOLDER_MISSING

    def __init__(self, message: str, suggestion: str = "", folder: str = "") -> None:
        super().__init__(message, suggestion)
        self.folder = folder
