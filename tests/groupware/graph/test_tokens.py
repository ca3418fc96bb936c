"""Entra ID tokens: a sign-in service that cannot be reached is a passing outage with
the admin's fix, never a crash (msal looks the tenant up as soon as it is built)."""

from __future__ import annotations

import socket

import pytest

from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.graph.config import GraphConfig
from crmsync.groupware.graph.tokens import GraphTokens


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_entra_id_is_a_passing_outage_with_a_fix() -> None:
    authority = f"https://127.0.0.1:{_closed_port()}"
    config = GraphConfig("tenant", "client", client_secret="s3cret-value", authority_url=authority)

    with pytest.raises(ServerUnavailable) as raised:
        GraphTokens(config)

    assert authority in raised.value.message and "HTTPS_PROXY" in raised.value.suggestion
    assert "s3cret-value" not in raised.value.message + raised.value.suggestion
