"""The shared `ItemSide` contract on the EWS backend.

These tests use a fake EWS server built from Microsoft's documented payloads (see
``fake_ews.py``) and the official client library, exchangelib; no Exchange server runs here.

Live mode: set all of
  CRMSYNC_EWS_URL       the EWS endpoint, https://mail.example.com/EWS/Exchange.asmx
  CRMSYNC_EWS_USER      the service account, user@domain or DOMAIN\\user (NTLM)
  CRMSYNC_EWS_PASSWORD  its password
  CRMSYNC_EWS_REP       a test rep's primary SMTP address the account may impersonate
and the same contract runs against that server as well (it writes into the rep's calendar
and a ``CRM_Sync_test`` contacts folder); otherwise the live class is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.groupware.contract import ItemSideContract
from tests.groupware.ews.fake_ews import FakeEwsServer
from tests.groupware.ews.harness import PASSWORD, REP, SERVICE, EwsHarness, live_settings


@pytest.fixture
def fake_server() -> Iterator[FakeEwsServer]:
    server = FakeEwsServer(SERVICE, PASSWORD, {REP})
    yield server
    server.stop()


class TestEwsContractOnFake(ItemSideContract):
    @pytest.fixture
    def harness(self, fake_server: FakeEwsServer) -> Iterator[EwsHarness]:  # type: ignore[override]
        harness = EwsHarness(fake_server)
        yield harness
        harness.close()


@pytest.mark.skipif(live_settings() is None, reason="set CRMSYNC_EWS_* to run against Exchange")
class TestEwsContractLive(ItemSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[EwsHarness]:  # type: ignore[override]
        harness = EwsHarness(None)
        yield harness
        harness.close()
