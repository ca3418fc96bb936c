"""The sync decisions, as a pure function of (links, changes on each side, policy).

`plan` reads nothing and writes nothing: the same inputs give the same actions, and
applying them then planning again gives no writes (DESIGN rule 3). Each action carries the
rule that decided it, in words the audit trail can show.

Decision table for a linked pair (c = changed in the CRM, m = changed on the mail server,
"changed" meaning both the version and the content hash moved on):

| CRM        | mail       | outcome                                                    |
|------------|------------|------------------------------------------------------------|
| changed    | unchanged  | update mail if the direction allows, else remember version |
| unchanged  | changed    | update CRM if the direction allows, else remember version  |
| changed    | changed    | equal content: relink; else the conflict behaviour decides |
| deleted    | unchanged  | delete on mail if deletions propagate, else detach         |
| deleted    | changed    | the edit wins: recreate in the CRM if allowed, else detach |
| deleted    | deleted    | drop the link                                              |

(and the same with the sides swapped). A detached pair no longer syncs: the survivor's
new versions are remembered so that neither an edit nor a full listing nor a reset takes it
for a new item, and the link goes when the survivor is deleted too. Should the deleted
item come back readable (a left-out event restored), the pair syncs again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from crmsync.domain.records import ItemKind, Record
from crmsync.domain.settings import ConflictBehaviour, Direction
from crmsync.domain.sync import Changes, ItemProblem, Link, Seen, Side
from crmsync.engine.hashing import content_hash
from crmsync.engine.matching import match_by_content

ScopeRule = Callable[[Side, Record], str | None]


def _everything_in_scope(side: Side, record: Record) -> str | None:
    return None


@dataclass(frozen=True)
class DeleteGuard:
    """When deletions look like an accident (a wiped folder, a broken filter) rather than
    people's work: more than ``percent`` % or more than ``count`` of the synced items, and
    always more than ``minimum``."""

    percent: int = 10
    count: int = 50
    minimum: int = 5

    def trips(self, deletes: int, linked: int) -> bool:
        if deletes <= self.minimum:
            return False
        return deletes > self.count or deletes * 100 > self.percent * linked


@dataclass(frozen=True)
class Policy:
    """What the configuration decides for one kind of item.

    ``out_of_scope`` names why a record must not sync (a filter, the date window, a private
    event ...), or returns ``None`` when it may.
    """

    direction: Direction = Direction.BOTH
    conflict: ConflictBehaviour = ConflictBehaviour.CRM_WINS
    propagate_deletions: bool = True
    out_of_scope: ScopeRule = field(default=_everything_in_scope)
    # ``None``: an admin confirmed the deletions; nothing is held back this cycle.
    delete_guard: DeleteGuard | None = field(default_factory=DeleteGuard)

    def may_write(self, side: Side) -> bool:
        return self.direction.to_mail if side is Side.MAIL else self.direction.to_crm

    @property
    def winner(self) -> Side:
        return Side.CRM if self.conflict is ConflictBehaviour.CRM_WINS else Side.MAIL


@dataclass(frozen=True)
class Create:
    """Create ``source``'s record on the ``target`` side and link the two."""

    target: Side
    source: Seen
    reason: str
    replaces: Link | None = None


@dataclass(frozen=True)
class Update:
    """Write ``source``'s record over the linked item on ``target``.

    ``link`` is the link as stored; ``expected`` is the target's version the write is
    conditional on (newer than the link's when the target was touched or also edited);
    ``current`` is the target as read then, when it had moved on from the link.
    """

    target: Side
    link: Link
    source: Seen
    reason: str
    expected: str
    current: Seen | None = None


@dataclass(frozen=True)
class Delete:
    """Delete the linked item on ``target`` (its partner is gone) and drop the link."""

    target: Side
    link: Link
    reason: str
    expected: str


@dataclass(frozen=True)
class Pair:
    """Link two existing items; then, if their content differs, ``then`` updates one side.

    ``replaces`` is the link this pairing takes over (an item re-created earlier).
    """

    crm: Seen
    mail: Seen
    reason: str
    then: Side | None = None
    replaces: Link | None = None


@dataclass(frozen=True)
class Relink:
    """Save new versions and hashes on a link without writing to either side."""

    link: Link
    reason: str


@dataclass(frozen=True)
class Unlink:
    """Forget a pairing, leaving both items as they are."""

    link: Link
    reason: str


