"""A rep's own login and app password for per-rep sign-in (DAV): the rep's page form and
``/api/v1/reps/{email}/sign-in``.

The password is write-only: stored encrypted, answered only as ``password_stored``, and
never put back into a form. Saving a new one ends the rep's "needs attention" state and
makes the rep due at once.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from crmsync.admin.web.deps import check_csrf, get_service, require
from crmsync.admin.web.schemas import SIGNED_IN, WITH_BODY, answers
from crmsync.admin.web.security import MANAGE, Principal
from crmsync.service.rep_sign_in import RepSignIn
from crmsync.service.runner import SyncService

api_router = APIRouter(prefix="/api/v1", responses=SIGNED_IN)
page_router = APIRouter(include_in_schema=False)
Manager = Annotated[Principal, Depends(require(MANAGE))]
Service = Annotated[SyncService, Depends(get_service)]
REP_NOT_FOUND = answers(404, e404="No CRM user has this email.")


class RepSignInIn(BaseModel):
    """The rep's user name on the DAV server and an app password (or token)."""

    login: str = Field(min_length=1, max_length=500)
    password: str = Field(min_length=1, max_length=20_000)


class RepSignInOut(BaseModel):
    email: str
    login: str | None
    password_stored: bool
    needs_attention: bool
    refused_at: str | None
    refused_because: str


def _known_rep(service: SyncService, email: str) -> None:
    if service.crm.get_user_by_email(email) is None:
        raise HTTPException(404, f"no CRM user has the email {email}")


def sign_in_out(sign_in: RepSignIn) -> RepSignInOut:
    return RepSignInOut(**sign_in.as_dict())


@api_router.get("/reps/{email}/sign-in", tags=["statuses"], responses=REP_NOT_FOUND)
def get_rep_sign_in(email: str, principal: Manager, service: Service) -> RepSignInOut:
    """The rep's stored login and whether the server refused it; never the password."""
    _known_rep(service, email)
    return sign_in_out(service.rep_sign_in(email))


@api_router.put(
    "/reps/{email}/sign-in", tags=["statuses"], responses={**REP_NOT_FOUND, **WITH_BODY}
)
def put_rep_sign_in(
    email: str, body: RepSignInIn, request: Request, principal: Manager, service: Service
) -> RepSignInOut:
    """Store the rep's login and app password (encrypted) for per-rep sign-in."""
    check_csrf(principal, request.headers.get("x-csrf-token"))
    _known_rep(service, email)
    service.set_rep_sign_in(email, body.login.strip(), body.password)
    return sign_in_out(service.rep_sign_in(email))


@api_router.delete(
    "/reps/{email}/sign-in", status_code=204, tags=["statuses"], responses=REP_NOT_FOUND
)
def delete_rep_sign_in(
    email: str, request: Request, principal: Manager, service: Service
) -> Response:
    check_csrf(principal, request.headers.get("x-csrf-token"))
    _known_rep(service, email)
    service.store.delete_rep_credentials(email)
    return Response(status_code=204)


@page_router.post("/status/{email}/sign-in")
def save_rep_sign_in_page(
    email: str,
    principal: Manager,
    service: Service,
    csrf_token: Annotated[str, Form()],
    login: Annotated[str, Form(min_length=1, max_length=500)],
    password: Annotated[str, Form(min_length=1, max_length=20_000)],
) -> Response:
    check_csrf(principal, csrf_token)
    _known_rep(service, email)
    service.set_rep_sign_in(email, login.strip(), password)
    return RedirectResponse(f"/status/{quote(email)}?signed_in=1", status_code=303)


def sign_in_context(sign_in: RepSignIn | None) -> dict[str, Any]:
    """What the rep's page shows of the sign-in read by `views.sign_in_shown` (``None``
    unless the org signs in with each rep's own login)."""
    return {"sign_in": None if sign_in is None else sign_in_out(sign_in)}
