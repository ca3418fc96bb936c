"""The console's pages: server-rendered HTML forms that work without JavaScript.

Every page checks the permissions of the spec (see `security`); every form posts the
session's CSRF token; every change redirects (POST → 303 → GET) so a reload never
repeats it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from crmsync.admin.web import api, rep_sign_in, setup_page, views
from crmsync.admin.web.deps import check_csrf, optional_principal
from crmsync.admin.web.rendering import (
    Csrf,
    ErrorReader,
    Manager,
    Service,
    back,
    messages,
    not_found,
    render,
)
from crmsync.admin.web.schemas import ErrorFilters
from crmsync.admin.web.security import (
    ERROR_REPORT,
    MANAGE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Principal,
    SignInRefused,
    sign_in,
)
from crmsync.domain.contact_fields import ContactFilter, FieldMapping
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import (
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
from crmsync.domain.sync import ErrorType
from crmsync.service.runner import SyncService
from crmsync.store import ErrorSort

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(setup_page.router)


# ---- sign-in ---------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_local(next))


@router.post("/login")
def login(
    request: Request,
    service: Service,
    username: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        token, _session = sign_in(service.store, username, password, address)
    except SignInRefused as refused:
        response = render(
            request,
            "login.html",
            None,
            status_code=429 if refused.retry_after else 401,
            error=str(refused),
            next=_local(next),
            username=username,
        )
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    response = back(_local(next))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.app.state.secure_cookies,
    )
    return response


@router.post("/logout")
def logout(request: Request, service: Service, csrf_token: Csrf) -> Response:
    principal = optional_principal(request)
    if principal is not None and principal.session is not None:
        check_csrf(principal, csrf_token)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            service.store.close_session(token)
    response = back("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


def _local(path: str) -> str:
    """Only redirect within the console (no open redirect through ``next``)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


@router.get("/")
def home(request: Request) -> Response:
    principal = optional_principal(request)
    if principal is not None and not principal.may(MANAGE) and principal.may(ERROR_REPORT):
        return back("/errors")
    return back("/status")


# ---- setup and connection test --------------------------------------------------------------


@router.get("/connection-test")
def connection_test_page(request: Request, principal: Manager) -> HTMLResponse:
    return render(request, "connection_test.html", principal, result=None, email="")


@router.post("/connection-test")
def run_connection_test(
    request: Request,
    principal: Manager,
    service: Service,
    csrf_token: Csrf,
    email: Annotated[str, Form(min_length=3, max_length=320)],
) -> HTMLResponse:
    check_csrf(principal, csrf_token)
    result = views.connection_test(service, email.strip())
    return render(request, "connection_test.html", principal, result=result, email=email)


# ---- configurations ------------------------------------------------------------------------


