"""The permission matrix: every API route and every page, for every kind of caller.

Routes are read from the app itself, so a route added without a permission check makes
this test fail (an anonymous caller would get through).
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from crmsync.admin.web.security import ERROR_REPORT, MANAGE
from tests.admin.web.conftest import ACCOUNTS, Console

DENIED = (401, 403)


def flat(routes: list[object], prefix: str = "") -> list[APIRoute]:
    """Every APIRoute, included routers opened (FastAPI keeps them nested)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += flat(route.original_router.routes)
    return found


def routes(console: Console, api: bool) -> list[tuple[str, str]]:
    found = []
    for route in flat(console.client.app.routes):  # type: ignore[attr-defined]
        if route.path.startswith("/api/") != api or route.path in ("/login", "/logout"):
            continue
        if not api and route.path in ("/", "/metrics", "/healthz"):
            continue
        for method in sorted(route.methods):
            found.append((method, route.path))
    return found


def needed(path: str) -> frozenset[str]:
    if path == "/api/v1/me":
        return frozenset()
    if path.startswith(("/api/v1/errors", "/errors")):
        return ERROR_REPORT
    return MANAGE


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nobody@example.com", path)


def test_every_api_route_checks_permissions(console: Console) -> None:
    checked = 0
    for method, path in routes(console, api=True):
        url = concrete(path)
        anonymous = console.client.request(method, url)
        assert anonymous.status_code == 401, (method, path)
        for account, permissions in ACCOUNTS.items():
            response = console.client.request(method, url, headers=console.bearer(account))
            allowed = needed(path) <= {p.value for p in permissions}
            if allowed:
                assert response.status_code not in DENIED, (account, method, path, response.text)
            else:
                assert response.status_code == 403, (account, method, path, response.text)
            checked += 1
    assert checked >= 15 * len(ACCOUNTS)


@pytest.mark.parametrize("account", list(ACCOUNTS))
def test_every_page_checks_permissions(console: Console, account: str) -> None:
    pages = routes(console, api=False)
    assert len(pages) >= 12
    for method, path in pages:
        anonymous = console.client.request(method, concrete(path), follow_redirects=False)
        assert anonymous.status_code in (303, 401), (method, path)
    csrf = console.sign_in(account)
    for method, path in pages:
        data = {"csrf_token": csrf} if method == "POST" else None
        response = console.client.request(method, concrete(path), data=data, follow_redirects=False)
        allowed = needed(path) <= {p.value for p in ACCOUNTS[account]}
        if allowed:
            assert response.status_code not in DENIED, (account, method, path)
        else:
            assert response.status_code == 403, (account, method, path)
