"""Forwarded client addresses: trusted only from the proxies named with
`--forwarded-allow-ips`, in the app and through a real `crmsync serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from crmsync.admin.web import create_app, security
from crmsync.admin.web.proxies import TrustedProxies, client_address
from crmsync.admin.web.security import MANAGE, hash_password
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore
from tests.admin.web.serving import serving

PASSWORD = "correct horse battery staple"


def test_trusted_proxies_parse_addresses_and_networks() -> None:
    trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8,::1")
    assert trusted.trusts("127.0.0.1") and trusted.trusts("10.20.30.40")
    assert trusted.trusts("::1") and not trusted.trusts("192.0.2.1")
    assert not trusted.trusts("testclient")  # not an address: never trusted
    assert TrustedProxies.parse("*").trusts("192.0.2.1")
    assert not TrustedProxies.parse("").trusts("127.0.0.1")
    with pytest.raises(ValueError, match="not-an-ip"):
        TrustedProxies.parse("127.0.0.1,not-an-ip")


def test_the_client_is_the_last_address_a_trusted_proxy_saw() -> None:
    trusted = TrustedProxies.parse("10.0.0.0/8")
    # An untrusted peer's header is ignored: anyone can write one.
    assert client_address("192.0.2.1", "203.0.113.7", trusted) == "192.0.2.1"
    assert client_address("10.0.0.5", "203.0.113.7", trusted) == "203.0.113.7"
    assert client_address("10.0.0.5", None, trusted) == "10.0.0.5"
    # The client forged the left part; the proxies appended the right part.
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.7", trusted) == "203.0.113.7"
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.7, 10.9.9.9", trusted) == ("203.0.113.7")
    assert client_address("10.0.0.5", "10.1.1.1, 10.2.2.2", trusted) == "10.1.1.1"
    assert client_address("10.0.0.5", " , ", trusted) == "10.0.0.5"


def make_home(tmp_path: Path) -> StateStore:
    """A deployment with the admins alice and bob; its state store, open."""
    deployment = Deployment.from_env(tmp_path / "home")
    store = StateStore(deployment.state_url, deployment.secrets_key_path)
    for name in ("alice", "bob"):
        store.create_admin(name, hash_password(PASSWORD), set(MANAGE))
    return store


def sign_in(client: httpx.Client | TestClient, name: str, password: str, address: str) -> int:
    response = client.post(
        "/login",
        data={"username": name, "password": password},
        headers={"X-Forwarded-For": address},
        follow_redirects=False,
    )
    client.cookies.clear()
    return response.status_code


def spray(
    client: httpx.Client | TestClient, store: StateStore, address: str, *, forged: bool = False
) -> None:
    """Enough failed sign-ins from ``address`` (as the server counts them) to lock it: all
    but two written to the store (argon2 makes real ones slow), then two real ones, for
    two names, each claiming another address with ``forged``."""
    key = security.throttle_keys("", address)[1]
    for _ in range(security.MAX_FAILURES_PER_ADDRESS - 2):
        store.record_login_failure(key)
    for n in range(2):
        claimed = f"203.0.113.{n + 1}" if forged else address
        assert sign_in(client, f"guess{n}", "wrong password", claimed) == 401


def test_the_app_takes_forwarded_addresses_only_from_trusted_proxies(tmp_path: Path) -> None:
    make_home(tmp_path).close()
    trusted = TrustedProxies.parse("10.0.0.5")
    app = create_app(Deployment.from_env(tmp_path / "home"), forwarded_allow_ips=trusted)
    store = app.state.service.store
    behind_proxy = TestClient(app, client=("10.0.0.5", 40000))
    spray(behind_proxy, store, "198.51.100.1")
    assert sign_in(behind_proxy, "alice", PASSWORD, "198.51.100.1") == 429
    assert sign_in(behind_proxy, "alice", PASSWORD, "198.51.100.2") == 303

    direct = TestClient(app, client=("192.0.2.9", 40000))
    spray(direct, store, "192.0.2.9", forged=True)
    assert sign_in(direct, "bob", PASSWORD, "198.51.100.3") == 429


def test_serve_ignores_forwarded_for_unless_told_which_proxies_to_trust(tmp_path: Path) -> None:
    store = make_home(tmp_path)
    with serving(tmp_path / "home", env={"FORWARDED_ALLOW_IPS": "*"}) as url:
        client = httpx.Client(base_url=url)
        # uvicorn's own default believed 127.0.0.1 (and its variable, here everyone): a
        # client connecting through a local proxy could claim another address each time.
        spray(client, store, "127.0.0.1", forged=True)
        assert sign_in(client, "alice", PASSWORD, "198.51.100.1") == 429
    store.close()


def test_serve_behind_a_trusted_proxy_throttles_each_client_apart(tmp_path: Path) -> None:
    store = make_home(tmp_path)
    with serving(tmp_path / "home", "--forwarded-allow-ips", "127.0.0.1") as url:
        proxy = httpx.Client(base_url=url)
        spray(proxy, store, "198.51.100.1")
        assert sign_in(proxy, "alice", PASSWORD, "198.51.100.1") == 429
        assert sign_in(proxy, "alice", PASSWORD, "198.51.100.2") == 303
    store.close()


def test_serve_refuses_a_malformed_proxy_list(tmp_path: Path) -> None:
    make_home(tmp_path).close()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crmsync.admin.cli import main; main()",
            "serve",
            "--forwarded-allow-ips",
            "127.0.0.1,proxy.example.com",
        ],
        env={**os.environ, "CRMSYNC_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "proxy.example.com" in result.stderr + result.stdout