@dataclass(frozen=True)
class Skip:
    """An item that does not sync this cycle; ``problem`` is set when it is an error."""

    side: Side
    item_id: str
    reason: str
    problem: ItemProblem | None = None


Action = Create | Update | Delete | Pair | Relink | Unlink | Skip

WRITES = (Create, Update, Delete)


@dataclass(frozen=True)
class _SideView:
    """One side's changes, indexed for the planner."""

    side: Side
    changed: dict[str, Seen]
    deleted: frozenset[str]

    @classmethod
    def of(cls, side: Side, changes: Changes) -> _SideView:
        return cls(side, {item.id: item for item in changes.items}, frozenset(changes.deleted))


def plan(
    kind: ItemKind, links: Iterable[Link], crm: Changes, mail: Changes, policy: Policy
) -> list[Action]:
    """The actions that bring both sides in line, in a deterministic order."""
    views = {Side.CRM: _SideView.of(Side.CRM, crm), Side.MAIL: _SideView.of(Side.MAIL, mail)}
    links = list(links)
    linked: dict[Side, set[str]] = {
        Side.CRM: {link.crm_id for link in links},
        Side.MAIL: {link.mail_id for link in links},
    }
    recreated = {side: _unlinked_by_marker(views[side], linked[side]) for side in Side}
    actions: list[Action] = []
    # A pair neither of whose items changed or went stands as synced: nothing to plan.
    touched = [link for link in links if _touched(link, views)]
    for link in sorted(touched, key=lambda link: link.crm_id):
        actions.extend(_plan_linked(link, views, policy, recreated))
    # A re-created item paired above is planned no further.
    taken: dict[Side, set[str]] = {side: set() for side in Side}
    for action in actions:
        if isinstance(action, Pair) and action.replaces is not None:
            taken[Side.CRM].add(action.crm.id)
            taken[Side.MAIL].add(action.mail.id)
    actions.extend(
        _plan_unlinked(views, {side: linked[side] | taken[side] for side in Side}, policy)
    )
    return actions


def _touched(link: Link, views: dict[Side, _SideView]) -> bool:
    return any(
        (item_id := link.id_on(side)) in views[side].changed or item_id in views[side].deleted
        for side in (Side.CRM, Side.MAIL)
    )


def _unlinked_by_marker(view: _SideView, linked: set[str]) -> dict[str, Seen]:
    """Readable items not linked yet, by the partner id they carry (the first by id)."""
    found: dict[str, Seen] = {}
    for item_id in sorted(view.changed):
        seen = view.changed[item_id]
        if item_id not in linked and seen.marker and seen.record is not None:
            found.setdefault(seen.marker, seen)
    return found


def _state(link: Link, view: _SideView) -> tuple[str, Seen | None]:
    """How one side of a link stands: "same", "touched" (new version, same content),
    "changed", "broken" (unreadable) or "deleted"."""
    item_id = link.id_on(view.side)
    if item_id in view.deleted:
        return "deleted", None
    seen = view.changed.get(item_id)
    if seen is None or seen.version == link.version_on(view.side):
        return "same", None
    if seen.record is None:
        # Left out by a rule of its side (a cancelled event): the pair's item is gone.
        return ("deleted" if seen.left_out else "broken"), seen
    if content_hash(seen.record) == link.hash_on(view.side):
        return "touched", seen
    return "changed", seen


def _relinked(link: Link, crm: Seen | None, mail: Seen | None) -> Link:
    """The link with the versions and hashes of the given items."""
    return Link(
        rep_id=link.rep_id,
        kind=link.kind,
        crm_id=link.crm_id,
        mail_id=link.mail_id,
        crm_version=crm.version if crm else link.crm_version,
        mail_version=mail.version if mail else link.mail_version,
        crm_hash=content_hash(crm.record) if crm and crm.record else link.crm_hash,
        mail_hash=content_hash(mail.record) if mail and mail.record else link.mail_hash,
        detached=link.detached,
    )


