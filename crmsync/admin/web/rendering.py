"""What every console page shares: rendering a template for the signed-in admin, the
POST → 303 → GET answer, and the route dependencies of the pages."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from crmsync.admin.web.deps import get_service, require
from crmsync.admin.web.security import ERROR_REPORT, MANAGE, Principal
from crmsync.service.runner import SyncService

Manager = Annotated[Principal, Depends(require(MANAGE))]
ErrorReader = Annotated[Principal, Depends(require(ERROR_REPORT))]
Service = Annotated[SyncService, Depends(get_service)]
Csrf = Annotated[str, Form()]


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request,
        template,
        {"principal": principal, "MANAGE": MANAGE, "ERROR_REPORT": ERROR_REPORT, **context},
        status_code=status_code,
    )


def not_found(request: Request, principal: Principal, message: str) -> HTMLResponse:
    return render(
        request, "message.html", principal, status_code=404, title="Not found", message=message
    )


def back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(path + (f"?{urlencode(query)}" if query else ""), status_code=303)


def messages(invalid: ValidationError | RequestValidationError) -> list[str]:
    """One line per problem, named after the field (without the API's "body" prefix)."""
    return [
        f"{field}: {problem}" if field else problem for field, problem in field_problems(invalid)
    ]


def field_problems(invalid: ValidationError | RequestValidationError) -> list[tuple[str, str]]:
    """(field, problem) per problem; the field is empty for the form as a whole."""
    found = []
    for error in invalid.errors():
        loc = [str(p) for p in error["loc"]]
        if isinstance(invalid, RequestValidationError) and loc[:1] == ["body"]:
            loc = loc[1:]
        found.append((".".join(loc), str(error["msg"])))
    return found


def by_field(problems: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Problems grouped by field, to show each beside its field ("" for the whole form)."""
    grouped: dict[str, list[str]] = {}
    for field, problem in problems:
        grouped.setdefault(field, []).append(problem)
    return grouped


def paging(page: int, per_page: int, total: int) -> dict[str, Any]:
    """Where a page is in a list: "51-100 of 2,000", and how many pages."""
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    first = (page - 1) * per_page
    return {
        "page": page,
        "pages": pages,
        "offset": first,
        "total": total,
        "first": first + 1 if total else 0,
        "last": min(first + per_page, total),
    }
