"""The interfaces the engine needs; backends and the state store satisfy them structurally.

Nothing here is imported by a backend: they only build the values of `crmsync.domain.sync`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

from crmsync.domain.records import ItemKind, Record
from crmsync.domain.sync import (
    AuditEntry,
    Changes,
    ErrorEntry,
    Link,
    Seen,
    Side,
    SyncError,
    WriteIntent,
    Written,
)


class ItemSide(Protocol):
    """One rep's items of one kind on one side (a CRM owner's contacts, a DAV calendar ...)."""

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """Items changed since ``cursor``.

        ``known`` maps the ids the links hold to the version last synced. Without a cursor,
        or when the side rejects it, the side lists everything (``full``): it returns only
        items whose version differs from ``known`` (unchanged ones cost no download) and
        reports the known ids it no longer holds in ``deleted``.
        """
        ...

    def fetch(self, item_id: str) -> Seen | None:
        """The item as it is now, or ``None`` if it is gone."""
        ...

    def create(self, record: Record, marker: str) -> Written:
        """Create an item stamped with ``marker`` (the other side's id).

        Idempotent per marker: when an item carrying ``marker`` already exists (a create
        that went through before a crash), it is returned unchanged instead.
        """
        ...

    def planned_id(self, marker: str) -> str | None:
        """The id `create` will give the item stamped with ``marker``, when the side picks
        it before writing (a CalDAV href, a client-chosen key); ``None`` when the server
        assigns it. Lets a crashed cycle's successor recognise that create's deletion."""
        ...

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """Change the mapped fields only; raises `VersionConflict` when ``version`` is stale."""
        ...

    def delete(self, item_id: str, version: str) -> None:
        """Remove the item; an item already gone is not an error."""
        ...


@runtime_checkable
class BatchWrites(Protocol):
    """What an `ItemSide` may offer besides: many writes of one operation per request
    (Salesforce's sObject Collections take 200 records a call).

    Each method answers one outcome per item, in order: what the item-by-item method would
    have returned, or the `SyncError` it would have raised (a refused record does not fail
    the others). An exception raised by the call itself stands for every item's outcome.
    The executor calls them inside a batch of `LinkBatch.SIZE` actions, between recording
    the batch's intents and saving its links, as it calls the single-item methods.
    """

    def create_many(self, items: Sequence[tuple[Record, str]]) -> Sequence[Written | SyncError]:
        """`ItemSide.create` of each ``(record, marker)``."""
        ...

    def update_many(
        self, items: Sequence[tuple[str, str, Record]]
    ) -> Sequence[Written | SyncError]:
        """`ItemSide.update` of each ``(item_id, version, record)``."""
        ...

    def delete_many(self, items: Sequence[tuple[str, str]]) -> Sequence[SyncError | None]:
        """`ItemSide.delete` of each ``(item_id, version)``."""
        ...


@runtime_checkable
class ReadsAlong(Protocol):
    """What an `ItemSide` may offer besides: reading the current content of items the
    cycle may update along with its changes, where that costs no request of its own (a
    DAV update writes the item's text back with only the mapped fields changed, so it
    needs that text: one GET per item otherwise)."""

    def read_along(self, versions: Mapping[str, str]) -> None:
        """Items (id → the version last synced) whose content the next `changes` may
        read and keep for an update; the hint lasts for that one call."""
        ...


@runtime_checkable
class CarriesWrites(Protocol):
    """What an `ItemSide` may offer besides: a cursor that answers for the cycle's own
    writes, so no settling round has to read past them (see `sync_kind`)."""

    def cursor_after_writes(self, cursor: str | None, written: Collection[str]) -> str | None:
        """A cursor to save instead of ``cursor`` (read before ``written``, the ids this
        round created, updated or deleted) from which the next `changes` reports every
        later change of those items too: their deletion, or their return to the content
        they had at ``cursor``, which a sync token naming a content state does not."""
        ...


class SyncState(Protocol):
    """Links, cursors and the error report for the engine (the state store)."""

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]: ...

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        """In one transaction: drop the links of the CRM ids in ``drops``, then insert or
        replace ``saves`` (keyed by ``(rep_id, kind, crm_id)``), and forget the pending
        intents whose keys are in ``settled``."""
        ...

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        """Intents recorded and not settled yet, oldest first."""
        ...

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        """Durably add (or replace, by key) intents, in one transaction, before the writes."""
        ...

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None: ...

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Replace the cursors of the sides in ``cursors`` (``None`` forgets one: the next
        read of that side is a full listing) and append ``audit``, in one transaction."""
        ...

    def record_error(self, entry: ErrorEntry) -> None: ...

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append audit-trail entries (what was done or skipped, and why)."""
        ...
