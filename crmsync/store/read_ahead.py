"""The engine's state for one rep's cycle, answering from what the cycle's opening read
(`StateStore.open_cycle`) found: a quiet cycle then reads nothing per kind but, when a
side changed, the links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, ErrorEntry, Link, Side, WriteIntent
from crmsync.store.cycles import RepCycleRecord

if TYPE_CHECKING:
    from crmsync.store.fencing import FencedState
    from crmsync.store.state import StateStore


class ReadAhead:
    """`SyncState` over ``state`` (the store, or the store under the rep's lease).

    The rep's cursors come from ``record`` and follow the cycle's own saves. Its pending
    write intents of a kind come from ``record`` until the cycle records or settles
    intents of that kind; from then on they are read from ``state`` again. Writes, links
    and other reps go to ``state``.
    """

    def __init__(self, state: StateStore | FencedState, record: RepCycleRecord) -> None:
        self._state = state
        self._record = record
        self._intents_moved: set[ItemKind] = set()

    def __repr__(self) -> str:
        return f"ReadAhead({self._state!r}, rep_id={self._record.rep_id!r})"

    def _own(self, rep_id: str) -> bool:
        return rep_id == self._record.rep_id

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]:
        return self._state.links(rep_id, kind)

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        self._state.apply_links(rep_id, kind, saves, drops, settled)
        if settled and self._own(rep_id):
            self._intents_moved.add(kind)

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        if self._own(rep_id) and kind not in self._intents_moved:
            return list(self._record.intents.get(kind, ()))
        return self._state.pending_intents(rep_id, kind)

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        self._state.record_intents(rep_id, kind, intents)
        if intents and self._own(rep_id):
            self._intents_moved.add(kind)

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None:
        if self._own(rep_id):
            return self._record.cursors.get((kind, side))
        return self._state.cursor(rep_id, kind, side)

    def save_cursor(self, rep_id: str, kind: ItemKind, side: Side, cursor: str | None) -> None:
        self._state.save_cursor(rep_id, kind, side, cursor)
        if self._own(rep_id):
            if cursor is None:
                self._record.cursors.pop((kind, side), None)
            else:
                self._record.cursors[(kind, side)] = cursor

    def clear_rep(self, rep_id: str) -> None:
        """Reset sync (`StateStore.clear_rep`): the rep's cursors and intents go too."""
        self._state.clear_rep(rep_id)
        if self._own(rep_id):
            self._record.cursors.clear()
            self._record.intents.clear()

    def record_error(self, entry: ErrorEntry) -> None:
        self._state.record_error(entry)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._state.record_audit(entries)
