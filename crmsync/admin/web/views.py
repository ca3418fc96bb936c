"""What the console and the API show, as plain data: one function per screen.

The pages render these dicts with templates and the API returns them as JSON, so both
always say the same thing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any

from crmsync.admin.reports import subject_of
from crmsync.admin.web.coverage import effective_configs
from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import Direction, OrgSettings
from crmsync.domain.sync import ErrorEntry, ErrorType, SyncError
from crmsync.service.connection_test import run_connection_test
from crmsync.service.crm_connection_test import run_crm_connection_test
from crmsync.service.crms import SALESFORCE_SECRET, WRITES_PAUSED_TEXT, api_state
from crmsync.service.mailboxes import SERVICE_PASSWORD, per_rep_sign_in
from crmsync.service.rep_sign_in import RepSignIn
from crmsync.service.runner import RepPreview, SyncService
from crmsync.store import FLOWS, ErrorSort, RepStatus
from crmsync.store.error_report import RepErrors

FLOW_LABELS = {
    Direction.CRM_TO_MAIL: "CRM → mail server",
    Direction.MAIL_TO_CRM: "mail server → CRM",
}
CHECK_LABELS = {
    "mailbox_supported": "Mailbox runs on a supported server",
    "recognized": "Mailbox recognized by the service account",
    "contacts_folder_found": "Contacts folder found",
    "calendar_found": "Calendar found",
    "addresses_linked": "CRM and mail server email addresses linked",
}


def connection_test(
    service: SyncService, email: str, *, service_account_only: bool = False
) -> dict[str, Any]:
    """The connection test for the rep with ``email``, as plain data; writes nothing. For
    an org that syncs Salesforce, the CRM's steps follow the mail server's."""
    result = run_connection_test(
        service.org_settings(),
        service.store.get_secret(SERVICE_PASSWORD),
        email,
        retry=service.retry,
        service_account_only=service_account_only,
        rep_credentials=service.store.rep_credentials(email) if email else None,
    ).as_dict()
    crm = service.crm_settings()
    if crm.is_salesforce and not service_account_only:
        secret = service.store.get_secret(SALESFORCE_SECRET)
        steps = run_crm_connection_test(crm, secret, email)
        result["steps"] += [step.as_dict() for step in steps]
        result["passed"] = result["passed"] and all(s.passed is not False for s in steps)
    return result


def service_account_check(service: SyncService) -> dict[str, Any]:
    """The steps that need no rep, run on saving the setup: the spec's "service account
    recognized"."""
    return connection_test(service, "", service_account_only=True)


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def org_status(
    service: SyncService, now: dt.datetime, reps: list[User] | None = None
) -> dict[str, Any]:
    """The spec's Tables 1-3: setup, then contacts and events activity; and 24 hours of
    records synced per hour. ``reps``: the CRM's active users, if already read."""
    settings = service.org_settings()
    store = service.store
    crm = crm_status(service, now)
    if reps is None:
        reps = reps_shown(service)
    statuses = {s.rep_id: s for s in store.rep_statuses()}
    known = [statuses[u.id] for u in reps if u.id in statuses]
    recognized = None if not known else any(s.recognized for s in known)
    kinds = {}
    for kind in ItemKind:
        kinds[kind.value] = {
            "last_sync_activity": iso(store.last_activity(kind)),
            "synced_last_60_minutes": store.synced_since(kind, now - dt.timedelta(minutes=59)),
            "synced_last_24_hours": store.synced_since(kind, now - dt.timedelta(hours=23)),
            "hourly": [
                {"hour": iso(hour), "count": count}
                for hour, count in store.hourly_synced(kind, now=now)
            ],
        }
    return {
        "setup": {
            "connection_method": settings.connection_method.value,
            "server_url": settings.server_url,
            "service_account": settings.service_account or None,
            "service_account_recognized": recognized,
            "event_category": settings.event_category,
            "reps": len(reps),
            "reps_with_a_configuration": len(effective_configs(store.configs(), reps)),
            "linked_users": sum(1 for s in known if s.addresses_linked),
        },
        "contacts": kinds[ItemKind.CONTACT.value],
        "events": kinds[ItemKind.EVENT.value],
        "crm": crm,
    }


def reps_shown(service: SyncService) -> list[User]:
    """The CRM's active users; none while the CRM cannot be read (`crm_status` says why)."""
    try:
        return service.reps()
    except SyncError:
        return []


