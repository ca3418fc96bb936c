"""`google_workspaces`: one connection per equal Google setup in the process, closed by
the last release."""

from __future__ import annotations

import dataclasses

from crmsync.groupware.google import GoogleConfig
from crmsync.service import google_workspaces
from tests.groupware.google.fake_google import service_account_key


def test_equal_setups_share_a_connection_until_the_last_release() -> None:
    config = GoogleConfig(key_json=service_account_key(), calendar_url="http://127.0.0.1:9/c")
    first = google_workspaces.acquire(config)
    second = google_workspaces.acquire(dataclasses.replace(config))
    other = google_workspaces.acquire(dataclasses.replace(config, contacts_folder="Other"))
    assert first is second and other is not first
    google_workspaces.release(first)
    assert not first.client.is_closed
    google_workspaces.release(second)
    assert first.client.is_closed
    fresh = google_workspaces.acquire(config)
    assert fresh is not first  # a new one after the last release
    google_workspaces.release(fresh)
    google_workspaces.release(other)
    assert other.client.is_closed
