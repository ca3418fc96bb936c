"""Sign-in throttling: per account name and per client address, never one name's failures
locking another name out."""

from __future__ import annotations

from fastapi.testclient import TestClient

from crmsync.admin.web import security
from crmsync.admin.web.security import MAX_FAILURES
from tests.admin.web.conftest import PASSWORD, Console

WRONG = "not the password at all"


def attempt(client: TestClient, username: str, password: str = WRONG) -> int:
    response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    return response.status_code


def test_one_names_failures_never_lock_another_name_out(console: Console) -> None:
    # Every caller has the same address here, as every client has behind a proxy whose
    # forwarded addresses are not trusted.
    for _ in range(MAX_FAILURES):
        assert attempt(console.client, "full") == 401
    assert attempt(console.client, "full", PASSWORD) == 429
    # The attacker keeps hammering the locked name: refused without being counted ...
    for _ in range(30):
        assert attempt(console.client, "full") == 429
    # ... so the other admins at that address still sign in.
    assert attempt(console.client, "reader", PASSWORD) == 303
    console.client.cookies.clear()
    assert attempt(console.client, "manager", PASSWORD) == 303


def test_an_address_trying_many_names_is_throttled(console: Console) -> None:
    limit = security.MAX_FAILURES_PER_ADDRESS
    assert limit > MAX_FAILURES  # one name alone never reaches it
    # All but the last failures straight into the store (argon2 makes real ones slow).
    _, address_key = security.throttle_keys("", "testclient")
    for _ in range(limit - 3):
        console.service.store.record_login_failure(address_key)
    for name in ("guess1", "guess2", "guess3"):
        assert attempt(console.client, name) == 401
    assert attempt(console.client, "full", PASSWORD) == 429
    # Another address is not affected, and neither is the name tried from elsewhere.
    elsewhere = TestClient(console.client.app, client=("198.51.100.20", 40000))
    assert attempt(elsewhere, "full", PASSWORD) == 303


def test_a_success_clears_only_that_names_failures(console: Console) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert attempt(console.client, "full") == 401
    assert attempt(console.client, "full", PASSWORD) == 303
    console.client.cookies.clear()
    for _ in range(MAX_FAILURES - 1):
        assert attempt(console.client, "full") == 401
    assert attempt(console.client, "full", PASSWORD) == 303
