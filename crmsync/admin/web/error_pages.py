"""The error report page: filtered, sorted, paged ("201-400 of 2,143"), with totals by
rep and by error type and items by name; its CSV export holds every matching row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from crmsync.admin.web import api, views
from crmsync.admin.web.deps import OneValueEach
from crmsync.admin.web.item_names import ItemNames
from crmsync.admin.web.rendering import ErrorReader, Service, messages, paging, render
from crmsync.admin.web.schemas import ErrorFilters
from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType
from crmsync.service.runner import SyncService
from crmsync.store import ErrorSort

router = APIRouter(include_in_schema=False)
ROWS_PER_PAGE = 200
CSV_COLUMNS = (*views.ERROR_COLUMNS, "item_name")
# Rows named with one cache of item names: the chunk `StateStore.each_error` reads at once.
NAMES_KEPT = 500


def _filters(request: Request) -> tuple[ErrorFilters, list[str]]:
    params = {k: v for k, v in request.query_params.items() if v != "" and k != "page"}
    try:
        return ErrorFilters(**params), []
    except ValidationError as invalid:
        return ErrorFilters(), messages(invalid)


def _each_named(service: SyncService, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    names = ItemNames(service.crm)
    for n, row in enumerate(rows):
        if n and n % NAMES_KEPT == 0:
            names = ItemNames(service.crm)  # an export of any size keeps a chunk's names
        kind = ItemKind(row["kind"]) if row["kind"] else None
        yield {**row, "item_name": names.of(kind, row["item"])}


@router.get("/errors")
def errors_page(request: Request, principal: ErrorReader, service: Service) -> HTMLResponse:
    filters, problems = _filters(request)
    users = service.crm.list_users()
    emails = {u.id: u.email for u in users}
    rep = service.crm.get_user_by_email(filters.rep) if filters.rep else None
    total, by_rep, by_type = 0, {}, {}
    if rep is not None or not filters.rep:
        since = filters.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        total, by_rep, by_type = service.store.error_totals(
            rep_id=rep.id if rep else None,
            kind=filters.kind,
            error_type=filters.error_type,
            since=since,
        )
    text = request.query_params.get("page", "1")
    where = paging(int(text) if text.isdigit() else 1, ROWS_PER_PAGE, total)
    shown = filters.model_copy(update={"limit": ROWS_PER_PAGE, "offset": where["offset"]})
    query = {k: v for k, v in request.query_params.items() if v and k != "page"}
    return render(
        request,
        "errors.html",
        principal,
        rows=list(_each_named(service, api.error_rows(service, shown))) if total else [],
        filters=filters,
        problems=problems,
        paging=where,
        page_link=lambda page: "/errors?" + urlencode({**query, "page": page}),
        filter_link=lambda **change: "/errors?" + urlencode({**query, **change}),
        by_rep=sorted(
            ((emails.get(rep_id, rep_id), count) for rep_id, count in by_rep.items()),
            key=lambda pair: (-pair[1], pair[0]),
        ),
        by_type=sorted(by_type.items(), key=lambda pair: -pair[1]),
        kinds=list(ItemKind),
        error_types=list(ErrorType),
        sorts=list(ErrorSort),
        reps=sorted(u.email for u in users),
        csv_query=urlencode(query),
    )


@router.get("/errors.csv")
def errors_csv(
    request: Request, principal: ErrorReader, _: OneValueEach, service: Service
) -> Response:
    """Every row matching the filters, however many (not only a page's), streamed."""
    filters, _ = _filters(request)
    rows = views.error_rows(service, **api.export_filters(filters))
    return api.csv_download(views.csv_lines(_each_named(service, rows), CSV_COLUMNS))
