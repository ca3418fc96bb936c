"""The shared `ItemSide` contract on the Microsoft Graph sides.

These tests use a fake built from Microsoft's documented payloads (`FakeGraph`, each
handler naming its learn.microsoft.com page) and the official client library (msal) for
tokens; no Microsoft 365 tenant is involved. Live mode: set CRMSYNC_GRAPH_TENANT,
CRMSYNC_GRAPH_CLIENT_ID, CRMSYNC_GRAPH_CLIENT_SECRET and CRMSYNC_GRAPH_REP (an app
registration with Calendars.ReadWrite and Contacts.ReadWrite application permissions and
admin consent, and a test mailbox) to run the same contract against that tenant; the
live class is skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.groupware.contract import ItemSideContract
from tests.groupware.graph.fake_graph import FakeGraph
from tests.groupware.graph.harness import GraphHarness, live


class TestGraphContract(ItemSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[GraphHarness]:  # type: ignore[override]
        harness = GraphHarness(fake=FakeGraph())
        yield harness
        harness.close()


@pytest.mark.skipif(not live(), reason="set CRMSYNC_GRAPH_* to run against a real tenant")
class TestGraphContractLive(ItemSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[GraphHarness]:  # type: ignore[override]
        harness = GraphHarness()
        yield harness
        harness.close()
