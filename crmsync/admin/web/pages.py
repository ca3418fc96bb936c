"""The console's pages: server-rendered HTML forms that work without JavaScript.

Every page checks the permissions of the spec (see `security`); every form posts the
session's CSRF token; every change redirects (POST → 303 → GET) so a reload never
repeats it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from crmsync.admin.web import configuration_pages, error_pages, setup_page, status_pages, views
from crmsync.admin.web.deps import check_csrf, optional_principal
from crmsync.admin.web.rendering import (
    Csrf,
    Manager,
    Service,
    back,
    render,
)
from crmsync.admin.web.security import (
    ERROR_REPORT,
    MANAGE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    SignInRefused,
    sign_in,
)

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(setup_page.router)
router.include_router(configuration_pages.router)
router.include_router(status_pages.router)
router.include_router(error_pages.router)


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
