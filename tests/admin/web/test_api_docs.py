"""/api/docs works offline, the API document declares how to sign in, and the statuses,
error report, preview and connection test answer in typed models that drop nothing the
console shows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from crmsync.admin.web import views
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.domain.sync import ErrorEntry, ErrorType
from tests.admin.web.conftest import Console


def test_swagger_ui_is_served_from_the_deployment_itself(console: Console) -> None:
    page = console.client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/v1/openapi.json" in page.text
    # Nothing from another host: the page works without the internet.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        served = console.client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset


def test_the_console_links_to_the_api_docs(console: Console) -> None:
    console.sign_in("manager")
    assert 'href="/api/docs"' in console.client.get("/status").text


def document(console: Console) -> dict[str, Any]:
    return console.client.get("/api/v1/openapi.json").json()


def test_the_document_declares_the_bearer_token_and_the_session_cookie(console: Console) -> None:
    found = document(console)
    schemes = found["components"]["securitySchemes"]
    assert schemes["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made with `crmsync admin token USERNAME NAME`.",
    }
    assert schemes["consoleSession"]["in"] == "cookie"
    for path, item in found["paths"].items():
        for method, operation in item.items():
            assert {"apiToken": []} in operation["security"], (method, path)


def response_schema(found: dict[str, Any], method: str, path: str, code: str) -> dict[str, Any]:
    content = found["paths"][path][method]["responses"][code]["content"]
    return content["application/json"]["schema"]


def test_statuses_errors_preview_and_connection_test_have_typed_answers(
    console: Console,
) -> None:
    found = document(console)
    expected = {
        ("get", "/api/v1/status", "200"): {"$ref": "#/components/schemas/OrgStatus"},
        ("get", "/api/v1/reps/{email}", "200"): {"$ref": "#/components/schemas/RepStatus"},
        ("post", "/api/v1/reps/{email}/reset", "202"): {"$ref": "#/components/schemas/RepSummary"},
        ("post", "/api/v1/connection-test", "200"): {
            "$ref": "#/components/schemas/ConnectionTestAnswer"
        },
    }
    for (method, path, code), schema in expected.items():
        assert response_schema(found, method, path, code) == schema, path
    lists = {
        ("get", "/api/v1/reps"): "RepSummary",
        ("get", "/api/v1/errors"): "ErrorRow",
        ("post", "/api/v1/configurations/{name}/preview"): "RepPreviewAnswer",
    }
    for (method, path), model in lists.items():
        schema = response_schema(found, method, path, "200")
        assert schema["items"] == {"$ref": f"#/components/schemas/{model}"}, path
    schemas = found["components"]["schemas"]
    step = schemas["ConnectionTestStep"]["properties"]["status"]
    assert set(step["enum"]) == {"passed", "warning", "failed", "not_run"}
    assert schemas["ErrorRow"]["properties"]["error_type"] == {
        "$ref": "#/components/schemas/ErrorType"
    }


def test_the_typed_answers_drop_nothing_the_views_say(console: Console) -> None:
    """The API returns exactly what the console shows: a field a view gains without its
    model would be dropped silently by FastAPI, so this compares whole answers."""
    service = console.service
    auth = console.bearer("full")
    rep = service.crm.create_user("ann@example.com", "Ann")
    service.save_config(SyncConfig("Sales", user_ids=(rep.id,)))
    at = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)
    service.store.record_error(
        ErrorEntry(
            rep.id,
            ItemKind.CONTACT,
            "c1",
            "read",
            ErrorType.MALFORMED_ITEM,
            "The vCard has no FN.",
            "Give the contact a name.",
            at,
        )
    )
    now = service.clock()
    answers = {
        "/api/v1/status": views.org_status(service, now),
        "/api/v1/reps": [views.rep_summary(service, rep)],
        "/api/v1/reps/ann@example.com": views.rep_status(service, rep),
        "/api/v1/errors": list(views.error_rows(service, limit=200)),
    }
    for path, shown in answers.items():
        assert console.client.get(path, headers=auth).json() == shown, path
    assert answers["/api/v1/errors"][0]["item"] == "c1"
