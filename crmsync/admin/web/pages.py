"""The console's pages: server-rendered HTML forms that work without JavaScript.

Every page checks the permissions of the spec (see `security`); every form posts the
session's CSRF token; every change redirects (POST → 303 → GET) so a reload never
repeats it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from crmsync.admin.web import api, configuration_pages, setup_page, status_pages, views
from crmsync.admin.web.deps import check_csrf, optional_principal
from crmsync.admin.web.rendering import (
    Csrf,
    ErrorReader,
    Manager,
    Service,
    back,
    messages,
    render,
)
from crmsync.admin.web.schemas import ErrorFilters
from crmsync.admin.web.security import (
    ERROR_REPORT,
    MANAGE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    SignInRefused,
    sign_in,
)
from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType
from crmsync.store import ErrorSort

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(setup_page.router)
router.include_router(configuration_pages.router)
router.include_router(status_pages.router)


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
def connection_test_page(request: Request, principal: Manager, email: str = "") -> HTMLResponse:
    """The form, filled in with ``email`` when a rep's page links here."""
    return render(request, "connection_test.html", principal, result=None, email=email[:320])


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
