"""The REST API, under /api/v1: everything the console pages do, with the same permissions.

Authenticate with ``Authorization: Bearer TOKEN`` (`crmsync admin token`), or with the
console's session cookie plus the ``X-CSRF-Token`` header on changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from crmsync.admin import config_file
from crmsync.admin.validation import configuration_name_problem, org_settings_problems
from crmsync.admin.web import views
from crmsync.admin.web.deps import OneValueEach, check_csrf, get_service, require
from crmsync.admin.web.response_models import (
    ConnectionTestAnswer,
    ErrorRow,
    OrgStatus,
    RepPreviewAnswer,
    RepStatus,
    RepSummary,
)
from crmsync.admin.web.schemas import (
    SIGNED_IN,
    WITH_BODY,
    Configuration,
    ConnectionTestIn,
    ErrorExportFilters,
    ErrorFilters,
    Me,
    SavedConfiguration,
    SetupIn,
    SetupOut,
    answers,
    invalid,
)
from crmsync.admin.web.security import ERROR_REPORT, MANAGE, Principal
from crmsync.domain.records import User
from crmsync.domain.settings import OrgSettings, SyncConfig, configuration_warnings
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.service.runner import SyncService
from crmsync.store import ConfigConflict

router = APIRouter(prefix="/api/v1", responses=SIGNED_IN)
Manager = Annotated[Principal, Depends(require(MANAGE))]
ErrorReader = Annotated[Principal, Depends(require(ERROR_REPORT))]
Service = Annotated[SyncService, Depends(get_service)]


def _csrf(request: Request, principal: Principal) -> None:
    check_csrf(principal, request.headers.get("x-csrf-token"))


@router.get("/me", tags=["account"])
def me(principal: Annotated[Principal, Depends(require(frozenset()))]) -> Me:
    """Who the token or session belongs to, and what it may do."""
    return Me(username=principal.admin.username, permissions=sorted(principal.admin.permissions))


# ---- setup ---------------------------------------------------------------------------------


def setup_out(service: SyncService) -> SetupOut:
    settings = service.org_settings()
    values = dataclasses.asdict(settings)
    values["additional_domains"] = list(settings.additional_domains)
    return SetupOut(
        **values, password_stored=service.store.get_secret(SERVICE_PASSWORD) is not None
    )


@router.get("/setup", tags=["setup"])
def get_setup(principal: Manager, service: Service) -> SetupOut:
    return setup_out(service)


@router.put("/setup", tags=["setup"], responses=WITH_BODY)
def put_setup(body: SetupIn, request: Request, principal: Manager, service: Service) -> SetupOut:
    """Save the connection; the password is stored encrypted and never returned. A 422
    lists every problem (required settings per connection method, URLs, the principal
    path, a password when none is stored) and saves nothing."""
    _csrf(request, principal)
    save_setup(service, body)
    return setup_out(service)


def save_setup(service: SyncService, body: SetupIn) -> None:
    """Save ``body`` if the rules allow it; raises `RequestValidationError` (a 422)
    listing every problem otherwise."""
    values = body.model_dump(exclude={"password"})
    values["additional_domains"] = tuple(d.strip() for d in body.additional_domains if d.strip())
    settings = OrgSettings(**values)
    # A stored password is kept for the method and account it was saved for, never sent
    # for another (the same rule as `crmsync setup` and `config apply`).
    password = body.password or service.kept_password(settings)
    problems = org_settings_problems(settings, password_known=bool(password), password=password)
    if problems:
        raise invalid(problems)
    # Checked above: the rules need one, except with per-rep sign-in (each rep's own).
    # Also drops the service's open connection, so the next cycle uses the new setup.
    service.configure_server(settings, password or "")


@router.post(
    "/connection-test",
    tags=["setup"],
    responses=WITH_BODY,
    response_model=ConnectionTestAnswer,
)
def connection_test(
    body: ConnectionTestIn, request: Request, principal: Manager, service: Service
) -> dict[str, Any]:
    """Each step of reaching the rep's mailbox, with pass / fail and a fix."""
    _csrf(request, principal)
    return views.connection_test(service, body.email.strip())


# ---- configurations ------------------------------------------------------------------------
# Addressed by name; a name is one URL segment, "/" and all other reserved characters
# percent-encoded ("a%2Fb"). The routes take the rest of the path as the name, so names
# with a "/" saved before names were checked stay reachable.

NOT_FOUND = {"e404": "No configuration has this name."}


