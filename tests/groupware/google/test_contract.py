"""The shared `ItemSide` contract on the Google Workspace sides.

These tests use a fake built from Google's documented payloads (`FakeGoogle`, each
handler naming its developers.google.com page) and the official library (google-auth)
for service-account tokens; no Google account is involved. Live mode: set
CRMSYNC_GOOGLE_KEY_FILE (a service account JSON key whose client id a super admin has
authorised for https://www.googleapis.com/auth/calendar.events and
https://www.googleapis.com/auth/contacts) and CRMSYNC_GOOGLE_REP_EMAIL (a test user) to
run the same contract against that Workspace; the live class is skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.groupware.contract import ItemSideContract
from tests.groupware.google.fake_google import FakeGoogle
from tests.groupware.google.harness import GoogleHarness, live


class TestGoogleContract(ItemSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[GoogleHarness]:  # type: ignore[override]
        harness = GoogleHarness(fake=FakeGoogle())
        yield harness
        harness.close()


@pytest.mark.skipif(not live(), reason="set CRMSYNC_GOOGLE_* to run against a real Workspace")
class TestGoogleContractLive(ItemSideContract):
    @pytest.fixture
    def harness(self) -> Iterator[GoogleHarness]:  # type: ignore[override]
        harness = GoogleHarness()
        yield harness
        harness.close()
