"""The org's CRM section on the Setup page and in the API (``/api/v1/setup/crm``).

Both save through `save_crm_setup`, so the same rules (`crm_validation`) refuse the same
setups as `crmsync setup salesforce` and `config apply`. The private key or consumer
secret is write-only: stored encrypted, answered only as ``secret_stored``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError

from crmsync.admin.crm_validation import crm_settings_problems
from crmsync.admin.web.api import setup_out
from crmsync.admin.web.deps import check_csrf, get_service, require
from crmsync.admin.web.schemas import SIGNED_IN, WITH_BODY, invalid
from crmsync.admin.web.security import ERROR_REPORT, MANAGE, Principal
from crmsync.domain.crm_settings import (
    SALESFORCE_API_VERSION,
    SALESFORCE_MARKER_FIELD,
    CrmKind,
    CrmSettings,
    SalesforceFlow,
)
from crmsync.domain.settings import ConnectionMethod
from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.runner import SyncService

api_router = APIRouter(prefix="/api/v1", responses=SIGNED_IN)
page_router = APIRouter(include_in_schema=False)
Manager = Annotated[Principal, Depends(require(MANAGE))]
Service = Annotated[SyncService, Depends(get_service)]


class CrmSetup(BaseModel):
    """Which CRM the org syncs. ``builtin`` needs nothing else. ``salesforce`` needs the
    ``my_domain_url`` (https://; http:// only for 127.0.0.1), an ``api_version`` such as
    62.0, the app's ``client_id``, for ``jwt_bearer`` the integration user's ``username``,
    and a ``secret`` (the certificate's PEM private key, or the consumer secret for
    ``client_credentials``) unless one is stored."""

    kind: CrmKind = CrmKind.BUILTIN
    my_domain_url: str = Field("", max_length=500)
    api_version: str = Field(SALESFORCE_API_VERSION, max_length=10)
    flow: SalesforceFlow = SalesforceFlow.JWT_BEARER
    client_id: str = Field("", max_length=500)
    username: str = Field("", max_length=320)
    sandbox: bool = Field(False, strict=True)
    marker_field: str = Field(SALESFORCE_MARKER_FIELD, max_length=43)


class CrmSetupIn(CrmSetup):
    secret: str | None = Field(
        None,
        max_length=20_000,
        description="The certificate's PEM private key (JWT bearer) or the app's consumer "
        "secret (client credentials); omit to keep the stored one.",
    )


class CrmSetupOut(CrmSetup):
    secret_stored: bool


def crm_setup_out(service: SyncService) -> CrmSetupOut:
    settings = service.crm_settings()
    return CrmSetupOut(
        kind=settings.kind,
        my_domain_url=settings.my_domain_url,
        api_version=settings.api_version,
        flow=settings.flow,
        client_id=settings.client_id,
        username=settings.username,
        sandbox=settings.sandbox,
        marker_field=settings.marker_field,
        secret_stored=service.store.get_secret(SALESFORCE_SECRET) is not None,
    )


def save_crm_setup(service: SyncService, body: CrmSetupIn) -> None:
    """Save ``body`` if the rules allow it; raises `RequestValidationError` (a 422)
    listing every problem otherwise. The CRM is reopened at its next use."""
    settings = CrmSettings(
        kind=body.kind,
        my_domain_url=body.my_domain_url.strip().rstrip("/"),
        api_version=body.api_version.strip(),
        flow=body.flow,
        client_id=body.client_id.strip(),
        username=body.username.strip(),
        sandbox=body.sandbox,
        marker_field=body.marker_field.strip(),
    )
    secret = body.secret or None
    stored = service.store.get_secret(SALESFORCE_SECRET) is not None
    problems = crm_settings_problems(settings, secret=secret, secret_stored=stored)
    if problems:
        raise invalid(problems)
    service.configure_crm(settings, secret)


def crm_context(service: SyncService) -> dict[str, Any]:
    """What the Setup page's CRM section shows."""
    return {"crm": crm_setup_out(service), "crm_errors": [], "crm_saved": False}


@api_router.get("/setup/crm", tags=["setup"])
def get_crm_setup(principal: Manager, service: Service) -> CrmSetupOut:
    return crm_setup_out(service)


@api_router.put("/setup/crm", tags=["setup"], responses=WITH_BODY)
def put_crm_setup(
    body: CrmSetupIn, request: Request, principal: Manager, service: Service
) -> CrmSetupOut:
    """Save the CRM section; the secret is stored encrypted and never returned. A 422
    lists every problem and saves nothing."""
    check_csrf(principal, request.headers.get("x-csrf-token"))
    save_crm_setup(service, body)
    return crm_setup_out(service)


@page_router.post("/setup/crm")
def save_crm_setup_page(
    request: Request,
    principal: Manager,
    service: Service,
    csrf_token: Annotated[str, Form()],
    kind: Annotated[CrmKind, Form()],
    my_domain_url: Annotated[str, Form(max_length=500)] = "",
    api_version: Annotated[str, Form(max_length=10)] = SALESFORCE_API_VERSION,
    flow: Annotated[SalesforceFlow, Form()] = SalesforceFlow.JWT_BEARER,
    client_id: Annotated[str, Form(max_length=500)] = "",
    username: Annotated[str, Form(max_length=320)] = "",
    sandbox: Annotated[bool, Form()] = False,
    marker_field: Annotated[str, Form(max_length=43)] = SALESFORCE_MARKER_FIELD,
    secret: Annotated[str, Form(max_length=20_000)] = "",
) -> HTMLResponse:
    check_csrf(principal, csrf_token)
    entered: dict[str, Any] = {
        "kind": kind,
        "my_domain_url": my_domain_url,
        "api_version": api_version,
        "flow": flow,
        "client_id": client_id,
        "username": username,
        "sandbox": sandbox,
        "marker_field": marker_field,
    }
    context = crm_context(service)
    try:
        save_crm_setup(service, CrmSetupIn(**entered, secret=secret or None))
    except (ValidationError, RequestValidationError) as refused:
        # What the admin typed, to correct (never the secret: it is not sent back).
        stored = context["crm"].secret_stored
        context = {
            "crm": CrmSetupOut.model_construct(**entered, secret_stored=stored),
            "crm_errors": _messages(refused),
            "crm_saved": False,
        }
        return _setup_page(request, principal, service, 422, context)
    context = {**crm_context(service), "crm_saved": True}
    return _setup_page(request, principal, service, 200, context)


def _setup_page(
    request: Request,
    principal: Principal,
    service: SyncService,
    status_code: int,
    crm: dict[str, Any],
) -> HTMLResponse:
    """The Setup page after a CRM-section post: the mail section as saved."""
    return request.app.state.templates.TemplateResponse(
        request,
        "setup.html",
        {
            "principal": principal,
            "MANAGE": MANAGE,
            "ERROR_REPORT": ERROR_REPORT,
            "setup": setup_out(service),
            "methods": list(ConnectionMethod),
            "saved": None,
            "account_check": None,
            **crm,
        },
        status_code=status_code,
    )


def _messages(refused: ValidationError | RequestValidationError) -> list[str]:
    found = []
    for error in refused.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        found.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return found