def crm_status(service: SyncService, now: dt.datetime) -> dict[str, Any]:
    """Which CRM the org syncs and, for Salesforce, its API budget: calls per day and per
    cycle (this deployment's), the org's usage against its daily allocation, and whether
    writes are paused because the allocation is used up."""
    settings = service.crm_settings()
    status: dict[str, Any] = {"kind": settings.kind.value, "reachable": True, "error": None}
    if not settings.is_salesforce:
        return status
    calls, cycles = service.store.api_calls_since(now - dt.timedelta(hours=23))
    status.update(
        my_domain_url=settings.my_domain_url,
        api_calls_last_24_hours=calls,
        cycles_last_24_hours=cycles,
        api_calls_per_cycle=round(calls / cycles, 1) if cycles else None,
        api_usage=None,
        writes_paused=False,
        writes_paused_note=None,
    )
    state = None
    try:
        state = api_state(service.crm)
        if state is None or state.used is None:
            service.crm.api_usage()  # one call: nothing has told the usage yet
            state = api_state(service.crm)
    except SyncError as failure:
        status.update(reachable=False, error=f"{failure.message} ({failure.suggestion})")
    if state is not None and state.used is not None and state.limit:
        status["api_usage"] = {
            "used": state.used,
            "limit": state.limit,
            "share": round(state.used / state.limit, 4),
        }
    if state is not None and state.writes_paused:
        status.update(writes_paused=True, writes_paused_note=WRITES_PAUSED_TEXT)
    return status


def ago(value: str | dt.datetime | None, now: dt.datetime) -> str:
    """How long before ``now``, in the largest unit that fits ("3 min ago")."""
    if value is None:
        return ""
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = (now - at).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return ""


def overdue(status: RepStatus, now: dt.datetime, after: dt.timedelta) -> bool:
    """Whether the rep's cycle waits for a claim longer than ``after`` (the org's
    `overdue_after_minutes`: the schedulers or workers are stopped or behind); a rep with
    no next-due time is due now, not overdue."""
    since = status.due_since(now)
    return since is not None and since < now - after


def attention(
    status: RepStatus,
    errors: RepErrors,
    now: dt.datetime,
    *,
    paused: bool,
    sign_in_refused: bool,
    overdue: bool,
) -> list[str]:
    """What the admin should look at for a rep beyond its flows' statuses and a pause the
    mail server asked for (``paused``: one is active, so a failed last cycle is explained)."""
    found = []
    if sign_in_refused:
        found.append("Sign-in refused")
    if errors.held_deletes:
        found.append(
            "Deletions confirmed: carried out next cycle"
            if errors.deletes_confirmed
            else "Deletions held"
        )
    if errors.failing_items:
        found.append(
            f"{errors.failing_items:,} item{'s' if errors.failing_items > 1 else ''} failing"
        )
    if overdue:
        found.append(f"Overdue: due {ago(status.next_due, now)}")
    if status.last_error and not found and not paused:
        found.append("Last cycle failed")
    return found


