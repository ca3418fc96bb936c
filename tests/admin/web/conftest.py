"""A console app on a fresh deployment, with one admin per permission set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crmsync.admin.web import create_app
from crmsync.admin.web.security import MANAGE, Permission, hash_password
from crmsync.service.deployment import Deployment

PASSWORD = "correct horse battery staple"
ACCOUNTS = {
    "full": {*MANAGE, Permission.VIEW_ALL_DATA},
    "manager": set(MANAGE),
    "reader": {Permission.VIEW_ALL_DATA},
    # Two of the three permissions the setup pages need: not enough.
    "partial": {Permission.CUSTOMIZE_APPLICATION, Permission.MANAGE_SYNC},
    "nobody": set(),
}


@dataclass
class Console:
    client: TestClient
    home: Path
    tokens: dict[str, str]

    @property
    def service(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.service  # type: ignore[attr-defined]

    def bearer(self, account: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[account]}"}

    def sign_in(self, account: str) -> str:
        """Sign the client in as ``account``; returns the session's CSRF token."""
        response = self.client.post(
            "/login", data={"username": account, "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        store = self.service.store
        session = store.session(self.client.cookies.get("crmsync_session"))
        assert session is not None
        return session.csrf_token


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    deployment = Deployment.from_env(tmp_path / "home")
    app = create_app(deployment)
    with TestClient(app) as client:
        store = app.state.service.store
        tokens = {}
        for name, permissions in ACCOUNTS.items():
            store.create_admin(name, hash_password(PASSWORD), {p.value for p in permissions})
            tokens[name] = store.create_api_token(name, "tests")
        yield Console(client, tmp_path / "home", tokens)
