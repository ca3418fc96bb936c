"""The OpenAPI document declares the answers each route really gives, and error bodies have
the declared shape (schemathesis checks the same by fuzzing, in test_api_fuzz)."""

from __future__ import annotations

from typing import Any

from tests.admin.web.conftest import Console


def operations(console: Console) -> dict[tuple[str, str], dict[str, Any]]:
    document = console.client.get("/api/v1/openapi.json").json()
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_declares_its_error_answers(console: Console) -> None:
    found = operations(console)
    assert len(found) >= 17
    for (method, path), operation in found.items():
        declared = set(operation["responses"])
        assert {"401", "403"} <= declared, (method, path)
        if "{" in path:
            assert "404" in declared, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= declared, (method, path)
        for code in declared - {"422"}:
            if code.startswith("4"):
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)
    assert "409" in found[("POST", "/api/v1/configurations")]["responses"]
    assert "409" in found[("PUT", "/api/v1/configurations/{name}")]["responses"]


def test_error_bodies_have_the_declared_shapes(console: Console) -> None:
    auth = console.bearer("manager")
    missing = console.client.get("/api/v1/configurations/nothing", headers=auth)
    assert missing.status_code == 404 and isinstance(missing.json()["detail"], str)
    created = console.client.post("/api/v1/configurations", json={"name": "A"}, headers=auth)
    assert created.status_code == 201
    again = console.client.post("/api/v1/configurations", json={"name": "A"}, headers=auth)
    assert again.status_code == 409 and isinstance(again.json()["detail"], str)
    # A rule of ours (an unknown rep) answers 422 in the same shape as the schema's checks.
    ghost = {"name": "B", "users": ["ghost@example.com"]}
    rule = console.client.post("/api/v1/configurations", json=ghost, headers=auth)
    schema = console.client.post("/api/v1/configurations", json={"name": 5}, headers=auth)
    for refused in (rule, schema):
        assert refused.status_code == 422
        for problem in refused.json()["detail"]:
            assert {"loc", "msg", "type"} <= set(problem) and isinstance(problem["loc"], list)
    assert "ghost@example.com" in rule.json()["detail"][0]["msg"]
    not_json = console.client.post(
        "/api/v1/configurations",
        content=b"\x06\xff",
        headers={**auth, "content-type": "application/json"},
    )
    assert not_json.status_code == 400 and isinstance(not_json.json()["detail"], str)


def test_allow_names_every_method_of_the_path(console: Console) -> None:
    auth = console.bearer("manager")
    response = console.client.request("PATCH", "/api/v1/configurations", headers=auth)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    setup = console.client.request("DELETE", "/api/v1/setup", headers=auth)
    assert set(setup.headers["allow"].split(", ")) == {"GET", "PUT"}