@router.get("/configurations")
def configurations_page(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    rows = [{"config": c, "warnings": configuration_warnings(c)} for c in service.store.configs()]
    return render(
        request,
        "configurations.html",
        principal,
        rows=rows,
        saved=request.query_params.get("saved"),
        deleted=request.query_params.get("deleted"),
    )


def _form_choices() -> dict[str, Any]:
    return {
        "directions": list(Direction),
        "conflicts": list(ConflictBehaviour),
        "ownerships": list(ContactOwnership),
        "windows": list(EventWindow),
        "selections": list(EventSelection),
    }


def _config_form(
    request: Request,
    principal: Principal,
    service: SyncService,
    form: dict[str, Any],
    *,
    original: str | None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    return render(
        request,
        "configuration.html",
        principal,
        status_code=status_code,
        form=form,
        original=original,
        profiles=service.crm.list_profiles(),
        **_form_choices(),
        **extra,
    )


def _form_of(service: SyncService, config: SyncConfig) -> dict[str, Any]:
    emails = {u.id: u.email for u in service.crm.list_users()}
    names = {p.id: p.name for p in service.crm.list_profiles()}
    return {
        "name": config.name,
        "active": config.active,
        "description": config.description,
        "users": "\n".join(sorted(emails.get(i, i) for i in config.user_ids)),
        "profiles": [names.get(i, i) for i in config.profile_ids],
        "contacts": config.contacts,
        "events": config.events,
        "filters": "\n".join(f.text for f in config.contacts.filters),
        "mappings": "\n".join(m.text for m in config.contacts.field_mappings),
    }


@router.get("/configurations/new")
def new_configuration(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    return _config_form(
        request, principal, service, _form_of(service, SyncConfig("")), original=None
    )


# The rest of the path is the name: names with a "/" saved before names were checked
# stay reachable (links encode it as %2F).
@router.get("/configurations/{name:path}")
def edit_configuration(
    name: str, request: Request, principal: Manager, service: Service
) -> HTMLResponse:
    config = service.store.config(name)
    if config is None:
        return not_found(request, principal, f"There is no configuration named {name!r}.")
    return _config_form(
        request,
        principal,
        service,
        _form_of(service, config),
        original=name,
        warnings=configuration_warnings(config),
    )


@router.post("/configurations")
async def post_configuration(request: Request, principal: Manager, service: Service) -> Response:
    """Save (create or replace), preview without saving, or delete; ``original`` names the
    configuration being edited (empty for a new one)."""
    form = await request.form()
    check_csrf(principal, str(form.get("csrf_token", "")))
    action = str(form.get("action", "save"))
    original = str(form.get("original", "")) or None
    if action == "delete" and original:
        service.store.delete_config(original)
        return back("/configurations", deleted=original)
    values = {k: str(v) for k, v in form.items() if k != "profiles"}
    values["profiles"] = [str(p) for p in form.getlist("profiles")]
    try:
        config = _config_from_form(service, values)
        if action != "preview":
            api.check_name(config.name, replacing=original)
    except (ValueError, ValidationError, RequestValidationError) as invalid:
        problems = [str(invalid)] if isinstance(invalid, ValueError) else messages(invalid)
        return _config_form(
            request,
            principal,
            service,
            _echo(values),
            original=original,
            status_code=422,
            errors=problems,
        )
    if action == "preview":
        previews = [
            views.preview(service.preview_rep(u, config))
            for u in api.reps_of(service, config, None)
        ]
        return _config_form(
            request,
            principal,
            service,
            _form_of(service, config),
            original=original,
            previews=previews,
            warnings=configuration_warnings(config),
        )
    if original is None and service.store.config(config.name) is not None:
        return _config_form(
            request,
            principal,
            service,
            _form_of(service, config),
            original=None,
            status_code=409,
            errors=[f"A configuration named {config.name!r} exists already."],
        )
    try:
        api.save_config(service, config, replacing=original)
    except (HTTPException, RequestValidationError) as refused:
        if isinstance(refused, HTTPException):
            problems, status = [str(refused.detail)], refused.status_code
        else:
            problems, status = messages(refused), 422
        return _config_form(
            request,
            principal,
            service,
            _form_of(service, config),
            original=original,
            status_code=status,
            errors=problems,
        )
    return back("/configurations", saved=config.name)


def _config_from_form(service: SyncService, form: dict[str, Any]) -> SyncConfig:
    users = {u.email.casefold(): u.id for u in service.crm.list_users()}
    profiles = {p.name: p.id for p in service.crm.list_profiles()}
    emails = [e.strip() for e in form.get("users", "").replace(",", "\n").splitlines() if e.strip()]
    unknown = [e for e in emails if e.casefold() not in users]
    if unknown:
        raise ValueError(f"no CRM user has the email {', '.join(unknown)}")
    contacts = ContactSettings(
        direction=Direction(form.get("contacts_direction", "both")),
        conflict=ConflictBehaviour(form.get("contacts_conflict", "crm_wins")),
        propagate_deletions="contacts_propagate_deletions" in form,
        ownership=ContactOwnership(form.get("contacts_ownership", "users_records")),
        filters=tuple(ContactFilter.parse(t) for t in _lines(form.get("filters", ""))),
        field_mappings=tuple(FieldMapping.parse(t) for t in _lines(form.get("mappings", ""))),
    )
    events = EventSettings(
        direction=Direction(form.get("events_direction", "both")),
        conflict=ConflictBehaviour(form.get("events_conflict", "crm_wins")),
        sync_private="events_sync_private" in form,
        delete_synced_events="events_delete_synced_events" in form,
        sync_series="events_sync_series" in form,
        window=EventWindow(form.get("events_window", "today")),
        window_days=_int(form.get("events_window_days"), 30),
        selection=EventSelection(form.get("events_selection", "all")),
        auto_relate="events_auto_relate" in form,
    )
    name = form.get("name", "").strip()
    if not name:
        raise ValueError("Give the configuration a name.")
    return SyncConfig(
        name=name,
        active="active" in form,
        description=form.get("description", "").strip(),
        user_ids=tuple(users[e.casefold()] for e in emails),
        profile_ids=tuple(profiles[p] for p in form.get("profiles", []) if p in profiles),
        contacts=contacts,
        events=events,
    )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _echo(form: dict[str, Any]) -> dict[str, Any]:
    """The submitted form, to show again with the problems."""
    try:
        contacts = ContactSettings(
            direction=Direction(form.get("contacts_direction", "both")),
            ownership=ContactOwnership(form.get("contacts_ownership", "users_records")),
        )
    except ValueError:
        contacts = ContactSettings()
    return {
        "name": form.get("name", ""),
        "active": "active" in form,
        "description": form.get("description", ""),
        "users": form.get("users", ""),
        "profiles": form.get("profiles", []),
        "contacts": contacts,
        "events": EventSettings(),
        "filters": form.get("filters", ""),
        "mappings": form.get("mappings", ""),
    }


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# ---- statuses --------------------------------------------------------------------------------


@router.get("/status")
def status_page(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    now = service.clock()
    return render(
        request,
        "status.html",
        principal,
        org=views.org_status(service, now),
        reps=[views.rep_summary(service, u) for u in views.reps_shown(service)],
    )


@router.get("/status/{email}")
def rep_page(email: str, request: Request, principal: Manager, service: Service) -> HTMLResponse:
    user = service.crm.get_user_by_email(email)
    if user is None:
        return not_found(request, principal, f"No CRM user has the email {email}.")
    return render(
        request,
        "rep.html",
        principal,
        rep=views.rep_status(service, user),
        check_labels=views.CHECK_LABELS,
        flow_labels=views.FLOW_LABELS,
        marked=request.query_params.get("marked"),
        signed_in=request.query_params.get("signed_in"),
        **rep_sign_in.sign_in_context(service, user.email),
    )


@router.post("/status/{email}/reset")
def reset_rep(
    email: str, request: Request, principal: Manager, service: Service, csrf_token: Csrf
) -> Response:
    check_csrf(principal, csrf_token)
    user = service.crm.get_user_by_email(email)
    if user is not None:
        service.mark_for_reset(user)
    return back(f"/status/{quote(email)}", marked="1")


# ---- error report ----------------------------------------------------------------------------


def _filters(request: Request) -> tuple[ErrorFilters, list[str]]:
    params = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return ErrorFilters(**params), []
    except ValidationError as invalid:
        return ErrorFilters(), messages(invalid)


@router.get("/errors")
def errors_page(request: Request, principal: ErrorReader, service: Service) -> HTMLResponse:
    filters, problems = _filters(request)
    rows = api.error_rows(service, filters)
    query = urlencode({k: v for k, v in request.query_params.items() if v})
    return render(
        request,
        "errors.html",
        principal,
        rows=rows,
        filters=filters,
        problems=problems,
        kinds=list(ItemKind),
        error_types=list(ErrorType),
        sorts=list(ErrorSort),
        reps=[u.email for u in service.crm.list_users()],
        csv_query=query,
        columns=views.ERROR_COLUMNS,
    )


@router.get("/errors.csv")
def errors_csv(request: Request, principal: ErrorReader, service: Service) -> Response:
    filters, _ = _filters(request)
    return Response(
        views.errors_csv(api.error_rows(service, filters)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="crmsync-errors.csv"'},
    )
