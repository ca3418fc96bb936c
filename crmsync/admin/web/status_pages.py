"""The status pages: the org's statuses with the reps list (searched, paged), and one
rep's page (statuses, what needs attention, activity paged, reset and confirming held
deletions).

The reps list reads every status, configuration and error count in a few queries, not
per rep: an org of thousands of reps renders in one page view (bench/console_status.py).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from crmsync.admin.web import rep_sign_in, views
from crmsync.admin.web.deps import check_csrf
from crmsync.admin.web.item_names import ItemNames
from crmsync.admin.web.rendering import Csrf, Manager, Service, back, not_found, paging, render
from crmsync.domain.records import User
from crmsync.store import RepStatus

router = APIRouter(include_in_schema=False)
REPS_PER_PAGE = 50
ACTIVITY_PER_PAGE = 50


def _page_of(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() else 1


def last_successful_cycle(statuses: dict[str, RepStatus], reps: list[User]) -> str | None:
    """When a rep's cycle last finished without an error: a quiet org's last record
    written may be days old while every cycle succeeds."""
    finished = [
        s.last_cycle_finished
        for u in reps
        if (s := statuses.get(u.id)) and s.last_cycle_finished and not s.last_error
    ]
    return views.iso(max(finished)) if finished else None


def matching(reps: list[User], search: str) -> list[User]:
    words = search.strip().casefold()
    if not words:
        return reps
    return [u for u in reps if words in u.email.casefold() or words in u.name.casefold()]


@router.get("/status")
def status_page(request: Request, principal: Manager, service: Service) -> HTMLResponse:
    now = service.clock()
    search = request.query_params.get("q", "")[:320]
    reps = sorted(views.reps_shown(service), key=lambda u: (u.name or u.email).casefold())
    found = matching(reps, search)
    where = paging(_page_of(request), REPS_PER_PAGE, len(found))
    shown = found[where["offset"] : where["offset"] + REPS_PER_PAGE]
    statuses = {s.rep_id: s for s in service.store.rep_statuses()}
    return render(
        request,
        "status.html",
        principal,
        org=views.org_status(service, now, reps),
        last_successful_cycle=last_successful_cycle(statuses, reps),
        reps=views.rep_lines(service, shown, now, statuses),
        search=search,
        paging=where,
        page_link=lambda page: "/status?" + urlencode({"q": search, "page": page}),
        ago=lambda value: views.ago(value, now),
    )


@router.get("/status/{email}")
def rep_page(email: str, request: Request, principal: Manager, service: Service) -> HTMLResponse:
    user = service.crm.get_user_by_email(email)
    if user is None:
        return not_found(request, principal, f"No CRM user has the email {email}.")
    now = service.clock()
    store = service.store
    status = store.rep_status(user.id)
    # The rep's login is read once, for the attention line and the sign-in form.
    sign_in = views.sign_in_shown(service, user.email)
    (row,) = views.rep_lines(service, [user], now, {user.id: status}, views.refused_of(sign_in))
    where = paging(_page_of(request), ACTIVITY_PER_PAGE, store.count_rep_history(user.id))
    names = ItemNames(service.crm)
    activity = [
        {
            "at": views.iso(entry.at),
            "kind": entry.kind.value,
            "action": entry.action,
            "target": entry.target.value if entry.target else None,
            "item": names.of(entry.kind, entry.crm_id, entry.mail_id),
            "rule": entry.rule,
            "error": entry.error,
        }
        for entry in store.rep_history(user.id, ACTIVITY_PER_PAGE, where["offset"])
    ]
    return render(
        request,
        "rep.html",
        principal,
        rep=row,
        checks={name: getattr(status, name) for name in views.CHECK_LABELS},
        check_labels=views.CHECK_LABELS,
        flow_labels=views.FLOW_LABELS,
        activity=activity,
        paging=where,
        page_link=lambda page: f"/status/{quote(user.email)}?page={page}#activity",
        ago=lambda value: views.ago(value, now),
        marked=request.query_params.get("marked"),
        confirmed=request.query_params.get("confirmed"),
        signed_in=request.query_params.get("signed_in"),
        **rep_sign_in.sign_in_context(sign_in),
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


@router.post("/status/{email}/confirm-deletes")
def confirm_deletes(
    email: str, request: Request, principal: Manager, service: Service, csrf_token: Csrf
) -> Response:
    """Let the rep's next cycle carry out the deletions the mass-delete guard held back."""
    check_csrf(principal, csrf_token)
    user = service.crm.get_user_by_email(email)
    if user is None:
        return not_found(request, principal, f"No CRM user has the email {email}.")
    service.confirm_deletes(user)
    return back(f"/status/{quote(email)}", confirmed="1")
