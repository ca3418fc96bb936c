"""Rich renderings of cycle reports and statuses for the CLI and the demo."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import Coverage, Direction
from crmsync.domain.sync import Side
from crmsync.engine.planner import Action, Create, Delete, Pair, Relink, Skip, Unlink, Update
from crmsync.service.runner import RepPreview, RepReport, SyncService
from crmsync.store import RepStatus

FLOW_NAMES = {Direction.CRM_TO_MAIL: "CRM → mail", Direction.MAIL_TO_CRM: "mail → CRM"}


def _check(value: bool | None) -> str:
    return {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "-"}[value]


def print_report(console: Console, report: RepReport) -> None:
    """One line per rep: writes per kind and side, or the error that stopped it."""
    if not report.configured:
        console.print(f"{report.rep.email}: configuration not set to sync")
        return
    if report.error:
        console.print(f"[red]{report.rep.email}: {report.error}[/red]")
        return
    parts = []
    for kind, kind_report in report.kinds.items():
        parts.append(
            f"{kind.value}s → mail {kind_report.written_to(Side.MAIL)}, "
            f"→ CRM {kind_report.written_to(Side.CRM)}, errors {kind_report.errors}"
        )
    console.print(f"{report.rep.email}: " + "; ".join(parts))


def status_table(
    service: SyncService, reps: Iterable[User], statuses: dict[str, RepStatus] | None = None
) -> Table:
    """The spec's per-rep statuses (Tables 4-6): one row per rep and kind. ``statuses``:
    the reps' statuses by rep id, if already read (else every rep's is read at once).
    The configurations are read at once too, whatever the number of reps."""
    if statuses is None:
        statuses = {s.rep_id: s for s in service.store.rep_statuses()}
    coverage = Coverage(service.store.configs())
    table = Table(
        "Rep",
        "Configuration",
        "Checks",
        "Kind",
        *FLOW_NAMES.values(),
        "In sync",
        "Reset",
        title="Sync statuses",
    )
    for user in reps:
        status = statuses.get(user.id) or RepStatus(user.id)
        config = coverage.config_of(user)
        checks = (
            f"recognized {_check(status.recognized)} "
            f"folder {_check(status.contacts_folder_found)} "
            f"linked {_check(status.addresses_linked)}"
        )
        for kind in ItemKind:
            first = kind is ItemKind.CONTACT
            table.add_row(
                user.email if first else "",
                (config.name if config else "[red]none[/red]") if first else "",
                checks if first else "",
                f"{kind.value}s",
                *(status.sync_status(kind, flow).display for flow in FLOW_NAMES),
                str(status.records_in_sync.get(kind, 0)),
                status.reset_status.display if status.reset_status and first else "",
                end_section=not first,
            )
    return table


def describe_action(action: Action, subject: str) -> str | None:
    """A one-line account of a write, for the demo's live log (``None`` for no write)."""
    match action:
        case Create(target=target, reason=reason):
            return f"created in {_side(target)}: {subject} ({reason})"
        case Update(target=target, reason=reason):
            return f"updated in {_side(target)}: {subject} ({reason})"
        case Delete(target=target, reason=reason):
            return f"deleted in {_side(target)}: {subject} ({reason})"
        case Pair(then=then, reason=reason) if then is not None:
            return f"paired and updated in {_side(then)}: {subject} ({reason})"
        case Skip(problem=problem) if problem is not None:
            return f"[red]skipped: {subject}: {problem.message}[/red]"
    return None


def _side(side: Side) -> str:
    return "CRM" if side is Side.CRM else "mail server"


def subject_of(action: Action) -> str:
    """What an action is about, in words: the record's subject or name, else its id."""
    match action:
        case Create(source=source) | Update(source=source) | Pair(crm=source):
            record = source.record
            if record is None:
                return source.id
            return getattr(record, "subject", None) or getattr(record, "display_name", source.id)
        case Delete(link=link) | Relink(link=link) | Unlink(link=link):
            return link.crm_id
        case Skip(item_id=item_id):
            return item_id
    return ""


def preview_table(preview: RepPreview) -> Table:
    """One rep's preview: each action, the side it writes to and the rule behind it."""
    config = preview.config.name if preview.config else "none"
    table = Table(
        "Kind",
        "Action",
        "Writes to",
        "Item",
        "Rule",
        title=f"{preview.rep.email} (configuration: {config})",
    )
    for kind, actions in preview.kinds.items():
        for action in actions:
            target = getattr(action, "target", None) or getattr(action, "then", None)
            table.add_row(
                kind.value,
                type(action).__name__.lower(),
                _side(target) if target else "",
                subject_of(action),
                action.reason,
            )
    return table