def _plan_linked(
    link: Link,
    views: dict[Side, _SideView],
    policy: Policy,
    recreated: dict[Side, dict[str, Seen]],
) -> list[Action]:
    if link.detached is not None:
        returned = views[link.detached].changed.get(link.id_on(link.detached))
        if returned is None or returned.record is None:
            return _plan_detached(link, views[link.detached.other])
        link = replace(link, detached=None)
    crm_state, crm_seen = _state(link, views[Side.CRM])
    mail_state, mail_seen = _state(link, views[Side.MAIL])
    states = {Side.CRM: (crm_state, crm_seen), Side.MAIL: (mail_state, mail_seen)}

    for side, (state, seen) in states.items():
        if state == "broken":
            assert seen is not None
            return [Skip(side, seen.id, "unreadable item, kept as last synced", seen.problem)]

    if crm_state == "deleted" and mail_state == "deleted":
        return [Unlink(link, "deleted on both sides")]
    for side in (Side.CRM, Side.MAIL):
        other = side.other
        state, gone = states[side]
        other_state, other_seen = states[other]
        if state != "deleted":
            continue
        deleted = _deleted_in(side, gone)
        if other_state == "changed" and policy.may_write(side):
            assert other_seen is not None
            rule = f"{deleted} but edited in {other.value}: the edit wins"
            again = recreated[side].get(other_seen.id)
            if again is not None and again.record is not None:
                # Re-created by an earlier cycle whose link was lost: pair, never twice.
                crm, mail = (again, other_seen) if side is Side.CRM else (other_seen, again)
                pair = _pair(crm, mail, f"marker ({rule}, re-created earlier)", policy)
                return [replace(pair, replaces=link)]
            return [Create(side, other_seen, rule, replaces=link)]
        if policy.propagate_deletions and policy.may_write(other):
            expected = other_seen.version if other_seen else link.version_on(other)
            return [Delete(other, link, deleted, expected)]
        why = (
            "the direction does not sync it"
            if policy.propagate_deletions
            else "deletions do not propagate"
        )
        detached = replace(_relinked(link, crm_seen, mail_seen), detached=side)
        return [
            Relink(detached, f"{deleted}; {why}: the {other.value} copy stays, no longer synced")
        ]

    changed = {side for side, (state, _) in states.items() if state == "changed"}
    if not changed:
        if crm_state == "touched" or mail_state == "touched":
            return [Relink(_relinked(link, crm_seen, mail_seen), "new version, same content")]
        return []
    if changed == {Side.CRM, Side.MAIL}:
        assert crm_seen is not None and mail_seen is not None
        assert crm_seen.record is not None and mail_seen.record is not None
        if content_hash(crm_seen.record) == content_hash(mail_seen.record):
            return [Relink(_relinked(link, crm_seen, mail_seen), "same edit on both sides")]
        winner = policy.winner
        source = crm_seen if winner is Side.CRM else mail_seen
        rule = f"conflict: {'CRM' if winner is Side.CRM else 'mail server'} always wins"
        loser = crm_seen if winner is Side.MAIL else mail_seen
        if policy.may_write(winner.other):
            return [Update(winner.other, link, source, _noted(rule, source), loser.version, loser)]
        return [Relink(_relinked(link, crm_seen, mail_seen), f"{rule}; direction keeps both")]
    (source_side,) = changed
    source = crm_seen if source_side is Side.CRM else mail_seen
    assert source is not None and source.record is not None
    reason = policy.out_of_scope(source_side, source.record)
    if reason is not None:
        return [Skip(source_side, source.id, reason)]
    target = source_side.other
    if policy.may_write(target):
        # The target side may have been touched too; its new version is the one to overwrite.
        touched = states[target][1]
        expected = touched.version if touched else link.version_on(target)
        reason = _noted(f"changed in {source_side.value}", source)
        return [Update(target, link, source, reason, expected, touched)]
    return [
        Relink(
            _relinked(link, crm_seen, mail_seen),
            f"changed in {source_side.value}; direction does not sync it",
        )
    ]


def _plan_detached(link: Link, survivor: _SideView) -> list[Action]:
    """A detached pair: only the surviving item's fate matters, and nothing is written."""
    state, seen = _state(link, survivor)
    gone = link.detached
    assert gone is not None
    if state == "deleted":
        return [Unlink(link, f"deleted in {survivor.side.value} too (it was detached)")]
    if state == "same":
        return []
    found = {Side.CRM: None, Side.MAIL: None, survivor.side: seen}
    return [
        Relink(
            _relinked(link, found[Side.CRM], found[Side.MAIL]),
            f"changed in {survivor.side.value}; not synced: its partner was deleted in "
            f"{gone.value} and the deletion was not carried over",
        )
    ]


