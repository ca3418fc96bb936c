"""One rep's sync cycle for one kind: detect, plan, execute, then save the cursors."""

from __future__ import annotations

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Side
from crmsync.engine.executor import ActionListener, Clock, Executor, KindReport, utc_now
from crmsync.engine.planner import Policy, plan
from crmsync.engine.ports import ItemSide, SyncState


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

    Cursors are saved only after the plan ran, and only when no write failed for a passing
    reason: otherwise both sides' changes are read and planned again next cycle. Re-reading
    is harmless because planning compares versions with the links, and both sides are kept
    because a failed action may rest on what either side said (an edit here, a deletion
    there).
    """
    sides: dict[Side, ItemSide] = {Side.CRM: crm, Side.MAIL: mail}
    links = state.links(rep_id, kind)
    changes = {
        side: sides[side].changes(
            state.cursor(rep_id, kind, side),
            {link.id_on(side): link.version_on(side) for link in links},
        )
        for side in (Side.CRM, Side.MAIL)
    }
    actions = plan(kind, links, changes[Side.CRM], changes[Side.MAIL], policy)
    report = Executor(rep_id, kind, sides, state, policy, clock, on_action).run(actions)
    for side, side_changes in changes.items():
        report.full_listing[side] = side_changes.full
        if not report.transient_failures:
            state.save_cursor(rep_id, kind, side, side_changes.cursor)
    return report
