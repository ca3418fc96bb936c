"""`EwsHarness`: the contract's view of one rep's Exchange mailbox, on the fake or a live server.

Tests here use a fake EWS server built from Microsoft's documented payloads, driven by the
official client library (exchangelib); a second connection plays the rep's own Outlook.
"""

from __future__ import annotations

import os

from crmsync.domain.records import Record
from crmsync.engine.ports import ItemSide
from crmsync.groupware.ews import EwsAuth, EwsConfig, EwsConnection, EwsRetry, open_ews_mailbox
from crmsync.groupware.ews.folder import EwsFolder
from tests.groupware.ews.fake_ews import FakeEwsServer

SERVICE = "svc@example.com"
PASSWORD = "s3cret"
REP = "rep@example.com"
LIVE_VARS = ("CRMSYNC_EWS_URL", "CRMSYNC_EWS_USER", "CRMSYNC_EWS_PASSWORD", "CRMSYNC_EWS_REP")


def live_settings() -> dict[str, str] | None:
    values = {name: os.environ.get(name, "") for name in LIVE_VARS}
    return values if all(values.values()) else None


class EwsHarness:
    def __init__(self, server: FakeEwsServer | None, folder_suffix: str = "") -> None:
        self.server = server
        self.waits: list[float] = []
        live = live_settings()
        if server is not None:
            self.config = EwsConfig(
                SERVICE,
                PASSWORD,
                server.url,
                auth=EwsAuth.BASIC,
                retry=EwsRetry(max_attempts=3, base_delay=0.01),
            )
            self.rep = REP
        else:
            assert live is not None
            self.config = EwsConfig(
                live["CRMSYNC_EWS_USER"],
                live["CRMSYNC_EWS_PASSWORD"],
                live["CRMSYNC_EWS_URL"],
                contacts_folder="CRM_Sync_test" + folder_suffix,
            )
            self.rep = live["CRMSYNC_EWS_REP"]
        self.connection = EwsConnection(self.config, sleep=self.waits.append)
        self.mailbox = open_ews_mailbox(self.connection, self.rep)
        self.contacts: EwsFolder = self.mailbox.contacts
        self.events: EwsFolder = self.mailbox.events
        self._outlook_connection = EwsConnection(self.config)
        self.outlook = open_ews_mailbox(self._outlook_connection, self.rep)
        self._requests_live = 0

    def close(self) -> None:
        self.connection.close()
        self._outlook_connection.close()

    def request_count(self) -> int:
        if self.server is None:
            protocol = self.connection.configuration.protocol  # type: ignore[union-attr]
            return protocol.session_pool_size  # live: not countable; the contract allows ≤ 2
        return sum(
            1 for r in self.server.fake.requests if r.headers.get("X-Crmsync-Client") != "outlook"
        )

    def _other(self, side: ItemSide) -> EwsFolder:
        return self.outlook.contacts if side is self.contacts else self.outlook.events

    def foreign_edit(self, side: ItemSide, item_id: str, record: Record) -> None:
        other = self._other(side)
        seen = other.fetch(item_id)
        assert seen is not None
        other.update(item_id, seen.version, record)

    def foreign_delete(self, side: ItemSide, item_id: str) -> None:
        other = self._other(side)
        seen = other.fetch(item_id)
        assert seen is not None
        other.delete(item_id, seen.version)

    def invalid_cursor(self, side: ItemSide) -> str:
        return "bm90LWEtcmVhbC1zdGF0ZQ=="
