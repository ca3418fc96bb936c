"""The engine's state for one rep's cycle, answering from what the cycle's opening read
(`StateStore.open_cycle`) found and from what the cycle itself wrote: a quiet cycle then
reads nothing per kind, and a busy one its links once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import AuditEntry, ErrorEntry, Link, Side, WriteIntent
from crmsync.store.cycles import RepCycleRecord

if TYPE_CHECKING:
    from crmsync.store.fencing import FencedState
    from crmsync.store.state import StateStore


class ReadAhead:
    """`SyncState` over ``state`` (the store, or the store under the rep's lease).

    The rep's cursors come from ``record`` and follow the cycle's own saves. Its links of
    the kind in hand are read once and follow the cycle's own link writes (the kind's
    rounds plan from them again after the writes). Its pending
    write intents of a kind come from ``record`` until the cycle records intents of that
    kind; then they are read from ``state`` again, unless every intent known to be
    pending has been settled since (the usual end of a round that wrote). Writes and
    links go to ``state``; asked about another rep it raises ``ValueError``, as
    `FencedState` does.
    """

    def __init__(self, state: StateStore | FencedState, record: RepCycleRecord) -> None:
        self._state = state
        self._record = record
        # Per kind whose intents moved: the keys pending as far as this cycle knows.
        self._pending: dict[ItemKind, set[str]] = {}
        # The links of one kind (the one syncing) by CRM id, and whether in CRM id order.
        self._links: tuple[ItemKind, dict[str, Link]] | None = None
        self._links_ordered = True

    def __repr__(self) -> str:
        return f"ReadAhead({self._state!r}, rep_id={self._record.rep_id!r})"

    def _own(self, rep_id: str) -> None:
        if rep_id != self._record.rep_id:
            raise ValueError(
                f"this state is the cycle of rep {self._record.rep_id!r}, not of {rep_id!r}"
            )

    def links(self, rep_id: str, kind: ItemKind) -> list[Link]:
        self._own(rep_id)
        if self._links is None or self._links[0] is not kind:
            # One kind at a time: a rep's 50,000 contacts need not stay while events sync.
            self._links = None
            self._links = (kind, {link.crm_id: link for link in self._state.links(rep_id, kind)})
            self._links_ordered = True
        held = self._links[1]
        if not self._links_ordered:
            ordered = sorted(held.values(), key=lambda link: link.crm_id)
            held.clear()
            held.update((link.crm_id, link) for link in ordered)
            self._links_ordered = True
        return list(held.values())

    def apply_links(
        self,
        rep_id: str,
        kind: ItemKind,
        saves: Sequence[Link],
        drops: Sequence[str],
        settled: Sequence[str] = (),
    ) -> None:
        self._own(rep_id)
        try:
            self._state.apply_links(rep_id, kind, saves, drops, settled)
        except BaseException:
            self._links = None  # read again: what the store holds now is not known here
            raise
        if settled:
            self._moved(kind).difference_update(settled)
        if self._links is not None and self._links[0] is kind:
            held = self._links[1]
            for crm_id in drops:
                held.pop(crm_id, None)
            for link in saves:
                if link.crm_id not in held:
                    self._links_ordered = False
                held[link.crm_id] = link

    def pending_intents(self, rep_id: str, kind: ItemKind) -> list[WriteIntent]:
        self._own(rep_id)
        pending = self._pending.get(kind)
        if pending is None:
            return list(self._record.intents.get(kind, ()))
        return self._state.pending_intents(rep_id, kind) if pending else []

    def record_intents(self, rep_id: str, kind: ItemKind, intents: Sequence[WriteIntent]) -> None:
        self._own(rep_id)
        self._state.record_intents(rep_id, kind, intents)
        self._moved(kind).update(intent.key for intent in intents)

    def _moved(self, kind: ItemKind) -> set[str]:
        if kind not in self._pending:
            self._pending[kind] = {i.key for i in self._record.intents.get(kind, ())}
        return self._pending[kind]

    def cursor(self, rep_id: str, kind: ItemKind, side: Side) -> str | None:
        self._own(rep_id)
        return self._record.cursors.get((kind, side))

    def save_cursors(
        self,
        rep_id: str,
        kind: ItemKind,
        cursors: Mapping[Side, str | None],
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        self._own(rep_id)
        self._state.save_cursors(rep_id, kind, cursors, audit)
        for side, cursor in cursors.items():
            if cursor is None:
                self._record.cursors.pop((kind, side), None)
            else:
                self._record.cursors[(kind, side)] = cursor

    def clear_rep(self, rep_id: str) -> None:
        """Reset sync (`StateStore.clear_rep`): the rep's cursors and intents go too."""
        self._own(rep_id)
        self._state.clear_rep(rep_id)
        self._record.cursors.clear()
        self._record.intents.clear()
        self._pending.clear()
        self._links = None

    def record_error(self, entry: ErrorEntry) -> None:
        self._state.record_error(entry)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._state.record_audit(entries)
