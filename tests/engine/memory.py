"""In-memory sides and state for planner and executor tests (test code only).

`MemorySide` behaves like a server with a change log: versions are counters, cursors
are log positions, creates are idempotent per marker, stale versions raise
`VersionConflict`. `ContentStateSide` differs in its cursors only: they name content
states, as Xandikos' sync tokens do. `MemoryState` keeps links, cursors and errors in dicts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from crmsync.domain.records import ItemKind, Record
from crmsync.domain.sync import (
    AuditEntry,
    Changes,
    ErrorEntry,
    Link,
    Seen,
    ServerUnavailable,
    Side,
    SyncError,
    VersionConflict,
    WriteIntent,
    Written,
)


class Crash(BaseException):
    """The process died here: nothing after it runs, and the state store takes no write."""


@dataclass
class Stored:
    version: int
    record: Record
    marker: str | None


class MemorySide:
    """``planned_ids``: creates choose the id from the marker (as CalDAV hrefs do), and
    `planned_id` tells it in advance; otherwise ids come from a counter at write time."""

    def __init__(self, prefix: str, planned_ids: bool = False) -> None:
        self.prefix = prefix
        self.planned_ids = planned_ids
        self.items: dict[str, Stored] = {}
        self.log: list[str] = []
        # Every state each id held, oldest first: what a client's stale copy may put back.
        self.history: dict[str, list[Stored]] = {}
        self.writes = 0
        self.fail_next_writes = 0
        # Crash the cycle at the n-th write from now (1-based): before the write reaches
        # this side, or after it landed (``crash_after_landing``). ``frozen`` is the state
        # that stops taking writes at that moment.
        self.crash_at_write: int | None = None
        self.crash_after_landing = False
        self.frozen: MemoryState | None = None
        self.written_ids: list[str] = []
        # Cursors are "epoch:log position"; one of an older epoch is refused.
        self.epoch = 0
        self._ids = itertools.count(1)
        self._versions = itertools.count(1)

    # -- what a person does on this side -------------------------------------------------
    def put(self, record: Record, item_id: str | None = None) -> str:
        item_id = item_id or f"{self.prefix}{next(self._ids)}"
        marker = self.items[item_id].marker if item_id in self.items else None
        self._store(item_id, Stored(next(self._versions), record, marker))
        return item_id

    def put_back(self, item_id: str, earlier: Stored) -> None:
        """A client saving its stale copy over the item: an ``earlier`` state from
        `history`, version (ETag) and all."""
        self._store(item_id, replace(earlier))

    def remove(self, item_id: str) -> None:
        del self.items[item_id]
        self.log.append(item_id)

    def touch(self, item_id: str) -> None:
        """A new version with the same content, as a server rewriting its etags."""
        stored = self.items[item_id]
        self._store(item_id, Stored(next(self._versions), stored.record, stored.marker))

    def _store(self, item_id: str, stored: Stored) -> None:
        self.items[item_id] = stored
        self.history.setdefault(item_id, []).append(stored)
        self.log.append(item_id)

    # -- ItemSide -------------------------------------------------------------------------
    def forget_history(self) -> None:
        """Refuse every cursor issued so far, as a server that expired its sync tokens."""
        self.epoch += 1

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        position = None
        if cursor is not None:
            epoch, _, at = cursor.partition(":")
            position = int(at) if int(epoch) == self.epoch else None
        head = f"{self.epoch}:{len(self.log)}"
        if position is None:
            return self._listed(known, head)
        touched = sorted(set(self.log[position:]))
        items = tuple(self._seen(i) for i in touched if i in self.items)
        deleted = tuple(i for i in touched if i not in self.items)
        return Changes(items, deleted, head)

    def _listed(self, known: Mapping[str, str], cursor: str) -> Changes:
        """Everything, as a side lists it without a cursor it knows."""
        items = tuple(
            self._seen(item_id)
            for item_id in sorted(self.items)
            if known.get(item_id) != str(self.items[item_id].version)
        )
        deleted = tuple(sorted(set(known) - set(self.items)))
        return Changes(items, deleted, cursor, full=True)

    def fetch(self, item_id: str) -> Seen | None:
        return self._seen(item_id) if item_id in self.items else None

    def create(self, record: Record, marker: str) -> Written:
        for item_id, stored in self.items.items():
            if stored.marker == marker:
                return Written(item_id, str(stored.version), stored.record)
        self._write()
        item_id = self.put(record, self.planned_id(marker))
        self.items[item_id].marker = marker
        self._landed(item_id)
        return Written(item_id, str(self.items[item_id].version), record)

    def planned_id(self, marker: str) -> str | None:
        return f"{self.prefix}:{marker}" if self.planned_ids else None

    def update(self, item_id: str, version: str, record: Record) -> Written:
        if item_id not in self.items or str(self.items[item_id].version) != version:
            raise VersionConflict(f"{item_id} changed since version {version}")
        self._write()
        self.put(record, item_id)
        self._landed(item_id)
        return Written(item_id, str(self.items[item_id].version), record)

    def delete(self, item_id: str, version: str) -> None:
        if item_id not in self.items:
            return
        if str(self.items[item_id].version) != version:
            raise VersionConflict(f"{item_id} changed since version {version}")
        self._write()
        self.remove(item_id)
        self._landed(item_id)

    def _write(self) -> None:
        if self.fail_next_writes:
            self.fail_next_writes -= 1
            raise ServerUnavailable("simulated outage", "try again later")
        if self.crash_at_write is not None:
            self.crash_at_write -= 1
            if self.crash_at_write == 0 and not self.crash_after_landing:
                self._crash()
        self.writes += 1

    def _landed(self, item_id: str) -> None:
        self.written_ids.append(item_id)
        if self.crash_at_write == 0:
            self._crash()

    def _crash(self) -> None:
        self.crash_at_write = None
        if self.frozen is not None:
            self.frozen.down = True
        raise Crash

    def _seen(self, item_id: str) -> Seen:
        stored = self.items[item_id]
        return Seen(item_id, str(stored.version), stored.record, stored.marker)


# Between a cursor's snapshot and the ids written after it was read.
WRITTEN_AFTER = "\n"


class ContentStateSide(MemorySide):
    """A `MemorySide` whose cursors name content states, as Xandikos' sync tokens do:
    each `changes` keeps a snapshot of every item's version, and `changes` from it
    reports only the items whose version or existence differs between that snapshot and
    now. So an item created after the snapshot and deleted again is no change, nor is one
    put back at the version it had then. Like `DavCollection`, it carries the ids written
    after a cursor in it (`CarriesWrites`) and reads those the difference leaves out."""

    def __init__(self, prefix: str, planned_ids: bool = False) -> None:
        super().__init__(prefix, planned_ids)
        # Cursor → every item's version when that cursor was issued.
        self.snapshots: dict[str, dict[str, int]] = {}
        self._states = itertools.count()

    def forget_history(self) -> None:
        self.snapshots.clear()

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        token, *written = (cursor or "").split(WRITTEN_AFTER)
        then = self.snapshots.get(token)
        now = {item_id: stored.version for item_id, stored in self.items.items()}
        head = f"state:{next(self._states)}"
        self.snapshots[head] = now
        if then is None:
            return self._listed(known, head)
        differ = {i for i in then.keys() | now.keys() if then.get(i) != now.get(i)}
        # Written after the snapshot, yet no difference: back at the state it had then.
        unnamed = {i for i in written if i not in differ}
        items = tuple(self._seen(i) for i in sorted(differ | unnamed) if i in now)
        deleted = sorted(i for i in differ if i not in now)
        deleted += sorted(i for i in unnamed if i not in now and i in known)
        return Changes(items, tuple(deleted), head)

    def cursor_after_writes(self, cursor: str | None, written: Collection[str]) -> str | None:
        """``cursor``'s snapshot followed by the ``written`` ids (`CarriesWrites`)."""
        if cursor is None:
            return None
        token, *carried = cursor.split(WRITTEN_AFTER)
        return WRITTEN_AFTER.join([token, *sorted({*carried, *written})])


