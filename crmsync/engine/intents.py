"""Write intents: a write and the knowledge that we made it, never separated by a crash.

Before a batch of writes the executor records what each write will do (`intent_for`); the
links saved after the batch settle them in the same transaction. A cycle killed in
between leaves intents unsettled, and the next cycle settles them against what the
target holds now (`settle`), before planning:

| the target now                     | conclusion                        | the link becomes  |
|------------------------------------|-----------------------------------|-------------------|
| unchanged since the cursor, absent | the write never landed            | as it was         |
| as we read it (version or content) | the write never landed            | as it was         |
| holds the content we wrote         | it landed                         | after the write   |
| holds anything else                | a person edited it after our read | after the write,  |
|                                    | (whether our write landed or not) | target "changed"  |
| deleted since our read             | a person deleted it after our read| after the write   |

"After the write" means the link our write would have saved; the planner then sees the
person's later change on the target as a plain one-sided change, and it wins instead of
going through the conflict rule. A person's change seen on the target is always later
than the source's edit we carried: both were read together, and the intent keeps the
target as it was read, so whatever changed it since happened after the read.

A create into a side that picks its own ids is found by its marker; where the side tells
the id in advance (`ItemSide.planned_id`) its deletion is recognised too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crmsync.domain.mail_text import held_by
from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Changes, Link, Seen, Side, WriteIntent, WriteOperation
from crmsync.engine.hashing import content_hash
from crmsync.engine.planner import Action, Create, Delete, Pair, Update


def intent_for(
    rep_id: str, kind: ItemKind, action: Action, planned_id: str | None = None
) -> WriteIntent | None:
    """The intent of a writing action, or ``None`` for one that writes to neither side.

    ``planned_id`` is the id a create will get, when its target side chooses it itself.
    """
    match action:
        case Create(target=target, source=source, replaces=replaces):
            assert source.record is not None
            ids = {target.other: source.id, target: planned_id}
            return WriteIntent(
                rep_id,
                kind,
                WriteOperation.CREATE,
                target,
                ids[Side.CRM],
                ids[Side.MAIL],
                source.version,
                content_hash(held_by(target, source.record)),
                replaces=replaces.crm_id if replaces else None,
            )
        case Update(target=target, link=link, source=source, expected=expected, current=current):
            assert source.record is not None
            before = link.hash_on(target)
            if current is not None and current.record is not None:
                before = content_hash(current.record)
            return WriteIntent(
                rep_id,
                kind,
                WriteOperation.UPDATE,
                target,
                link.crm_id,
                link.mail_id,
                source.version,
                content_hash(held_by(target, source.record)),
                previous_hash=before,
                previous_version=expected,
            )
        case Delete(target=target, link=link):
            return WriteIntent(
                rep_id, kind, WriteOperation.DELETE, target, link.crm_id, link.mail_id
            )
        case Pair(crm=crm, mail=mail, then=then, replaces=replaces) if then is not None:
            source, existing = (crm, mail) if then is Side.MAIL else (mail, crm)
            assert source.record is not None and existing.record is not None
            return WriteIntent(
                rep_id,
                kind,
                WriteOperation.UPDATE,
                then,
                crm.id,
                mail.id,
                source.version,
                content_hash(held_by(then, source.record)),
                previous_hash=content_hash(existing.record),
                replaces=replaces.crm_id if replaces else None,
                previous_version=existing.version,
            )
    return None


@dataclass(frozen=True)
class Settlement:
    """The links as the settled intents leave them: ``saves`` replace or add links by
    CRM id after ``drops`` went; ``links`` is the whole resulting set, for planning."""

    links: list[Link]
    saves: list[Link]
    drops: list[str]


def settle(
    intents: Sequence[WriteIntent],
    links: Iterable[Link],
    changes: dict[Side, Changes],
    since_read: Mapping[tuple[Side, str], Changes] | None = None,
) -> Settlement:
    """Settle unsettled intents against both sides' changes (see the module docstring).

    ``since_read`` holds a side's changes since an intent's ``target_cursor`` (as of the
    read that planned it), where the side could list them: with it, a deletion is known
    to have come after that read. Without it the changes since the saved cursor stand in,
    except to tell the deletion of a re-created item from that of the item it replaced.

    Pure: reads nothing but its arguments. Intents are taken in order; a later one about
    the same pair sees the links the earlier ones left.
    """
    by_crm = {link.crm_id: link for link in links}
    saves: dict[str, Link] = {}
    drops: list[str] = []
    indexes = {side: _Index(changes[side], by_crm.values(), side) for side in Side}
    later = {
        key: _Index(listed, by_crm.values(), key[0]) for key, listed in (since_read or {}).items()
    }
    for intent in intents:
        view = indexes[intent.target]
        exact = False
        since = later.get((intent.target, intent.target_cursor or ""))
        if intent.target_cursor is not None and since is not None:
            # A side that refused the old cursor listed everything instead: that says
            # nothing about when an item went.
            view, exact = since, not since.full
        if intent.operation is WriteOperation.DELETE:
            target_id = intent.id_on(intent.target)
            if target_id is not None and target_id in view.deleted and intent.crm_id:
                _drop(intent.crm_id, by_crm, saves, drops)
            continue
        target_id, seen, gone = view.find(intent)
        if gone and not exact and intent.replaces is not None:
            replaced = by_crm.get(intent.replaces)
            # Re-created where the deleted item was (same href or id): its deletion, seen
            # again from the saved cursor, says nothing about our create.
            gone = replaced is None or replaced.id_on(intent.target) != target_id
        if target_id is None or (seen is None and not gone):
            continue  # absent: never landed (or nothing to tell it by)
        if seen is not None:
            if seen.record is None:
                continue  # unreadable now: the planner reports it and keeps the link
            if seen.version == intent.previous_version:
                continue  # as we read it: never landed
            now = content_hash(seen.record)
            if intent.previous_hash is not None and now == intent.previous_hash != (
                intent.source_hash
            ):
                continue  # the old content: never landed
            version = seen.version if now == intent.source_hash else ""
        else:
            version = ""
        link = _after_write(intent, target_id, version)
        if intent.replaces is not None:
            _drop(intent.replaces, by_crm, saves, drops)
        _drop_mail_id(link.mail_id, link.crm_id, by_crm, saves, drops)
        by_crm[link.crm_id] = saves[link.crm_id] = link
    settled = sorted(by_crm.values(), key=lambda link: link.crm_id)
    return Settlement(settled, list(saves.values()), drops)


class _Index:
    """One side's changes, looked up by id and by marker."""

    def __init__(self, changes: Changes, links: Iterable[Link], side: Side) -> None:
        self.full = changes.full
        self.items = {seen.id: seen for seen in changes.items}
        self.deleted = frozenset(changes.deleted)
        self.linked_to = {link.id_on(side): link.crm_id for link in links}
        self.by_marker: dict[str, list[Seen]] = {}
        for seen in sorted(changes.items, key=lambda s: s.id):
            if seen.marker:
                self.by_marker.setdefault(seen.marker, []).append(seen)

    def find(self, intent: WriteIntent) -> tuple[str | None, Seen | None, bool]:
        """The target's id, how it is now (``None`` if not listed) and whether it is gone."""
        target_id = intent.id_on(intent.target)
        source_id = intent.id_on(intent.target.other)
        if intent.operation is WriteOperation.CREATE:
            for found in self.by_marker.get(source_id or "", ()):
                # Created items are not linked yet, but for a re-create where the deleted
                # item was (the same href or id): that one's link is the one it replaces.
                pair = self.linked_to.get(found.id)
                if pair is None or pair == intent.replaces:
                    return found.id, found, False
        if target_id is None:
            return None, None, False
        return target_id, self.items.get(target_id), target_id in self.deleted


def _after_write(intent: WriteIntent, target_id: str, target_version: str) -> Link:
    """The link the intended write would have saved; both sides hold the written content."""
    source = intent.target.other
    ids = {intent.target: target_id, source: intent.id_on(source) or ""}
    versions = {intent.target: target_version, source: intent.source_version}
    return Link(
        intent.rep_id,
        intent.kind,
        ids[Side.CRM],
        ids[Side.MAIL],
        versions[Side.CRM],
        versions[Side.MAIL],
        intent.source_hash,
        intent.source_hash,
    )


def _drop(crm_id: str, by_crm: dict[str, Link], saves: dict[str, Link], drops: list[str]) -> None:
    by_crm.pop(crm_id, None)
    saves.pop(crm_id, None)
    drops.append(crm_id)


def _drop_mail_id(
    mail_id: str, keep: str, by_crm: dict[str, Link], saves: dict[str, Link], drops: list[str]
) -> None:
    """A mail item is linked once: an older link to it gives way to the settled one."""
    for crm_id, link in list(by_crm.items()):
        if link.mail_id == mail_id and crm_id != keep:
            _drop(crm_id, by_crm, saves, drops)
