"""`GraphHarness`: the contract's view of one rep's Microsoft 365 mailbox.

By default the mailbox lives in `FakeGraph` (built from Microsoft's documented payloads;
tokens come from the official client library, msal, talking to the fake's token
endpoint). With CRMSYNC_GRAPH_TENANT, CRMSYNC_GRAPH_CLIENT_ID, CRMSYNC_GRAPH_CLIENT_SECRET
and CRMSYNC_GRAPH_REP set, `live_harness` talks to that real tenant instead (the
contacts folder is a fresh ``CRM_Sync test <random>`` folder).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets

import httpx

from crmsync.domain.records import Record
from crmsync.engine.ports import ItemSide
from crmsync.groupware.graph import GraphConfig, GraphConnection, RetryPolicy
from crmsync.groupware.graph.connection import READ_PREFER
from crmsync.groupware.graph.item_folder import GraphItems
from crmsync.groupware.graph.mailbox import GraphMailbox, open_graph_mailbox
from crmsync.transport.throttling import TenantLimiter
from tests.groupware.fake_clock import FakeClock
from tests.groupware.graph.fake_graph import GRAPH, LOGIN, FakeGraph, MsalHttpAdapter

REP = "rep@example.com"
# The calendar window (a year back, two ahead) is counted from here, not from today: the
# contract's sample events (2026) stay in it whatever the date.
SAMPLES_NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LIVE_VARS = (
    "CRMSYNC_GRAPH_TENANT",
    "CRMSYNC_GRAPH_CLIENT_ID",
    "CRMSYNC_GRAPH_CLIENT_SECRET",
    "CRMSYNC_GRAPH_REP",
)


def live() -> bool:
    return all(os.environ.get(v) for v in LIVE_VARS)


class GraphHarness:
    def __init__(
        self,
        *,
        notify_attendees: bool = True,
        fake: FakeGraph | None = None,
        max_attempts: int = 4,
        client_secret: str | None = None,
    ) -> None:
        self.clock = FakeClock()
        retry = RetryPolicy(
            max_attempts=max_attempts, sleep=self.clock.sleep, clock=self.clock.monotonic
        )
        if live() and fake is None:
            self.fake = None
            self.rep = os.environ["CRMSYNC_GRAPH_REP"]
            self.config = GraphConfig(
                tenant_id=os.environ["CRMSYNC_GRAPH_TENANT"],
                client_id=os.environ["CRMSYNC_GRAPH_CLIENT_ID"],
                client_secret=os.environ["CRMSYNC_GRAPH_CLIENT_SECRET"],
                contacts_folder=f"CRM_Sync test {secrets.token_hex(4)}",
                notify_attendees_on_crm_edits=notify_attendees,
            )
            self.client = httpx.Client(timeout=60)
            self.connection = GraphConnection(self.config, self.client)
        else:
            self.fake = fake or FakeGraph()
            self.rep = REP
            self.client = httpx.Client(transport=self.fake.transport())
            self.config = GraphConfig(
                tenant_id=self.fake.tenant,
                client_id=self.fake.client_id,
                client_secret=client_secret or self.fake.client_secret,
                authority_url=LOGIN,
                graph_url=GRAPH,
                notify_attendees_on_crm_edits=notify_attendees,
                retry=retry,
            )
            self.connection = GraphConnection(
                self.config,
                self.client,
                msal_http_client=MsalHttpAdapter(self.client),
                limiter=TenantLimiter(self.fake.tenant),
            )
        self.mailbox: GraphMailbox = open_graph_mailbox(
            self.config, self.rep, connection=self.connection, now=lambda: SAMPLES_NOW
        )
        self.contacts = self.mailbox.contacts
        self.events = self.mailbox.events

    def close(self) -> None:
        if self.fake is None:  # a live tenant: remove the test folder
            self.connection.request(
                "DELETE", f"/users/{self.rep}/contactFolders/{self.contacts.folder_id}"
            )
        self.client.close()

    def request_count(self) -> int:
        return self.connection.requests_made

    def _current(self, side: GraphItems, item_id: str) -> dict:
        response = self.connection.request(
            "GET", side.item_path(item_id), headers={"Prefer": READ_PREFER}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def foreign_edit(self, side: ItemSide, item_id: str, record: Record) -> None:
        assert isinstance(side, GraphItems)
        body = side._body(side._slots(record), self._current(side, item_id))
        if self.fake is not None:
            self.fake.foreign_patch(self.rep, item_id, body)
        else:
            assert self.connection.request("PATCH", side.item_path(item_id), json=body).is_success

    def foreign_delete(self, side: ItemSide, item_id: str) -> None:
        assert isinstance(side, GraphItems)
        if self.fake is not None:
            self.fake.foreign_delete(self.rep, item_id)
        else:
            assert self.connection.request("DELETE", side.item_path(item_id)).is_success

    def invalid_cursor(self, side: ItemSide) -> str:
        real = side.changes(None, {}).cursor or ""
        return real.split("$deltatoken=")[0] + "$deltatoken=" + "A" * 40
