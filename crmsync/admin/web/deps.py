"""Request dependencies shared by the pages and the API: the service, who asks, and the
permission and CSRF checks every route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from crmsync.admin.web.security import SESSION_COOKIE, Permission, Principal, principal_from
from crmsync.service.runner import SyncService


class NotSignedIn(Exception):
    """No valid session or token; pages redirect to the sign-in form, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but without the permissions the route needs."""

    def __init__(self, principal: Principal, needed: frozenset[Permission]) -> None:
        super().__init__(", ".join(sorted(needed)))
        self.principal = principal
        self.needed = needed


def get_service(request: Request) -> SyncService:
    return request.app.state.service


def optional_principal(request: Request) -> Principal | None:
    return principal_from(
        get_service(request).store,
        request.cookies.get(SESSION_COOKIE),
        request.headers.get("authorization"),
    )


def signed_in(request: Request) -> bool:
    """The request carries a valid session cookie or API token (it reads the store)."""
    return optional_principal(request) is not None


def not_signed_in_response(request: Request) -> Response:
    """The answer to a caller without a valid session or token: the API says 401, a page
    sends the browser to the sign-in form."""
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"detail": "Sign in, or send an API token as 'Authorization: Bearer TOKEN'."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)


# How a caller signs in, as the OpenAPI document declares it (either one). They only
# declare: `principal_from` reads the header and the cookie itself.
API_TOKEN = HTTPBearer(
    scheme_name="apiToken",
    description="An API token made with `crmsync admin token USERNAME NAME`.",
    auto_error=False,
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="consoleSession",
    description="The console's session cookie; a change also sends the session's CSRF "
    "token as the X-CSRF-Token header.",
    auto_error=False,
)


def require(needed: frozenset[Permission]) -> Callable[..., Principal]:
    """A dependency: the signed-in principal, if it holds every permission in ``needed``."""

    def check(
        request: Request,
        token: Annotated[HTTPAuthorizationCredentials | None, Security(API_TOKEN)],
        session: Annotated[str | None, Security(SESSION)],
    ) -> Principal:
        del token, session  # declared for the API document; read by principal_from
        principal = optional_principal(request)
        if principal is None:
            raise NotSignedIn()
        if not principal.may(needed):
            raise Forbidden(principal, needed)
        return principal

    return check


def check_csrf(principal: Principal, token: str | None) -> None:
    """Refuse (403) a form, or a cookie-authenticated API change, without the session's
    CSRF token."""
    if not principal.csrf_ok(token):
        raise HTTPException(
            403,
            "The CSRF token is missing or wrong: reload the page and try again (API "
            "clients on a session cookie send it as X-CSRF-Token).",
        )


def one_value_each(request: Request) -> None:
    """Refuse (422) a query parameter given twice: every one the API declares takes one
    value, and keeping only the last (as the framework would) hides a client's mistake,
    e.g. an export filtered on one rep of the two it named. Declared as a route's
    parameter after its principal (`OneValueEach`), so a caller not signed in gets 401."""
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise RequestValidationError(
            [
                {
                    "loc": ["query", key],
                    "msg": f"give {key} once: it takes one value",
                    "type": "repeated_parameter",
                }
                for key in repeated
            ]
        )


OneValueEach = Annotated[None, Depends(one_value_each)]