def to_config(service: SyncService, body: Configuration) -> SyncConfig:
    try:
        return config_file.configuration_from(service, body.model_dump(mode="json"))
    except config_file.DocumentError as refused:
        raise invalid(("", problem) for problem in refused.problems) from None


def check_name(name: str, replacing: str | None = None) -> None:
    """422 unless ``name`` follows the naming rule or is the stored name being kept."""
    if name == replacing:
        return
    if problem := configuration_name_problem(name):
        raise invalid([("name", problem)])


def saved(service: SyncService, config: SyncConfig) -> SavedConfiguration:
    data = config_file.configuration_data(service, config)
    return SavedConfiguration(**data, warnings=configuration_warnings(config))


def save_config(service: SyncService, config: SyncConfig, replacing: str | None = None) -> None:
    """Save ``config``, in place of the configuration named ``replacing`` if given (a
    rename moves its assignments in one transaction). Raises `RequestValidationError`
    (422) for invalid settings, `HTTPException` 409 for a clash with what is saved."""
    try:
        if replacing is None or replacing == config.name:
            service.save_config(config)
        else:
            others = [c for c in service.store.configs() if c.name != replacing]
            service.replace_configs([*others, config])
    except ValueError as refused:
        raise invalid([("", str(refused))]) from None
    except ConfigConflict as refused:
        raise HTTPException(409, str(refused)) from None


@router.get("/configurations", tags=["configurations"])
def list_configurations(principal: Manager, service: Service) -> list[SavedConfiguration]:
    return [saved(service, config) for config in service.store.configs()]


@router.post(
    "/configurations",
    status_code=201,
    tags=["configurations"],
    responses={
        **WITH_BODY,
        **answers(
            409,
            e409="A configuration has this name already, or a rep or profile is in another "
            "configuration (of this org, or active in another org).",
        ),
    },
)
def create_configuration(
    body: Configuration, request: Request, principal: Manager, service: Service
) -> SavedConfiguration:
    _csrf(request, principal)
    if service.store.config(body.name) is not None:
        raise HTTPException(409, f"a configuration named {body.name!r} exists already")
    check_name(body.name)
    config = to_config(service, body)
    save_config(service, config)
    return saved(service, config)


def _existing(service: SyncService, name: str) -> SyncConfig:
    config = service.store.config(name)
    if config is None:
        raise HTTPException(404, f"no configuration named {name!r}")
    return config


@router.get(
    "/configurations/{name:path}", tags=["configurations"], responses=answers(404, **NOT_FOUND)
)
def get_configuration(name: str, principal: Manager, service: Service) -> SavedConfiguration:
    return saved(service, _existing(service, name))


@router.put(
    "/configurations/{name:path}",
    tags=["configurations"],
    responses={
        **WITH_BODY,
        **answers(
            404,
            409,
            **NOT_FOUND,
            e409="Renamed to a name in use, or a rep or profile "
            "is in another configuration (of this org, or active in another org).",
        ),
    },
)
def put_configuration(
    name: str, body: Configuration, request: Request, principal: Manager, service: Service
) -> SavedConfiguration:
    """Replace a configuration (renaming it when ``body.name`` differs)."""
    _csrf(request, principal)
    _existing(service, name)
    if body.name != name and service.store.config(body.name) is not None:
        raise HTTPException(409, f"a configuration named {body.name!r} exists already")
    check_name(body.name, replacing=name)
    config = to_config(service, body)
    save_config(service, config, replacing=name)
    return saved(service, config)


@router.delete(
    "/configurations/{name:path}",
    status_code=204,
    tags=["configurations"],
    responses=answers(404, **NOT_FOUND),
)
def delete_configuration(
    name: str, request: Request, principal: Manager, service: Service
) -> Response:
    """Its reps stop syncing; nothing is deleted on either side."""
    _csrf(request, principal)
    if not service.store.delete_config(name):
        raise HTTPException(404, f"no configuration named {name!r}")
    return Response(status_code=204)


@router.post(
    "/configurations/{name:path}/preview",
    tags=["configurations"],
    responses=answers(
        404, e404="No configuration has this name, or no CRM user has the email given as rep."
    ),
    response_model=list[RepPreviewAnswer],
)
def preview_configuration(
    name: str,
    request: Request,
    principal: Manager,
    _: OneValueEach,
    service: Service,
    rep: Annotated[str | None, Query(max_length=320)] = None,
) -> list[dict[str, Any]]:
    """What the next cycle would do for each assigned rep (or ``rep``) under this
    configuration, active or not; writes nothing."""
    _csrf(request, principal)
    config = _existing(service, name)
    return [views.preview(service.preview_rep(u, config)) for u in reps_of(service, config, rep)]


