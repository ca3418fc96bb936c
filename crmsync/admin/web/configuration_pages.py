"""The configuration pages: the list, the form (create, edit, preview) and deleting one
after a confirmation.

The form is a flat dict of what the admin entered, so a form with problems comes back
with every value as typed and each problem beside its field. Members are picked from
the org's users and profiles (Assigned / Available lists; the search re-renders the form
without JavaScript and filters as one types with it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from crmsync.admin.validation import configuration_name_problem
from crmsync.admin.web import api, labels, views
from crmsync.admin.web.coverage import effective_configs, overrides
from crmsync.admin.web.deps import check_csrf
from crmsync.admin.web.rendering import (
    Manager,
    Service,
    back,
    by_field,
    field_problems,
    not_found,
    render,
)
from crmsync.admin.web.security import Principal
from crmsync.domain.contact_fields import ContactFilter, FieldMapping
from crmsync.domain.records import User
from crmsync.domain.settings import (
    MAX_WINDOW_DAYS,
    ConflictBehaviour,
    ContactOwnership,
    ContactSettings,
    Direction,
    EventSelection,
    EventSettings,
    EventWindow,
    SyncConfig,
    configuration_warnings,
)
from crmsync.service.runner import SyncService

router = APIRouter(include_in_schema=False)
# Available members listed at once; a search narrows the rest.
AVAILABLE_SHOWN = 100
CHECKBOXES = (
    "active",
    "contacts_propagate_deletions",
    "events_sync_private",
    "events_delete_synced_events",
    "events_sync_series",
    "events_auto_relate",
)


@router.get("/configurations")
def configurations_page(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    configs = service.store.configs()
    covered = effective_configs(configs, service.reps())
    rows = [
        {
            "config": c,
            "warnings": configuration_warnings(c),
            "covers": sum(1 for found in covered.values() if found.name == c.name),
        }
        for c in configs
    ]
    return render(
        request,
        "configurations.html",
        principal,
        rows=rows,
        saved=request.query_params.get("saved"),
        deleted=request.query_params.get("deleted"),
        labels=labels,
    )


def form_of(service: SyncService, config: SyncConfig) -> dict[str, Any]:
    """A saved configuration as the form shows it."""
    emails = {u.id: u.email for u in service.crm.list_users()}
    names = {p.id: p.name for p in service.crm.list_profiles()}
    contacts, events = config.contacts, config.events
    return {
        "name": config.name,
        "active": config.active,
        "description": config.description,
        "users": sorted(emails.get(i, i) for i in config.user_ids),
        "profiles": [names.get(i, i) for i in config.profile_ids],
        "contacts_direction": contacts.direction.value,
        "contacts_conflict": contacts.conflict.value,
        "contacts_ownership": contacts.ownership.value,
        "contacts_propagate_deletions": contacts.propagate_deletions,
        "filters": "\n".join(f.text for f in contacts.filters),
        "mappings": "\n".join(m.text for m in contacts.field_mappings),
        "events_direction": events.direction.value,
        "events_conflict": events.conflict.value,
        "events_selection": events.selection.value,
        "events_window": events.window.value,
        "events_window_days": str(events.window_days),
        "events_sync_private": events.sync_private,
        "events_delete_synced_events": events.delete_synced_events,
        "events_sync_series": events.sync_series,
        "events_auto_relate": events.auto_relate,
    }


def form_posted(form: FormData) -> dict[str, Any]:
    """What the admin entered, as typed (checkboxes: ticked or not)."""
    entered: dict[str, Any] = {
        k: str(v) for k, v in form.items() if k not in ("users", "profiles", *CHECKBOXES)
    }
    entered.update({name: name in form for name in CHECKBOXES})
    # A picked user is one value each; a script may post several emails in one.
    entered["users"] = [
        email.strip()
        for value in form.getlist("users")
        for email in str(value).replace(",", "\n").splitlines()
        if email.strip()
    ]
    entered["profiles"] = [str(p) for p in form.getlist("profiles")]
    return entered


def _page(
    request: Request,
    principal: Principal,
    service: SyncService,
    form: dict[str, Any],
    *,
    original: str | None,
    status_code: int = 200,
    problems: list[tuple[str, str]] | None = None,
    **extra: Any,
) -> HTMLResponse:
    users = service.crm.list_users()
    profiles = service.crm.list_profiles()
    chosen = {e.casefold() for e in form["users"]}
    search = str(form.get("member_search", "")).strip().casefold()
    available = [
        u
        for u in users
        if u.email.casefold() not in chosen
        and (not search or search in u.email.casefold() or search in u.name.casefold())
    ]
    saved = service.store.config(original) if original else None
    configs = service.store.configs()
    known = {u.email.casefold() for u in users}
    grouped = by_field(problems or [])
    covered = None
    if saved is not None:
        effective = effective_configs(configs, service.reps())
        covered = sorted(
            (u for u in users if u.id in effective and effective[u.id].name == saved.name),
            key=_by_name,
        )
    return render(
        request,
        "configuration.html",
        principal,
        status_code=status_code,
        form=form,
        original=original,
        assigned_users=sorted((u for u in users if u.email.casefold() in chosen), key=_by_name),
        unknown_users=[e for e in form["users"] if e.casefold() not in known],
        available_users=available[:AVAILABLE_SHOWN],
        more_available=max(0, len(available) - AVAILABLE_SHOWN),
        member_search=form.get("member_search", ""),
        profiles=profiles,
        covered=covered,
        overrides=overrides(saved, configs, users, profiles) if saved else [],
        errors=grouped.get("", []),
        field_errors=grouped,
        labels=labels,
        max_window_days=MAX_WINDOW_DAYS,
        **extra,
    )


def _by_name(user: User) -> str:
    return (user.name or user.email).casefold()


@router.get("/configurations/new")
def new_configuration(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    return _page(request, principal, service, form_of(service, SyncConfig("")), original=None)


# The rest of the path is the name: names with a "/" saved before names were checked
# stay reachable (links encode it as %2F).
@router.get("/configurations/{name:path}")
def edit_configuration(
    name: str, request: Request, principal: Manager, service: Service
) -> HTMLResponse:
    config = service.store.config(name)
    if config is None:
        return not_found(request, principal, f"There is no configuration named {name!r}.")
    return _page(
        request,
        principal,
        service,
        form_of(service, config),
        original=name,
        warnings=configuration_warnings(config),
    )


@router.post("/configurations")
async def post_configuration(request: Request, principal: Manager, service: Service) -> Response:
    """Save (create or replace), preview without saving, search members, ask to delete or
    delete; ``original`` names the configuration being edited (empty for a new one)."""
    form = await request.form()
    check_csrf(principal, str(form.get("csrf_token", "")))
    action = str(form.get("action", "save"))
    original = str(form.get("original", "")) or None
    if action == "delete" and original:
        return _confirm_delete(request, principal, service, original)
    if action == "confirm_delete" and original:
        service.store.delete_config(original)
        return back("/configurations", deleted=original)
    entered = form_posted(form)
    if action == "search":
        return _page(request, principal, service, entered, original=original)
    config, problems = config_from(service, entered)
    status = 422
    if config is not None and action != "preview":
        if config.name != original and (problem := configuration_name_problem(config.name)):
            problems.append(("name", problem))
        elif config.name != original and service.store.config(config.name) is not None:
            problems.append(("name", f"A configuration named {config.name!r} exists already."))
            status = 409
    if config is None or problems:
        return _page(
            request,
            principal,
            service,
            entered,
            original=original,
            status_code=status,
            problems=problems,
        )
    if action == "preview":
        previews = [
            views.preview(service.preview_rep(u, config))
            for u in api.reps_of(service, config, None)
        ]
        return _page(
            request,
            principal,
            service,
            entered,
            original=original,
            previews=previews,
            warnings=configuration_warnings(config),
        )
    try:
        api.save_config(service, config, replacing=original)
    except HTTPException as refused:
        return _page(
            request,
            principal,
            service,
            entered,
            original=original,
            status_code=refused.status_code,
            problems=[("", str(refused.detail))],
        )
    except RequestValidationError as refused:
        return _page(
            request,
            principal,
            service,
            entered,
            original=original,
            status_code=422,
            problems=field_problems(refused),
        )
    return back("/configurations", saved=config.name)


def _confirm_delete(
    request: Request, principal: Principal, service: SyncService, name: str
) -> HTMLResponse:
    config = service.store.config(name)
    if config is None:
        return not_found(request, principal, f"There is no configuration named {name!r}.")
    covered = effective_configs(service.store.configs(), service.reps())
    covers = sum(1 for found in covered.values() if found.name == name)
    return render(request, "configuration_delete.html", principal, config=config, covers=covers)


def config_from(
    service: SyncService, form: dict[str, Any]
) -> tuple[SyncConfig | None, list[tuple[str, str]]]:
    """The configuration the form describes, or every problem with it by field."""
    problems: list[tuple[str, str]] = []
    users = {u.email.casefold(): u.id for u in service.crm.list_users()}
    profiles = {p.name: p.id for p in service.crm.list_profiles()}
    unknown = [e for e in form["users"] if e.casefold() not in users]
    if unknown:
        problems.append(("users", f"No CRM user has the email {', '.join(unknown)}."))
    missing = [p for p in form["profiles"] if p not in profiles]
    if missing:
        problems.append(("profiles", f"No CRM profile is named {', '.join(missing)}."))
    name = str(form.get("name", "")).strip()
    if not name:
        problems.append(("name", "Give the configuration a name."))

    def choice(field: str, kind: type, default: str) -> Any:
        value = form.get(field, default)
        try:
            return kind(value)
        except ValueError:
            problems.append((field, f"{value!r} is not one of the choices."))
            return kind(default)

    def parsed(field: str, parse: Any) -> tuple[Any, ...]:
        found = []
        for number, line in enumerate(str(form.get(field, "")).splitlines(), 1):
            if line.strip():
                try:
                    found.append(parse(line.strip()))
                except ValueError as refused:
                    problems.append((field, f"line {number}: {refused}"))
        return tuple(found)

    contacts = ContactSettings(
        direction=choice("contacts_direction", Direction, "both"),
        conflict=choice("contacts_conflict", ConflictBehaviour, "crm_wins"),
        propagate_deletions=form["contacts_propagate_deletions"],
        ownership=choice("contacts_ownership", ContactOwnership, "users_records"),
        filters=parsed("filters", ContactFilter.parse),
        field_mappings=parsed("mappings", FieldMapping.parse),
    )
    days_text = str(form.get("events_window_days", "")).strip() or "30"
    days = int(days_text) if days_text.isdigit() else None
    if days is None or not 1 <= days <= MAX_WINDOW_DAYS:
        problems.append(
            (
                "events_window_days",
                f"N is a whole number from 1 to {MAX_WINDOW_DAYS}, not {days_text!r}.",
            )
        )
        days = 30
    events = EventSettings(
        direction=choice("events_direction", Direction, "both"),
        conflict=choice("events_conflict", ConflictBehaviour, "crm_wins"),
        sync_private=form["events_sync_private"],
        delete_synced_events=form["events_delete_synced_events"],
        sync_series=form["events_sync_series"],
        window=choice("events_window", EventWindow, "today"),
        window_days=days,
        selection=choice("events_selection", EventSelection, "all"),
        auto_relate=form["events_auto_relate"],
    )
    if problems:
        return None, problems
    config = SyncConfig(
        name=name,
        active=form["active"],
        description=str(form.get("description", "")).strip(),
        user_ids=tuple(users[e.casefold()] for e in form["users"]),
        profile_ids=tuple(profiles[p] for p in form["profiles"]),
        contacts=contacts,
        events=events,
    )
    # The rules that need the CRM's fields (mappings and filters against its types).
    for problem in service.configuration_problems([config]):
        field = "mappings" if "mapping" in problem else "filters" if "filter" in problem else ""
        problems.append((field, problem))
    return (None, problems) if problems else (config, [])