class BatchingMemorySide(MemorySide):
    """A `MemorySide` that also takes many writes per call (`BatchWrites`), as Salesforce's
    sObject Collections do: one outcome per item, a refused item failing alone.
    ``batch_calls`` counts the calls; a crash inside one leaves the items before it landed."""

    def __init__(self, prefix: str, planned_ids: bool = False) -> None:
        super().__init__(prefix, planned_ids)
        self.batch_calls: list[tuple[str, int]] = []

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        self.batch_calls.append(("create", len(items)))
        return [_outcome(self.create, *item) for item in items]

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        self.batch_calls.append(("update", len(items)))
        return [_outcome(self.update, *item) for item in items]

    def delete_many(self, items: Sequence[tuple[str, str]]) -> list[SyncError | None]:
        self.batch_calls.append(("delete", len(items)))
        return [_outcome(self.delete, *item) for item in items]


def _outcome(write: Callable[..., Any], *args: Any) -> Any:
    try:
        return write(*args)
    except SyncError as failure:
        return failure


@dataclass
class MemoryState:
    link_rows: dict[tuple[str, ItemKind, str], Link] = field(default_factory=dict)
    cursors: dict[tuple[str, ItemKind, Side], str | None] = field(default_factory=dict)
    errors: list[ErrorEntry] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    intents: dict[tuple[str, ItemKind, str], WriteIntent] = field(default_factory=dict)
    # Set by a `Crash`: the process is gone, so nothing more reaches the store.
    down: bool = False

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]:
        return [row for (r, k, _), row in self.link_rows.items() if r == rep_id and k == kind]

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        if self.down:
            return
        for crm_id in drops:
            self.drop_link(rep_id, kind, crm_id)
        for link in saves:
            self.save_link(link)
        for key in settled:
            self.intents.pop((rep_id, kind, key), None)

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        return [i for (r, k, _), i in self.intents.items() if r == rep_id and k == kind]

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        if self.down:
            return
        for intent in intents:
            # Re-recording a key moves it to the end, as the store's order by row id does.
            self.intents.pop((rep_id, kind, intent.key), None)
            self.intents[rep_id, kind, intent.key] = intent

    def save_link(self, link: Link) -> None:
        for other in self.link_rows.values():
            if other.mail_id == link.mail_id and other.crm_id != link.crm_id:
                raise AssertionError(f"mail id {link.mail_id} linked twice")
        self.link_rows[link.rep_id, link.kind, link.crm_id] = link

    def drop_link(self, rep_id: str, kind: ItemKind, crm_id: str) -> None:
        self.link_rows.pop((rep_id, kind, crm_id), None)

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None:
        return self.cursors.get((rep_id, kind, side))

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        if self.down:
            return
        for side, cursor in cursors.items():
            self.cursors[rep_id, kind, side] = cursor
        self.audit.extend(audit)

    def record_error(self, entry: ErrorEntry) -> None:
        if self.down:
            return
        self.errors.append(entry)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        if self.down:
            return
        self.audit.extend(entries)