def _plan_unlinked(
    views: dict[Side, _SideView], linked: dict[Side, set[str]], policy: Policy
) -> list[Action]:
    actions: list[Action] = []
    fresh: dict[Side, dict[str, Seen]] = {}
    for side, view in views.items():
        fresh[side] = {}
        for item_id in sorted(view.changed):
            if item_id in linked[side]:
                continue
            seen = view.changed[item_id]
            if seen.record is None:
                why = f"{seen.note}: skipped" if seen.left_out else "unreadable item"
                actions.append(Skip(side, item_id, why, seen.problem))
                continue
            reason = policy.out_of_scope(side, seen.record)
            if reason is not None:
                actions.append(Skip(side, item_id, reason))
                continue
            fresh[side][item_id] = seen

    # Layer 2: an item we created carries its partner's id; a half-done create is linked.
    for mail_id in sorted(fresh[Side.MAIL]):
        mail_seen = fresh[Side.MAIL][mail_id]
        crm_seen = fresh[Side.CRM].get(mail_seen.marker or "")
        if crm_seen is None:
            continue
        actions.append(_pair(crm_seen, mail_seen, "marker", policy))
        del fresh[Side.MAIL][mail_id], fresh[Side.CRM][crm_seen.id]
    for crm_id in sorted(fresh[Side.CRM]):
        crm_seen = fresh[Side.CRM][crm_id]
        mail_seen = fresh[Side.MAIL].get(crm_seen.marker or "")
        if mail_seen is None:
            continue
        actions.append(_pair(crm_seen, mail_seen, "marker", policy))
        del fresh[Side.MAIL][mail_seen.id], fresh[Side.CRM][crm_id]

    # Layer 3: same natural key on both sides (first sync, reset, lost state).
    for crm_seen, mail_seen in match_by_content(
        fresh[Side.CRM].values(), fresh[Side.MAIL].values()
    ):
        actions.append(_pair(crm_seen, mail_seen, "matching content", policy))
        del fresh[Side.MAIL][mail_seen.id], fresh[Side.CRM][crm_seen.id]

    for side in (Side.CRM, Side.MAIL):
        target = side.other
        for seen in fresh[side].values():
            if policy.may_write(target):
                actions.append(Create(target, seen, _noted(f"new in {side.value}", seen)))
            else:
                actions.append(
                    Skip(side, seen.id, f"new in {side.value}; direction does not sync it")
                )
    return actions


def _pair(crm_seen: Seen, mail_seen: Seen, how: str, policy: Policy) -> Pair:
    assert crm_seen.record is not None and mail_seen.record is not None
    if content_hash(crm_seen.record) == content_hash(mail_seen.record):
        return Pair(crm_seen, mail_seen, _noted(f"paired by {how}", crm_seen, mail_seen))
    winner = policy.winner if policy.may_write(policy.winner.other) else policy.winner.other
    then = winner.other if policy.may_write(winner.other) else None
    reason = _noted(f"paired by {how}; {winner.value} content kept", crm_seen, mail_seen)
    return Pair(crm_seen, mail_seen, reason, then)


def _deleted_in(side: Side, gone: Seen | None) -> str:
    """Why a pair's item on ``side`` is gone: a deletion, or a rule that left it out."""
    if gone is not None and gone.left_out:
        return f"{gone.note}: treated as deleted in {side.value}"
    return f"deleted in {side.value}"


def _noted(reason: str, *items: Seen) -> str:
    """``reason`` followed by what the sides noted while reading the items (repairs)."""
    notes = [s.note for s in items if s.record is not None and s.note]
    # Without notes, one of a few phrases: held once, not once per action of a first sync.
    return "; ".join([reason, *notes]) if notes else sys.intern(reason)


def hold_mass_deletes(
    actions: list[Action], linked: int, guard: DeleteGuard | None
) -> tuple[list[Action], int]:
    """The actions with a side's deletions turned into skips when they trip ``guard``,
    and how many were held back."""
    if guard is None:
        return actions, 0
    per_side = {
        side: sum(1 for a in actions if isinstance(a, Delete) and a.target is side)
        for side in (Side.CRM, Side.MAIL)
    }
    tripped = {side for side, n in per_side.items() if guard.trips(n, linked)}
    if not tripped:
        return actions, 0
    kept: list[Action] = []
    for action in actions:
        if isinstance(action, Delete) and action.target in tripped:
            reason = (
                f"held by the mass-delete guard: {per_side[action.target]} of {linked} "
                f"synced items would be deleted in {action.target.value}"
            )
            kept.append(Skip(action.target, action.link.id_on(action.target), reason))
        else:
            kept.append(action)
    return kept, sum(per_side[side] for side in tripped)
