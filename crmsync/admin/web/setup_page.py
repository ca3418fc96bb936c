"""The Setup page's mail-server section (the CRM section is `crm_setup`).

Every org setting is on the page. A setting a post does not carry (a form from before
the setting existed, a script posting a few fields) keeps its saved value: a save never
resets what the page did not send.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from crmsync.admin.web import api, crm_setup, views
from crmsync.admin.web.deps import check_csrf
from crmsync.admin.web.rendering import Manager, Service, by_field, field_problems, render
from crmsync.admin.web.schemas import Setup, SetupIn, SetupOut
from crmsync.admin.web.security import Principal
from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.service.runner import SyncService

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    principal: Principal,
    service: SyncService,
    setup: SetupOut,
    *,
    status_code: int = 200,
    problems: list[tuple[str, str]] | None = None,
    saved: bool = False,
    account_check: dict[str, Any] | None = None,
) -> HTMLResponse:
    grouped = by_field(problems or [])
    return render(
        request,
        "setup.html",
        principal,
        status_code=status_code,
        setup=setup,
        methods=list(ConnectionMethod),
        errors=[f"{f}: {p}" if f else p for f, p in problems or []],
        field_errors=grouped,
        saved=saved,
        account_check=account_check,
        **crm_setup.crm_context(service),
    )


@router.get("/setup")
def setup_page(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    return _page(request, principal, service, api.setup_out(service))


def entered_setup(saved: OrgSettings, form: FormData) -> dict[str, Any]:
    """The settings the form sent, over the saved ones for every setting it did not send.

    A checkbox posts a hidden ``false`` before the box's ``true`` (the last value wins), so
    an unticked box is sent too. Whole numbers stay text when they are not numbers, for
    the model to refuse them by name.
    """
    values: dict[str, Any] = {
        name: getattr(saved, name) for name in Setup.model_fields if hasattr(saved, name)
    }
    values["additional_domains"] = list(saved.additional_domains)
    for name, field in Setup.model_fields.items():
        if name not in form:
            continue
        text = str(form.get(name, ""))
        if field.annotation is bool:
            values[name] = text.lower() in ("true", "on", "1")
        elif field.annotation is int:
            values[name] = int(text) if text.strip().lstrip("-").isdigit() else text
        elif name == "additional_domains":
            values[name] = [d.strip() for d in text.replace("\n", ",").split(",") if d.strip()]
        else:
            values[name] = text.strip()
    if not values.get("principal_path"):
        values["principal_path"] = "/{email}/"
    return values


@router.post("/setup")
async def save_setup(request: Request, principal: Manager, service: Service) -> Response:
    """Save through the API's code path, so the same rules refuse the same setups."""
    form = await request.form()
    check_csrf(principal, str(form.get("csrf_token", "")))
    entered = entered_setup(service.org_settings(), form)
    # Google's key comes in its own box (a JSON file, pasted); the others' in "password".
    password = str(form.get("google_key", "")).strip() or str(form.get("password", "")) or None
    try:
        api.save_setup(service, SetupIn(**entered, password=password))
    except (ValidationError, RequestValidationError) as invalid:
        # What the admin typed, to correct (never the password: it is not sent back).
        stored = service.store.get_secret(SERVICE_PASSWORD) is not None
        return _page(
            request,
            principal,
            service,
            SetupOut.model_construct(**entered, password_stored=stored),
            status_code=422,
            problems=field_problems(invalid),
        )
    check = views.service_account_check(service)
    return _page(
        request, principal, service, api.setup_out(service), saved=True, account_check=check
    )
