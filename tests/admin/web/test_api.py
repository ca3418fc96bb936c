"""The REST API: configurations, statuses, reset, error report; sign-in and CSRF rules."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import quote

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.domain.sync import ErrorEntry, ErrorType
from crmsync.service.mailboxes import SERVICE_PASSWORD
from crmsync.store import ResetStatus
from tests.admin.web.conftest import PASSWORD, Console


def seed_reps(console: Console) -> tuple[str, str]:
    crm = console.service.crm
    sales = crm.create_profile("Sales")
    ann = crm.create_user("ann@example.com", "Ann", profile_id=sales.id)
    crm.create_user("bob@example.com", "Bob")
    return ann.id, sales.id


def test_configurations_round_trip_with_validation_and_conflicts(console: Console) -> None:
    seed_reps(console)
    auth = console.bearer("manager")
    body = {
        "name": "Sales",
        "profiles": ["Sales"],
        "contacts": {"filters": [{"field": "email", "operator": "is_not_empty"}]},
        "events": {"window": "last_n_days", "window_days": 60},
    }
    created = console.client.post("/api/v1/configurations", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["profiles"] == ["Sales"] and created.json()["warnings"] == []
    again = console.client.post("/api/v1/configurations", json=body, headers=auth)
    assert again.status_code == 409

    # The same user in two configurations of the org: refused, nothing saved.
    clash = {"name": "Other", "users": ["ann@example.com"], "profiles": ["Sales"]}
    assert (
        console.client.post("/api/v1/configurations", json=clash, headers=auth).status_code == 409
    )
    bad_window = {"name": "Bad", "events": {"window_days": 500}}
    response = console.client.post("/api/v1/configurations", json=bad_window, headers=auth)
    assert response.status_code == 422 and "180" in response.text
    unknown_rep = {"name": "Ghost", "users": ["ghost@example.com"]}
    response = console.client.post("/api/v1/configurations", json=unknown_rep, headers=auth)
    assert response.status_code == 422 and "ghost@example.com" in response.text
    bad_mapping = {
        "name": "Map",
        "contacts": {"field_mappings": [{"mail_field": "email", "crm_field": "birthdate"}]},
    }
    response = console.client.post("/api/v1/configurations", json=bad_mapping, headers=auth)
    assert response.status_code == 422 and "cannot map" in response.text

    renamed = {**body, "name": "Sales EMEA", "active": False}
    put = console.client.put("/api/v1/configurations/Sales", json=renamed, headers=auth)
    assert put.status_code == 200 and put.json()["active"] is False
    listed = console.client.get("/api/v1/configurations", headers=auth).json()
    assert [c["name"] for c in listed] == ["Sales EMEA"]
    assert listed[0]["events"]["window_days"] == 60
    gone = console.client.delete("/api/v1/configurations/Sales EMEA", headers=auth)
    assert gone.status_code == 204
    assert console.client.get("/api/v1/configurations", headers=auth).json() == []


def test_statuses_reset_and_the_error_report(console: Console) -> None:
    ann_id, _ = seed_reps(console)
    store = console.service.store
    at = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    store.record_synced(ItemKind.CONTACT, 3)
    for n, kind in enumerate((ItemKind.CONTACT, ItemKind.EVENT, None)):
        store.record_error(
            ErrorEntry(
                ann_id,
                kind,
                f"item-{n}",
                "create",
                ErrorType.MALFORMED_ITEM,
                f"bad item {n}, with a comma",
                "Fix it.",
                at + dt.timedelta(hours=n),
            )
        )
    manager, reader = console.bearer("manager"), console.bearer("reader")
    status = console.client.get("/api/v1/status", headers=manager).json()
    assert status["contacts"]["synced_last_24_hours"] == 3
    assert len(status["events"]["hourly"]) == 24
    reps = console.client.get("/api/v1/reps", headers=manager).json()
    assert [r["email"] for r in reps] == ["ann@example.com", "bob@example.com"]
    assert reps[0]["flows"]["contact"]["crm_to_mail"] == "Not started"

    # A rep backing off is taken at once after an admin's reset.
    store.set_next_due(ann_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    reset = console.client.post("/api/v1/reps/ann@example.com/reset", headers=manager)
    due = store.rep_status(ann_id).next_due  # the reset's instant: due since then
    assert due is not None and due <= dt.datetime.now(dt.UTC)
    assert reset.status_code == 202 and reset.json()["reset_status"] == "Marked for reset"
    assert store.rep_status(ann_id).reset_status is ResetStatus.MARKED
    assert console.client.get("/api/v1/reps/nobody@example.com", headers=manager).status_code == 404

    rows = console.client.get("/api/v1/errors", headers=reader).json()
    assert [r["item"] for r in rows] == ["item-2", "item-1", "item-0"]
    events_only = console.client.get("/api/v1/errors?kind=event", headers=reader).json()
    assert [r["item"] for r in events_only] == ["item-1"]
    oldest_first = console.client.get("/api/v1/errors?descending=false", headers=reader).json()
    assert oldest_first[0]["item"] == "item-0"
    later = console.client.get("/api/v1/errors?since=2026-11-20T10:00:00Z", headers=reader).json()
    assert len(later) == 2
    assert console.client.get("/api/v1/errors?rep=bob@example.com", headers=reader).json() == []
    exported = console.client.get("/api/v1/errors.csv", headers=reader)
    assert exported.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(parsed) == 3 and parsed[0]["message"] == "bad item 2, with a comma"

    # A filter given twice is refused rather than cut to its last value.
    for path in ("/api/v1/errors", "/api/v1/errors.csv"):
        twice = console.client.get(
            f"{path}?rep=ann@example.com&rep=bob@example.com&kind=event", headers=reader
        )
        assert twice.status_code == 422, path
        assert [d["loc"] for d in twice.json()["detail"]] == [["query", "rep"]]
        # Asked without signing in, the caller learns that first.
        assert console.client.get(f"{path}?rep=a&rep=b").status_code == 401
    console.client.post("/api/v1/configurations", json={"name": "Sales"}, headers=manager)
    preview = console.client.post(
        "/api/v1/configurations/Sales/preview?rep=ann@example.com&rep=bob@example.com",
        headers=manager,
    )
    assert preview.status_code == 422
    assert [d["loc"] for d in preview.json()["detail"]] == [["query", "rep"]]


def test_cookie_sessions_need_the_csrf_token_for_changes(console: Console) -> None:
    seed_reps(console)
    csrf = console.sign_in("full")
    cookie = console.client.cookies.get("crmsync_session")
    assert cookie
    assert console.client.get("/api/v1/me").json()["username"] == "full"
    body = {"name": "Sales"}
    refused = console.client.post("/api/v1/configurations", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = console.client.post(
        "/api/v1/configurations", json=body, headers={"X-CSRF-Token": "guess"}
    )
    assert forged.status_code == 403
    accepted = console.client.post(
        "/api/v1/configurations", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 201
    # A page form without the token is refused too, and changes nothing.
    form = console.client.post(
        "/status/ann@example.com/reset", data={"csrf_token": "wrong"}, follow_redirects=False
    )
    assert form.status_code == 403
    assert (
        console.service.store.rep_status(
            console.service.crm.get_user_by_email("ann@example.com").id
        ).reset_status
        is None
    )


def test_sign_in_cookie_flags_throttling_and_sign_out(console: Console) -> None:
    response = console.client.post(
        "/login", data={"username": "full", "password": PASSWORD}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    console.client.cookies.clear()
    for _ in range(5):
        wrong = console.client.post("/login", data={"username": "full", "password": "nope" * 4})
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    locked = console.client.post("/login", data={"username": "full", "password": PASSWORD})
    assert locked.status_code == 429 and "Retry-After" in locked.headers

    unknown = console.client.post(
        "/login",
        data={"username": "nobody", "password": "x" * 20},
        headers={"X-Forwarded-For": "1.2.3.4"},
    )
    assert unknown.status_code in (401, 429)
    # Sign-out ends the session on the server, not only in the browser.
    console.service.store.clear_login_failures("ip:testclient")
    console.service.store.clear_login_failures("user:manager")
    csrf = console.sign_in("manager")
    token = console.client.cookies.get("crmsync_session")
    assert (
        console.client.post(
            "/logout", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert console.service.store.session(token) is None


def test_configuration_names_are_checked_and_stored_names_stay_reachable(
    console: Console,
) -> None:
    auth = console.bearer("manager")
    refused = console.client.post("/api/v1/configurations", json={"name": "a/b"}, headers=auth)
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["detail"]
    assert problem["loc"] == ["body", "name"] and "letters, digits, spaces" in problem["msg"]
    for name in ("new", " Sales", "Sales ", "x?y", "50%", "#1", "a\\b", "tab\there"):
        response = console.client.post("/api/v1/configurations", json={"name": name}, headers=auth)
        assert response.status_code == 422, name
    for name in ("Sales EMEA", "Vertrieb Österreich", "R&D (2027), v1.2 + ops", "O'Neil_team"):
        response = console.client.post("/api/v1/configurations", json={"name": name}, headers=auth)
        assert response.status_code == 201, (name, response.text)
        got = console.client.get(f"/api/v1/configurations/{quote(name, safe='')}", headers=auth)
        assert got.status_code == 200 and got.json()["name"] == name

    # A name saved before the rule (here straight into the store) can still be read,
    # previewed, edited, renamed and deleted.
    console.service.store.save_config(SyncConfig("a/b/preview", description="old"))
    url = "/api/v1/configurations/" + quote("a/b/preview", safe="")
    assert console.client.get(url, headers=auth).json()["description"] == "old"
    assert console.client.post(url + "/preview", headers=auth).status_code == 200
    kept = {"name": "a/b/preview", "description": "edited"}
    assert console.client.put(url, json=kept, headers=auth).status_code == 200
    bad_rename = console.client.put(url, json={"name": "c/d"}, headers=auth)
    assert bad_rename.status_code == 422
    renamed = console.client.put(url, json={"name": "a-b"}, headers=auth)
    assert renamed.status_code == 200 and renamed.json()["description"] == ""
    console.service.store.save_config(SyncConfig("x/y"))
    gone = console.client.delete("/api/v1/configurations/x%2Fy", headers=auth)
    assert gone.status_code == 204 and console.service.store.config("x/y") is None


# A DAV setup through a service account, without its password.
DAV_SETUP = {"server_url": "https://dav.example.com/", "service_account": "crmsync"}


def test_setup_is_validated_and_a_bad_one_changes_nothing(console: Console) -> None:
    auth = console.bearer("manager")
    good = {**DAV_SETUP, "password": "service password"}
    assert console.client.put("/api/v1/setup", json=good, headers=auth).status_code == 200
    before = console.service.org_settings()

    wiped = console.client.put("/api/v1/setup", json={}, headers=auth)
    assert wiped.status_code == 422, wiped.text
    assert {tuple(p["loc"]) for p in wiped.json()["detail"]} == {
        ("body", "server_url"),
        ("body", "service_account"),
        ("body", "password"),  # the stored one is for the account "crmsync"
    }
    assert console.service.org_settings() == before

    script = console.client.put(
        "/api/v1/setup", json={**good, "server_url": "javascript:alert(1)"}, headers=auth
    )
    assert script.status_code == 422
    (problem,) = script.json()["detail"]
    assert problem["loc"] == ["body", "server_url"] and "http:// or https://" in problem["msg"]
    for url in ("ftp://dav.example.com/", "https://", "http:///path", "dav.example.com"):
        response = console.client.put(
            "/api/v1/setup", json={**good, "server_url": url}, headers=auth
        )
        assert response.status_code == 422, url
    path = console.client.put(
        "/api/v1/setup", json={**good, "principal_path": "/users/{login}/"}, headers=auth
    )
    assert path.status_code == 422 and "{email}" in path.text

    # Microsoft 365 needs the tenant and the app, not a server URL or a service account
    # (and its own secret: the stored password was for another account).
    graph = {
        "connection_method": "graph",
        "graph_tenant_id": "contoso.onmicrosoft.com",
        "password": "app secret",
    }
    response = console.client.put("/api/v1/setup", json=graph, headers=auth)
    assert [p["loc"] for p in response.json()["detail"]] == [["body", "graph_client_id"]]
    graph["graph_client_id"] = "11111111-2222-3333-4444-555555555555"
    assert console.client.put("/api/v1/setup", json=graph, headers=auth).status_code == 200
    # Exchange: the service account; an empty URL means Autodiscover.
    ews = {
        "connection_method": "ews",
        "service_account": "EXAMPLE\\crmsync",
        "password": "exchange password",
    }
    assert console.client.put("/api/v1/setup", json=ews, headers=auth).status_code == 200
    assert console.service.org_settings().server_url == ""


def test_setup_needs_a_password_when_none_is_stored(console: Console) -> None:
    auth = console.bearer("manager")
    body = dict(DAV_SETUP)
    response = console.client.put("/api/v1/setup", json=body, headers=auth)
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [["body", "password"]]
    body["password"] = "service password"
    assert console.client.put("/api/v1/setup", json=body, headers=auth).status_code == 200
    del body["password"]  # stored now: leaving it out keeps it
    assert console.client.put("/api/v1/setup", json=body, headers=auth).status_code == 200


def test_a_stored_password_is_kept_only_for_its_method_and_account(console: Console) -> None:
    auth = console.bearer("manager")
    dav = {**DAV_SETUP, "password": "dav password"}
    assert console.client.put("/api/v1/setup", json=dav, headers=auth).status_code == 200
    del dav["password"]
    moved = {**dav, "server_url": "https://dav2.example.com/"}
    assert console.client.put("/api/v1/setup", json=moved, headers=auth).status_code == 200
    assert console.service.store.get_secret(SERVICE_PASSWORD) == "dav password"
    # Another account, or another kind of server: the password must be given again, and
    # nothing changes until it is.
    for other in (
        {**moved, "service_account": "someone-else"},
        {"connection_method": "ews", "service_account": "EXAMPLE\\crmsync"},
        {"connection_method": "ews", "service_account": "crmsync"},
    ):
        refused = console.client.put("/api/v1/setup", json=other, headers=auth)
        assert refused.status_code == 422, other
        assert [p["loc"] for p in refused.json()["detail"]] == [["body", "password"]]
        assert "this connection method and account" in refused.text
        assert console.service.org_settings().server_url == "https://dav2.example.com/"
    given = {"connection_method": "ews", "service_account": "crmsync", "password": "ews pw"}
    assert console.client.put("/api/v1/setup", json=given, headers=auth).status_code == 200
    assert console.service.store.get_secret(SERVICE_PASSWORD) == "ews pw"