def reps_of(service: SyncService, config: SyncConfig, rep: str | None) -> list[User]:
    if rep:
        return [_rep(service, rep)]
    return [
        u
        for u in service.reps()
        if u.id in config.user_ids
        or (u.profile_id is not None and u.profile_id in config.profile_ids)
    ]


# ---- statuses -------------------------------------------------------------------------------


# The CRM section's Salesforce fields are left out for the built-in CRM.
@router.get(
    "/status", tags=["statuses"], response_model=OrgStatus, response_model_exclude_unset=True
)
def org_status(principal: Manager, service: Service) -> dict[str, Any]:
    """The org's setup and activity (the spec's Tables 1-3), and records synced per hour."""
    return views.org_status(service, service.clock())


@router.get("/reps", tags=["statuses"], response_model=list[RepSummary])
def list_reps(principal: Manager, service: Service) -> list[dict[str, Any]]:
    """Every active CRM user's line of the reps list: statuses, what needs attention
    (held deletions, failing items, a pause, a refused sign-in, an overdue cycle) and
    error counts, as the console's reps list shows them."""
    return views.rep_lines(service, service.reps(), service.clock())


def _rep(service: SyncService, email: str) -> User:
    user = service.crm.get_user_by_email(email)
    if user is None:
        raise HTTPException(404, f"no CRM user has the email {email}")
    return user


REP_NOT_FOUND = answers(404, e404="No CRM user has this email.")


@router.get("/reps/{email}", tags=["statuses"], responses=REP_NOT_FOUND, response_model=RepStatus)
def get_rep(email: str, principal: Manager, service: Service) -> dict[str, Any]:
    """One rep's statuses (the spec's Tables 4-6) and recent audit trail."""
    return views.rep_status(service, _rep(service, email))


@router.post(
    "/reps/{email}/reset",
    status_code=202,
    tags=["statuses"],
    responses=REP_NOT_FOUND,
    response_model=RepSummary,
)
def reset_rep(email: str, request: Request, principal: Manager, service: Service) -> dict[str, Any]:
    """Mark the rep for reset: the next cycle re-pairs its items, changing no record."""
    _csrf(request, principal)
    user = _rep(service, email)
    service.mark_for_reset(user)
    return views.rep_summary(service, user)


@router.post(
    "/reps/{email}/confirm-deletes",
    status_code=202,
    tags=["statuses"],
    responses=REP_NOT_FOUND,
    response_model=RepSummary,
)
def confirm_deletes(
    email: str, request: Request, principal: Manager, service: Service
) -> dict[str, Any]:
    """Let the rep's next cycle carry out the deletions the mass-delete guard held back."""
    _csrf(request, principal)
    user = _rep(service, email)
    service.confirm_deletes(user)
    return views.rep_summary(service, user)


# ---- error report ---------------------------------------------------------------------------


def error_rows(service: SyncService, filters: ErrorFilters) -> list[dict[str, Any]]:
    """The page of the error report the filters ask for."""
    return list(
        views.error_rows(
            service, **export_filters(filters), limit=filters.limit, offset=filters.offset
        )
    )


def export_filters(filters: ErrorExportFilters) -> dict[str, Any]:
    """The filters as `views.error_rows` takes them (a time without a zone is UTC)."""
    since = filters.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    values = {name: getattr(filters, name) for name in ErrorExportFilters.model_fields}
    return values | {"since": since}


@router.get(
    "/errors",
    tags=["error report"],
    response_model=list[ErrorRow],
)
def errors(
    principal: ErrorReader,
    _: OneValueEach,
    service: Service,
    filters: Annotated[ErrorFilters, Query()],
) -> list[dict[str, Any]]:
    """Every sync error with rep, kind, item, operation, time, message and a suggestion."""
    return error_rows(service, filters)


@router.get(
    "/errors.csv",
    tags=["error report"],
    response_class=StreamingResponse,
)
def errors_csv(
    principal: ErrorReader,
    _: OneValueEach,
    service: Service,
    filters: Annotated[ErrorExportFilters, Query()],
) -> StreamingResponse:
    """Every row matching the filters, however many, as CSV (streamed as it is read)."""
    rows = views.error_rows(service, **export_filters(filters))
    return csv_download(views.csv_lines(rows))


def csv_download(lines: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="crmsync-errors.csv"'},
    )
