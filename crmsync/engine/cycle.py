"""One rep's sync cycle for one kind: detect, plan, execute, then save the cursors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import (
    AuditEntry,
    Changes,
    ErrorEntry,
    ErrorType,
    Link,
    Side,
    WriteIntent,
)
from crmsync.engine.executor import ActionListener, Clock, Executor, KindReport, utc_now
from crmsync.engine.intents import Settlement, settle
from crmsync.engine.planner import Action, Policy, hold_mass_deletes, plan
from crmsync.engine.ports import CarriesWrites, ItemSide, ReadsAlong, SyncState

# A round that wrote something is followed by a settling round unless the sides' cursors
# answer for its writes (see `sync_kind`); more rounds only happen while people keep
# editing during the cycle.
MAX_ROUNDS = 3
# The most writes a side's cursor carries; past it (a first sync), one settling round
# costs less than a cursor naming every item.
CARRIED_WRITES = 100


def sync_kind(
    rep_id: str,
    kind: ItemKind,
    crm: ItemSide,
    mail: ItemSide,
    state: SyncState,
    policy: Policy,
    clock: Clock = utc_now,
    on_action: ActionListener | None = None,
) -> KindReport:
    """Bring one rep's items of one kind in line on both sides.

    Cursors are saved only after a round's plan ran, and only when no write failed for a
    passing reason: otherwise both sides' changes are read and planned again next cycle.
    Re-reading is harmless because planning compares versions with the links.

    A round's cursors were read before its writes. For servers whose sync token names a
    content state rather than a position in a log (Xandikos), that hides later
    changes of the written items: from a token taken before we created an item, its
    deletion is no difference at all, nor is an updated item's return to its earlier
    content (a client putting back its stale copy). So a side offering `CarriesWrites`
    saves a cursor that answers for the round's writes (up to `CARRIED_WRITES`), and the
    next listing brings our own writes back with the versions the links hold, which
    costs no download. Where a side that was written cannot, a settling round reads from
    the new cursors: it sees our own writes (already linked: no action) and anything
    people changed meanwhile, and its cursors lie after our writes. (The settling round
    was two of the eight requests of a 1 % churn cycle on a DAV server.)
    """
    sides: dict[Side, ItemSide] = {Side.CRM: crm, Side.MAIL: mail}
    report = KindReport(kind)
    saved = {side: state.cursor(rep_id, kind, side) for side in sides}
    # The executors' audit entries not written yet: they go with the next cursor save
    # (one transaction), else once the kind ends.
    audit: list[AuditEntry] = []
    try:
        for _ in range(MAX_ROUNDS):
            synced, changes, actions, held = _read_and_plan(
                rep_id, kind, sides, state, policy, saved, settle_intents=True
            )
            for side, side_changes in changes.items():
                report.full_listing.setdefault(side, side_changes.full)
            cursors = {side: side_changes.cursor for side, side_changes in changes.items()}
            executor = Executor(
                rep_id, kind, sides, state, policy, clock, on_action, report, cursors, audit=audit
            )
            executor.run(actions)
            if held:
                # Keep the cursors: the held deletions are planned again once confirmed.
                report.held_deletes = held
                state.record_error(
                    ErrorEntry(
                        rep_id,
                        kind,
                        None,
                        "delete",
                        ErrorType.MASS_DELETE,
                        f"{held} deletions held back: more than the mass-delete guard allows "
                        f"of {synced} synced {kind.value}s.",
                        "Check why so many items disappeared (a moved folder, a changed filter). "
                        "If the deletions are wanted, confirm them: Confirm deletions on the "
                        "rep's status page, or `crmsync confirm-deletes --rep EMAIL`; if not, "
                        "restore the items or reset the rep's sync.",
                        clock(),
                    )
                )
            if held or report.transient_failures:
                # The round's changes are read again from the cursors it read from, which
                # must then answer for what it linked after them (see `_kept_cursors`).
                kept = _kept_cursors(sides, saved, executor.linked_or_written())
                if kept:
                    state.save_cursors(rep_id, kind, kept, audit)
                    audit.clear()
                break
            cursors, settle = _after_writes(sides, cursors, executor.touched)
            moved = {
                side: cursor
                for side, cursor in cursors.items()
                if cursor != saved[side]  # a quiet cycle writes no cursor
            }
            if moved:
                state.save_cursors(rep_id, kind, moved, audit)
                audit.clear()
                saved.update(moved)
            if not settle:
                break
    finally:
        if audit:  # the last round saved no cursors, or the kind failed
            state.record_audit(audit)
    return report


def _after_writes(
    sides: Mapping[Side, ItemSide],
    cursors: dict[Side, str | None],
    touched: Mapping[Side, set[str]],
) -> tuple[dict[Side, str | None], bool]:
    """The cursors to save after a round that wrote ``touched`` (ids by side), and whether
    a settling round must read past its writes (see `sync_kind`)."""
    after = dict(cursors)
    settle = False
    for side, ids in touched.items():
        if not ids:
            continue
        item_side = sides[side]
        if isinstance(item_side, CarriesWrites) and len(ids) <= CARRIED_WRITES:
            after[side] = item_side.cursor_after_writes(cursors[side], ids)
        else:
            settle = True
    return after, settle


def _kept_cursors(
    sides: Mapping[Side, ItemSide],
    saved: Mapping[Side, str | None],
    linked: Mapping[Side, set[str]],
    pairs: Sequence[Link] = (),
) -> dict[Side, str | None]:
    """The cursors a round cut short saves (a write failed for a passing reason, deletions
    were held, or a crashed cycle's intents were settled): those it read from, so its
    changes are read again, made to answer for the items it ``linked`` or wrote, and those
    of ``pairs``. Kept as they were, a cursor naming a content state would hide such an
    item's deletion, or its return to that state, for good: the link is saved, and every
    later cursor lies past the change. Past `CARRIED_WRITES` items the cursor is dropped:
    the next cycle lists everything and compares it with the links."""
    kept: dict[Side, str | None] = {}
    for side, item_side in sides.items():
        ids = linked[side] | {link.id_on(side) for link in pairs}
        if not ids or not isinstance(item_side, CarriesWrites):
            continue
        many = len(ids) > CARRIED_WRITES
        cursor = None if many else item_side.cursor_after_writes(saved[side], ids)
        if cursor != saved[side]:
            kept[side] = cursor
    return kept


def preview_kind(
    rep_id: str, kind: ItemKind, crm: ItemSide, mail: ItemSide, state: SyncState, policy: Policy
) -> list[Action]:
    """What the next `sync_kind` would do first, reading both sides and writing nothing."""
    sides: dict[Side, ItemSide] = {Side.CRM: crm, Side.MAIL: mail}
    saved = {side: state.cursor(rep_id, kind, side) for side in sides}
    return _read_and_plan(rep_id, kind, sides, state, policy, saved, settle_intents=False)[2]


def _read_and_plan(
    rep_id: str,
    kind: ItemKind,
    sides: dict[Side, ItemSide],
    state: SyncState,
    policy: Policy,
    saved: dict[Side, str | None],
    settle_intents: bool,
) -> tuple[int, dict[Side, Changes], list[Action], int]:
    """Read both sides from the ``saved`` cursors, settle a crashed cycle's intents, plan;
    returns the synced pairs' count, both sides' changes, the actions and the deletions
    held back.

    The links are read only when a side's listing asks about them or when there is
    something to plan: with no pending intent, and nothing changed or deleted on either
    side, every pair stands as it was synced and the plan is empty. With
    ``settle_intents`` off (a preview) the settled links are planned with but not saved,
    and the intents stay for the next real cycle.
    """
    stored = _StoredLinks(lambda: state.links(rep_id, kind))
    changes: dict[Side, Changes] = {}
    for side in (Side.CRM, Side.MAIL):
        item_side = sides[side]
        if changes and isinstance(item_side, ReadsAlong):
            # The items the other side's edits may make this cycle update.
            edited = _edited_elsewhere(stored, changes, side)
            if edited:
                item_side.read_along(edited)
        changes[side] = item_side.changes(saved[side], _KnownVersions(stored, side))
    intents = state.pending_intents(rep_id, kind)
    if not intents and not any(c.items or c.deleted for c in changes.values()):
        return 0, changes, [], 0
    links = stored.all()
    if intents:
        since_read = {
            (side, cursor): sides[side].changes(cursor, _known(links, side))
            for side, cursor in sorted(
                {(i.target, i.target_cursor) for i in intents if i.target_cursor is not None}
            )
        }
        settlement = settle(intents, links, changes, since_read)
        # The pairs the crashed cycle wrote or linked: those it settles, and those of its
        # intents (a cycle dying after it settled an earlier one's left them linked).
        pairs = _pairs_of(settlement, intents)
        if settle_intents:
            # Saved first, the cursors answer for those pairs from now on: another crash
            # before this cycle saves its own must not hide their changes (see
            # `_kept_cursors`).
            carried = _kept_cursors(sides, saved, {side: set() for side in sides}, pairs)
            if carried:
                state.save_cursors(rep_id, kind, carried)
                saved.update(carried)
            state.apply_links(
                rep_id,
                kind,
                settlement.saves,
                settlement.drops,
                [intent.key for intent in intents],
            )
        links = settlement.links
        changes = {
            side: _settled_read(sides[side], changes[side], settlement.saves, pairs, side)
            for side in sides
        }
    actions = plan(kind, links, changes[Side.CRM], changes[Side.MAIL], policy)
    synced = _synced(links)
    actions, held = hold_mass_deletes(actions, synced, policy.delete_guard)
    return synced, changes, actions, held


def _edited_elsewhere(
    stored: _StoredLinks, changes: dict[Side, Changes], side: Side
) -> dict[str, str]:
    """``side``'s ids and synced versions of the pairs whose other item the changes read
    so far show edited: the items this cycle may update on ``side``."""
    edited = {
        seen.id: seen.version
        for other in changes.values()
        for seen in other.items
        if seen.record is not None
    }
    if not edited:
        return {}
    other_side = side.other
    return {
        link.id_on(side): link.version_on(side)
        for link in stored.all()
        if link.detached is None
        and (version := edited.get(link.id_on(other_side))) is not None
        and version != link.version_on(other_side)
    }


class _StoredLinks:
    """The rep's links of the kind, read from the state on first use."""

    def __init__(self, read: Callable[[], list[Link]]) -> None:
        self._read = read
        self._links: list[Link] | None = None

    def all(self) -> list[Link]:
        if self._links is None:
            self._links = self._read()
        return self._links


class _KnownVersions(Mapping[str, str]):
    """`_known` of the stored links, built when a side's listing first looks at it: an
    incremental listing with nothing changed never does."""

    def __init__(self, stored: _StoredLinks, side: Side) -> None:
        self._stored = stored
        self._side = side
        self._versions: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._versions is None:
            self._versions = _known(self._stored.all(), self._side)
        return self._versions

    def __getitem__(self, item_id: str) -> str:
        return self._built()[item_id]

    # Mapping's own get and `in` go through __getitem__ and a KeyError per miss: on a
    # first sync every item misses, and that was a twentieth of its client CPU.
    def get(self, item_id: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._built().get(item_id, default)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._built()

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def _known(links: list[Link], side: Side) -> dict[str, str]:
    """The versions last synced of ``side``'s linked items; a detached pair's deleted item
    is not asked after (a full listing would report it gone every time)."""
    return {link.id_on(side): link.version_on(side) for link in links if link.detached is not side}


def _synced(links: list[Link]) -> int:
    return sum(1 for link in links if link.detached is None)


def _pairs_of(settlement: Settlement, intents: Sequence[WriteIntent]) -> list[Link]:
    """The settled links, and the links the intents' CRM ids have after the settlement."""
    pairs = {link.crm_id: link for link in settlement.saves}
    by_crm_id = {link.crm_id: link for link in settlement.links}
    for intent in intents:
        link = by_crm_id.get(intent.crm_id)
        if link is not None:
            pairs.setdefault(link.crm_id, link)
    return list(pairs.values())


def _settled_read(
    item_side: ItemSide, changes: Changes, saves: list[Link], pairs: list[Link], side: Side
) -> Changes:
    """``changes`` as if the settled links had been known when they were read.

    A full listing reports a known id it no longer holds as deleted, and lists every
    unknown item: a settled link's item (of ``saves``) it does not list is one a person
    deleted. An incremental one names what changed since a cursor read before the crashed
    cycle wrote or linked the items of ``pairs``: from a cursor naming a content state (a
    side offering `CarriesWrites`), an item a person deleted, or put back as it was then,
    is no change, so each of them it does not name is read on its own (after a crash
    only).
    """
    named = {seen.id for seen in changes.items} | set(changes.deleted)
    if changes.full:
        gone = [k.id_on(side) for k in saves if k.id_on(side) not in named]
        return replace(changes, deleted=(*changes.deleted, *gone)) if gone else changes
    unnamed = [link for link in pairs if link.id_on(side) not in named]
    if not unnamed or not isinstance(item_side, CarriesWrites):
        return changes
    items, deleted = list(changes.items), list(changes.deleted)
    for link in unnamed:
        seen = item_side.fetch(link.id_on(side))
        if seen is None:
            deleted.append(link.id_on(side))
        elif seen.version != link.version_on(side):
            items.append(seen)
    return replace(changes, items=tuple(items), deleted=tuple(deleted))