def rep_lines(
    service: SyncService,
    reps: list[User],
    now: dt.datetime,
    statuses: dict[str, RepStatus] | None = None,
    refused: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The reps list's lines (pages and API), from every status, configuration, error
    count and refused login at once, not per rep. ``statuses`` (by rep id) and
    ``refused`` (the lower-case emails whose stored login the server refused): if
    already read.

    ``attention`` lists everything that needs attention, a pause first; the pages show the
    pause with its own markup (its end as a local time), then ``other_attention``.
    """
    store = service.store
    settings = service.org_settings()
    overdue_after = dt.timedelta(minutes=settings.overdue_after_minutes)
    if statuses is None:
        statuses = {s.rep_id: s for s in store.rep_statuses()}
    configs = effective_configs(store.configs(), reps)
    # One rep (its page, the API's answers about it): only its own rows are counted.
    errors = store.rep_errors(reps[0].id if len(reps) == 1 else None)
    if refused is None:
        refused = _refused_logins(service, settings, reps)
    lines = []
    for user in reps:
        status = statuses.get(user.id) or RepStatus(user.id)
        rep_errors = errors.get(user.id) or RepErrors()
        config = configs.get(user.id)
        paused = status.paused if status.paused and status.paused.active(now) else None
        sign_in_refused = user.email.strip().casefold() in refused
        late = overdue(status, now, overdue_after)
        others = attention(
            status,
            rep_errors,
            now,
            paused=paused is not None,
            sign_in_refused=sign_in_refused,
            overdue=late,
        )
        pause_said = [f"Paused by {paused.by} until {paused.until:%H:%M} UTC"] if paused else []
        lines.append(
            {
                "email": user.email,
                "name": user.name,
                "configuration": config.name if config else None,
                "flows": {
                    kind.value: {
                        flow.value: status.sync_status(kind, flow).display for flow in FLOWS
                    }
                    for kind in ItemKind
                },
                "records_in_sync": {
                    kind.value: status.records_in_sync.get(kind, 0) for kind in ItemKind
                },
                "reset_status": status.reset_status.display if status.reset_status else None,
                "last_error": status.last_error,
                "last_cycle_finished": iso(status.last_cycle_finished),
                "errors": rep_errors.total,
                "failing_items": rep_errors.failing_items,
                "held_deletes": rep_errors.held_deletes and not rep_errors.deletes_confirmed,
                "attention": pause_said + others,
                "other_attention": others,
                "sign_in_refused": sign_in_refused,
                "next_due": iso(status.next_due),
                "overdue": late,
                "running_on": status.running_on(now),
                "paused": paused
                and {"by": paused.by, "until": iso(paused.until), "because": paused.because},
            }
        )
    return lines


def _refused_logins(service: SyncService, settings: OrgSettings, reps: list[User]) -> set[str]:
    """The lower-case emails among ``reps`` whose stored login the mail server refused:
    one rep's login alone for one rep (every stored login is decrypted otherwise)."""
    if not per_rep_sign_in(settings):
        return set()
    if len(reps) == 1:
        return refused_of(service.rep_sign_in(reps[0].email))
    return set(service.store.refused_rep_logins())


def sign_in_shown(service: SyncService, email: str) -> RepSignIn | None:
    """The rep's stored login as the rep's page shows it (never the password); ``None``
    unless the org signs in with each rep's own login."""
    return service.rep_sign_in(email) if per_rep_sign_in(service.org_settings()) else None


def refused_of(sign_in: RepSignIn | None) -> set[str]:
    """`rep_lines`' ``refused`` for the one rep of ``sign_in``."""
    return {sign_in.email.strip().casefold()} if sign_in and sign_in.needs_attention else set()


def rep_summary(service: SyncService, user: User) -> dict[str, Any]:
    """One rep's line of the reps list."""
    status = service.store.rep_status(user.id)
    (line,) = rep_lines(service, [user], service.clock(), {user.id: status})
    return line


def rep_status(service: SyncService, user: User, history: int = 50) -> dict[str, Any]:
    """The spec's Tables 4-6 for one rep, and the rep's recent audit trail."""
    status = service.store.rep_status(user.id)
    return {
        **rep_summary(service, user),
        "checks": {name: getattr(status, name) for name in CHECK_LABELS},
        "consecutive_failures": status.consecutive_failures,
        "audit": [
            {
                "at": iso(entry.at),
                "kind": entry.kind.value,
                "action": entry.action,
                "target": entry.target.value if entry.target else None,
                "crm_id": entry.crm_id,
                "mail_id": entry.mail_id,
                "rule": entry.rule,
                "error": entry.error,
            }
            for entry in service.store.rep_history(user.id, history)
        ],
    }


def preview(result: RepPreview) -> dict[str, Any]:
    return {
        "rep": result.rep.email,
        "configuration": result.config.name if result.config else None,
        "note": result.note,
        "actions": [
            {
                "kind": kind.value,
                "action": type(action).__name__.lower(),
                "writes_to": _side_of(action),
                "item": subject_of(action),
                "rule": action.reason,
            }
            for kind, actions in result.kinds.items()
            for action in actions
        ],
    }


def _side_of(action: object) -> str | None:
    target = getattr(action, "target", None) or getattr(action, "then", None)
    if target is None:
        return None
    return "CRM" if target.value == "crm" else "mail server"


def error_rows(
    service: SyncService,
    *,
    rep: str | None = None,
    kind: ItemKind | None = None,
    error_type: ErrorType | None = None,
    since: dt.datetime | None = None,
    sort: ErrorSort = ErrorSort.TIME,
    descending: bool = True,
    limit: int | None = None,
    offset: int = 0,
) -> Iterator[dict[str, Any]]:
    """The error report's rows the filters match, sorted; ``rep`` is an email. With
    ``limit``, the page of that many rows from ``offset``, read at once; without, every
    matching row, read a chunk at a time (exports of any size)."""
    emails = {user.id: user.email for user in service.crm.list_users()}
    found, rep_id = _rep_id(service, rep)
    if not found:
        return
    filters: dict[str, Any] = {
        "rep_id": rep_id,
        "kind": kind,
        "error_type": error_type,
        "since": since,
        "sort": sort,
        "descending": descending,
    }
    if limit is None:
        entries: Iterable[ErrorEntry] = service.store.each_error(**filters)
    else:
        entries = service.store.errors(**filters, limit=limit, offset=offset)
    for entry in entries:
        yield _error(entry, emails)


def _rep_id(service: SyncService, email: str | None) -> tuple[bool, str | None]:
    """Whether the filter's rep exists, and its id (``None``: no filter)."""
    if not email:
        return True, None
    found = service.crm.get_user_by_email(email)
    return (False, None) if found is None else (True, found.id)


def _error(entry: ErrorEntry, emails: dict[str, str]) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "rep": emails.get(entry.rep_id, entry.rep_id),
        "kind": entry.kind.value if entry.kind else None,
        "item": entry.item_id,
        "operation": entry.operation,
        "error_type": entry.error_type.value,
        "message": entry.message,
        "suggestion": entry.suggestion,
        "occurrences": entry.occurrences,
        "first_at": iso(entry.first_at),
    }


ERROR_COLUMNS = (
    "at",
    "rep",
    "kind",
    "item",
    "operation",
    "error_type",
    "message",
    "suggestion",
    "occurrences",
    "first_at",
)


def csv_lines(
    rows: Iterable[dict[str, Any]], columns: tuple[str, ...] = ERROR_COLUMNS
) -> Iterator[str]:
    """The rows as CSV, the header first, in pieces of about 64 KiB (an export is streamed)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
        if out.tell() >= 64 * 1024:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
