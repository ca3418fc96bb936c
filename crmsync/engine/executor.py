"""Carrying out a plan: writes in batches, each batch bracketed by its intents and links.

Crash safety (DESIGN rule 5): before a batch of writes, the intent of each (what it will
write where, see `crmsync.engine.intents`) is recorded in one transaction; after the
batch, its links are saved and its intents settled in another. Two transactions per
batch rather than one per write keep the initial sync's cost close to the server's own,
and a cycle killed anywhere in between leaves intents the next cycle settles against
what the targets hold then: a write that landed is linked, one that did not is planned
again, and a person's edit made after our write wins. Creates are also stamped with their
partner's id and idempotent per that marker, so even a lost state pairs instead of
creating twice.
Per-item failures become error-report rows and the cycle goes on (rule 7); only a failure
of the whole rep (authentication, missing folder) stops it.

A target side that offers `BatchWrites` gets a batch's creates, updates and deletes in
one call per operation, made first within the same bracket; each action then takes its
item's outcome from that call instead of writing, and goes on as if it had written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from crmsync.domain.mail_text import held_by
from crmsync.domain.records import ItemKind, Record
from crmsync.domain.sync import (
    BUG_SUGGESTION,
    AuditEntry,
    AuthenticationFailed,
    Changes,
    ErrorEntry,
    ErrorType,
    FolderMissing,
    Link,
    Seen,
    ServerUnavailable,
    Side,
    SyncError,
    VersionConflict,
    WriteIntent,
    Written,
)
from crmsync.engine.hashing import content_hash
from crmsync.engine.intents import intent_for
from crmsync.engine.planner import (
    Action,
    Create,
    Delete,
    Pair,
    Policy,
    Relink,
    Skip,
    Unlink,
    Update,
    plan,
)
from crmsync.engine.ports import BatchWrites, ItemSide, SyncState

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
ActionListener = Callable[[Action, str | None], None]

SIDE_NAMES = {Side.CRM: "CRM", Side.MAIL: "mail server"}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class KindReport:
    """What one cycle did for one kind: writes by (operation, target side) and errors."""

    kind: ItemKind
    writes: Counter[tuple[str, Side]] = field(default_factory=Counter)
    skipped: int = 0
    errors: int = 0
    # Writes that failed for a passing reason: the cycle's changes must be read again.
    transient_failures: int = 0
    # Deletions the mass-delete guard held back for an admin to confirm.
    held_deletes: int = 0
    full_listing: dict[Side, bool] = field(default_factory=dict)

    def written_to(self, side: Side) -> int:
        return sum(n for (_, target), n in self.writes.items() if target is side)

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())


@dataclass(frozen=True)
class Ahead:
    """One item's outcome of a batch call made ahead of its action: what the side
    returned for it, or the exception that stands for it."""

    outcome: Written | Exception | None

    def result(self) -> Written | None:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class LinkBatch:
    """Link saves and drops held back for one transaction, with the keys of the intents
    they settle; the last word per CRM id wins."""

    SIZE = 200

    def __init__(self, state: SyncState, rep_id: str, kind: ItemKind) -> None:
        self.state = state
        self.rep_id = rep_id
        self.kind = kind
        self._pending: dict[str, Link | None] = {}
        self._settled: list[str] = []
        # The ids of both items of every link saved, per side.
        self.linked: dict[Side, set[str]] = {Side.CRM: set(), Side.MAIL: set()}

    def save(self, link: Link) -> None:
        self._pending[link.crm_id] = link
        self.linked[Side.CRM].add(link.crm_id)
        self.linked[Side.MAIL].add(link.mail_id)

    def drop(self, crm_id: str) -> None:
        self._pending[crm_id] = None

    def settle(self, intent: WriteIntent) -> None:
        self._settled.append(intent.key)

    def flush(self) -> None:
        if not self._pending and not self._settled:
            return
        saves = [link for link in self._pending.values() if link is not None]
        drops = [crm_id for crm_id, link in self._pending.items() if link is None]
        settled, self._pending, self._settled = self._settled, {}, []
        self.state.apply_links(self.rep_id, self.kind, saves, drops, settled)


class Executor:
    """Runs one rep's actions for one kind against both sides and the state store.

    `OUTAGE_LIMIT` writes in a row that fail with `ServerUnavailable` (each after the
    backend's own retries) end the run by raising it: the server is down, not the item.
    """

    OUTAGE_LIMIT = 3

    def __init__(
        self,
        rep_id: str,
        kind: ItemKind,
        sides: dict[Side, ItemSide],
        state: SyncState,
        policy: Policy,
        clock: Clock = utc_now,
        on_action: ActionListener | None = None,
        report: KindReport | None = None,
        read_cursors: dict[Side, str | None] | None = None,
        *,
        audit: list[AuditEntry],
    ) -> None:
        """``audit``: where the run's audit entries go; the caller writes them (with the
        round's cursors, `SyncState.save_cursors`), the executor only when
        `LinkBatch.SIZE` of them pile up."""
        self.rep_id = rep_id
        self.kind = kind
        self.sides = sides
        self.state = state
        self.policy = policy
        self.clock = clock
        self.on_action = on_action
        self.report = report or KindReport(kind)
        # Each side's cursor as of the read the actions were planned from.
        self.read_cursors = read_cursors or {}
        self.links = LinkBatch(state, rep_id, kind)
        # The ids this run wrote (created, updated or deleted) on each side.
        self.touched: dict[Side, set[str]] = {side: set() for side in sides}
        self._outage_streak = 0
        self.audit = audit

    def linked_or_written(self) -> dict[Side, set[str]]:
        """The ids of the items this run wrote or linked, per side."""
        return {side: self.touched[side] | self.links.linked[side] for side in self.sides}

    def run(self, actions: list[Action]) -> KindReport:
        for start in range(0, len(actions), LinkBatch.SIZE):
            self._run_batch(actions[start : start + LinkBatch.SIZE])
        return self.report

    def _run_batch(self, batch: list[Action]) -> None:
        intents = [self._intent(action) for action in batch]
        written = [intent for intent in intents if intent is not None]
        if written:
            self.state.record_intents(self.rep_id, self.kind, written)
        try:
            ahead = self._write_ahead(batch)
            for index, (action, intent) in enumerate(zip(batch, intents, strict=True)):
                self._run_one(action, intent, may_replan=True, ahead=ahead.get(index))
        finally:
            self.links.flush()

    def _write_ahead(self, batch: Sequence[Action]) -> dict[int, Ahead]:
        """The batch's creates, updates and deletes to sides offering `BatchWrites`, one
        call per operation and side; each item's outcome by its position in ``batch``."""
        ahead: dict[int, Ahead] = {}
        for target, side in self.sides.items():
            if not isinstance(side, BatchWrites):
                continue
            creates: list[tuple[int, tuple[Record, str]]] = []
            updates: list[tuple[int, tuple[str, str, Record]]] = []
            deletes: list[tuple[int, tuple[str, str]]] = []
            for index, action in enumerate(batch):
                match action:
                    case Create(target=t, source=source) if t is target:
                        assert source.record is not None
                        creates.append((index, (held_by(target, source.record), source.id)))
                    case Update(target=t, link=link, source=source) if t is target:
                        assert source.record is not None
                        record = held_by(target, source.record)
                        item = (link.id_on(target), action.expected, record)
                        updates.append((index, item))
                    case Delete(target=t, link=link) if t is target:
                        deletes.append((index, (link.id_on(target), action.expected)))
            for pending, write_many in (
                (creates, side.create_many),
                (updates, side.update_many),
                (deletes, side.delete_many),
            ):
                if pending:
                    items = [item for _, item in pending]
                    outcomes = self._call_ahead(target, write_many, items)
                    ahead.update((i, Ahead(o)) for (i, _), o in zip(pending, outcomes, strict=True))
            # Creates that hold other content than their source (see `_apply`), brought
            # up to date in one call too.
            stale = [
                (i, (o.id, o.version, record))
                for i, (record, _) in creates
                if isinstance(o := ahead[i].outcome, Written)
                and content_hash(o.record) != content_hash(record)
            ]
            if stale:
                outcomes = self._call_ahead(target, side.update_many, [item for _, item in stale])
                ahead.update((i, Ahead(o)) for (i, _), o in zip(stale, outcomes, strict=True))
        return ahead

    def _call_ahead(
        self, target: Side, write_many: Callable[[list[Any]], Sequence[Any]], items: list[Any]
    ) -> Sequence[Written | Exception | None]:
        try:
            outcomes: Sequence[Written | Exception | None] = write_many(items)
        except (AuthenticationFailed, FolderMissing):
            raise
        except Exception as failure:  # the whole call failed, so did each of its items
            return [failure] * len(items)
        if len(outcomes) != len(items):
            wrong = SyncError(
                f"the {SIDE_NAMES[target]} answered {len(outcomes)} outcomes to "
                f"{len(items)} writes",
                BUG_SUGGESTION,
            )
            return [wrong] * len(items)
        return outcomes

    def _intent(self, action: Action) -> WriteIntent | None:
        planned = None
        if isinstance(action, Create):
            planned = self.sides[action.target].planned_id(action.source.id)
        intent = intent_for(self.rep_id, self.kind, action, planned)
        if intent is None:
            return None
        return replace(intent, target_cursor=self.read_cursors.get(intent.target))

    def _run_one(
        self,
        action: Action,
        intent: WriteIntent | None,
        may_replan: bool,
        ahead: Ahead | None = None,
    ) -> None:
        error: str | None = None
        created: str | None = None
        # Whether the write's outcome is known (done, refused or stale): only then may its
        # intent be settled; after a timeout or a crash the next cycle looks at the target.
        known_outcome = True
        try:
            created = self._apply(action, ahead)
            self._outage_streak = 0
        except ServerUnavailable as failure:
            known_outcome = False
            error = self._fail(action, failure)
            self._outage_streak += 1
            if self._outage_streak >= self.OUTAGE_LIMIT:
                # Each further write would wait out the whole retry policy again: stop
                # the rep here; the next cycle reads and plans the rest again.
                raise ServerUnavailable(
                    f"the server failed {self._outage_streak} writes in a row: {failure.message}",
                    failure.suggestion,
                ) from failure
        except VersionConflict as conflict:
            if may_replan and isinstance(action, Update | Delete):
                self._settle(intent)
                self._replan(action)
                return
            error = self._fail(action, conflict)
        except (AuthenticationFailed, FolderMissing):
            raise
        except SyncError as failure:
            known_outcome = not failure.transient
            error = self._fail(action, failure)
        except Exception as bug:  # a bug must not stop the other items of the cycle
            known_outcome = False
            log.exception("unexpected failure on %s", type(action).__name__)
            error = self._fail(
                action,
                SyncError(
                    f"{type(bug).__name__}: {bug}",
                    BUG_SUGGESTION,
                ),
            )
        if known_outcome:
            self._settle(intent)
        if self.on_action is not None:
            self.on_action(action, error)
        self._audit_action(action, error, created)

    def _settle(self, intent: WriteIntent | None) -> None:
        if intent is not None:
            self.links.settle(intent)

    def _audit_action(self, action: Action, error: str | None, created: str | None) -> None:
        ids: dict[Side, str | None] = {Side.CRM: None, Side.MAIL: None}
        target: Side | None = None
        match action:
            case Create(target=target, source=source):
                ids[target.other], ids[target] = source.id, created
            case Update(target=target, link=link) | Delete(target=target, link=link):
                ids = {Side.CRM: link.crm_id, Side.MAIL: link.mail_id}
            case Relink(link=link) | Unlink(link=link):
                ids = {Side.CRM: link.crm_id, Side.MAIL: link.mail_id}
            case Pair(crm=crm, mail=mail, then=then):
                ids, target = {Side.CRM: crm.id, Side.MAIL: mail.id}, then
            case Skip(side=side, item_id=item_id):
                ids[side] = item_id
        self.audit.append(
            AuditEntry(
                self.rep_id,
                self.kind,
                ids[Side.CRM],
                ids[Side.MAIL],
                type(action).__name__.lower(),
                target,
                action.reason,
                self.clock(),
                error,
            )
        )
        if len(self.audit) >= LinkBatch.SIZE:  # a long run's entries are not all held
            self.state.record_audit(self.audit)
            self.audit.clear()

    def _apply(self, action: Action, ahead: Ahead | None = None) -> str | None:
        """Carry out ``action`` (or take its outcome from a batch call made ``ahead``);
        returns the new item's id for a create."""
        match action:
            case Create(target=target, source=source, replaces=replaces):
                assert source.record is not None
                if ahead is not None:
                    written = _written(ahead)  # brought up to date ahead too
                else:
                    record = held_by(target, source.record)
                    written = self.sides[target].create(record, marker=source.id)
                    if content_hash(written.record) != content_hash(record):
                        # An earlier, interrupted cycle created it with older content (or
                        # the side keeps less than the record holds).
                        written = self.sides[target].update(written.id, written.version, record)
                if replaces is not None:
                    self.links.drop(replaces.crm_id)
                self.links.save(self._link(source, written, target))
                self.report.writes["create", target] += 1
                self.touched[target].add(written.id)
                return written.id
            case Update(target=target, link=link, source=source):
                assert source.record is not None
                if ahead is None:
                    written = self.sides[target].update(
                        link.id_on(target), action.expected, held_by(target, source.record)
                    )
                else:
                    written = _written(ahead)
                self.links.save(self._link(source, written, target))
                self.report.writes["update", target] += 1
                self.touched[target].add(written.id)
            case Delete(target=target, link=link):
                if ahead is None:
                    self.sides[target].delete(link.id_on(target), action.expected)
                else:
                    ahead.result()
                self.links.drop(link.crm_id)
                self.report.writes["delete", target] += 1
                self.touched[target].add(link.id_on(target))
            case Pair(crm=crm, mail=mail, then=then, replaces=replaces):
                if replaces is not None:
                    self.links.drop(replaces.crm_id)
                if then is None:
                    self.links.save(self._pair_link(crm, mail))
                else:
                    source = crm if then is Side.MAIL else mail
                    target_item = mail if then is Side.MAIL else crm
                    assert source.record is not None
                    written = self.sides[then].update(
                        target_item.id, target_item.version, held_by(then, source.record)
                    )
                    self.links.save(self._link(source, written, then))
                    self.report.writes["update", then] += 1
                    self.touched[then].add(written.id)
            case Relink(link=link):
                self.links.save(link)
            case Unlink(link=link):
                self.links.drop(link.crm_id)
            case Skip(problem=problem, side=side, item_id=item_id):
                self.report.skipped += 1
                if problem is not None:
                    self._record(
                        item_id,
                        f"read from {SIDE_NAMES[side]}",
                        problem.error_type,
                        problem.message,
                        problem.suggestion,
                    )

    def _link(self, source: Seen, written: Written, target: Side) -> Link:
        assert source.record is not None
        source_hash = content_hash(source.record)
        written_hash = content_hash(written.record)
        if target is Side.MAIL:
            return Link(
                self.rep_id,
                self.kind,
                source.id,
                written.id,
                source.version,
                written.version,
                source_hash,
                written_hash,
            )
        return Link(
            self.rep_id,
            self.kind,
            written.id,
            source.id,
            written.version,
            source.version,
            written_hash,
            source_hash,
        )

    def _pair_link(self, crm: Seen, mail: Seen) -> Link:
        assert crm.record is not None and mail.record is not None
        return Link(
            self.rep_id,
            self.kind,
            crm.id,
            mail.id,
            crm.version,
            mail.version,
            content_hash(crm.record),
            content_hash(mail.record),
        )

    def _replan(self, action: Update | Delete) -> None:
        """The target moved on since we read it: read it again and decide afresh (once)."""
        target = action.target
        link = action.link
        current = self.sides[target].fetch(link.id_on(target))
        target_changes = (
            Changes(items=(current,))
            if current is not None
            else Changes(items=(), deleted=(link.id_on(target),))
        )
        if isinstance(action, Update):
            source_changes = Changes(items=(action.source,))
        else:
            source_changes = Changes(items=(), deleted=(link.id_on(target.other),))
        crm, mail = (
            (target_changes, source_changes)
            if target is Side.CRM
            else (source_changes, target_changes)
        )
        # Plan against the link as stored, with the target's version forgotten so the fresh
        # read is compared by content: touched (same content) or changed (a real edit).
        stored = (
            replace(link, crm_version="") if target is Side.CRM else replace(link, mail_version="")
        )
        for follow_up in plan(self.kind, [stored], crm, mail, self.policy):
            intent = self._intent(follow_up)
            if intent is not None:
                self.state.record_intents(self.rep_id, self.kind, [intent])
            self._run_one(follow_up, intent, may_replan=False)

    def _fail(self, action: Action, failure: SyncError) -> str:
        if failure.transient:
            self.report.transient_failures += 1
        item_id, operation = _describe(action)
        self._record(item_id, operation, failure.error_type, failure.message, failure.suggestion)
        return failure.message

    def _record(
        self,
        item_id: str | None,
        operation: str,
        error_type: ErrorType,
        message: str,
        suggestion: str,
    ) -> None:
        self.report.errors += 1
        self.state.record_error(
            ErrorEntry(
                self.rep_id,
                self.kind,
                item_id,
                operation,
                error_type,
                message,
                suggestion,
                self.clock(),
            )
        )


def _written(ahead: Ahead) -> Written:
    written = ahead.result()
    assert written is not None, "a side's batch create or update answered nothing"
    return written


def _describe(action: Action) -> tuple[str | None, str]:
    """The item an action is about (source side id where there is one) and its operation."""
    match action:
        case Create(target=target, source=source):
            return source.id, f"create in {SIDE_NAMES[target]}"
        case Update(target=target, source=source):
            return source.id, f"update in {SIDE_NAMES[target]}"
        case Delete(target=target, link=link):
            return link.id_on(target), f"delete in {SIDE_NAMES[target]}"
        case Pair(crm=crm, then=then):
            return crm.id, f"pair and update in {SIDE_NAMES[then]}" if then else "pair"
        case Skip(item_id=item_id, side=side):
            return item_id, f"read from {SIDE_NAMES[side]}"
    return None, type(action).__name__.lower()
