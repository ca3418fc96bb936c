"""End to end through the service: the fake Salesforce ⇄ the fake Graph (Microsoft 365).

The Graph fake (documented JSON payloads, tests/groupware/graph) sits behind an httpx
transport; "Outlook" is a second Graph client on the same fake. People's edits reach
Salesforce through the fake org directly. The service's clock is fixed the day before the
events, so every event window holds them whatever today is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Occurrence, Recurrence
from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.groupware.graph import GraphConnection
from crmsync.service.deployment import Deployment
from crmsync.service.mailboxes import MailServer, RepMailbox, graph_config
from crmsync.service.runner import RepReport, SyncService
from crmsync.transport.throttling import TenantLimiter
from tests.groupware.graph.fake_graph import GRAPH, LOGIN, FakeGraph, MsalHttpAdapter
from tests.service.salesforce_world import fake_crm_settings, fake_salesforce
from tests.service.worlds import BOTH_WAYS

REP = "rep@example.com"
START = dt.datetime(2001, 3, 5, 9, tzinfo=dt.UTC)  # a Monday
HOUR = dt.timedelta(hours=1)


def sf_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class GraphWorld:
    def __init__(self, home: Path) -> None:
        self.graph = FakeGraph(users=(REP,))
        self.fake, pem, self.rep_id = fake_salesforce(REP)
        self.org = self.fake.org
        settings = OrgSettings(
            connection_method=ConnectionMethod.GRAPH,
            graph_tenant_id=self.graph.tenant,
            graph_client_id=self.graph.client_id,
        )
        self.service = SyncService(
            Deployment.from_env(home), clock=self.clock, crm_poll_interval=0.0
        )
        self.service.configure_server(settings, self.graph.client_secret)
        self.service.use_mail_server(self._server(settings))
        self.service.configure_crm(fake_crm_settings(self.fake.url, self.fake.client_id), pem)
        self.rep = self.service.rep_by_email(REP)
        self.service.save_config(replace(BOTH_WAYS, user_ids=(self.rep.id,)))
        # The rep's own Outlook: another client of the same tenant.
        self.outlook: RepMailbox = self._server(settings).open(REP)

    def clock(self) -> dt.datetime:
        return START - dt.timedelta(days=1)

    def _server(self, settings: OrgSettings) -> MailServer:
        config = dataclasses.replace(
            graph_config(settings, self.graph.client_secret), authority_url=LOGIN, graph_url=GRAPH
        )
        client = httpx.Client(transport=self.graph.transport())
        connection = GraphConnection(
            config, client, msal_http_client=MsalHttpAdapter(client), limiter=TenantLimiter("t")
        )
        return MailServer(
            settings, self.graph.client_secret, connection=connection, clock=self.clock
        )

    def sync(self) -> RepReport:
        report = self.service.sync_rep(self.rep)
        assert report.error is None, report.error
        assert not self.service.store.errors(), self.service.store.errors()
        return report

    def rows(self, sobject: str, **where: Any) -> list[dict[str, Any]]:
        return [
            row
            for row in self.org.rows[sobject].values()
            if not row["IsDeleted"] and all(row.get(k) == v for k, v in where.items())
        ]

    def add_sf_event(self, subject: str, start: dt.datetime, **fields: Any) -> str:
        values = {"StartDateTime": sf_time(start), "EndDateTime": sf_time(start + HOUR)}
        record_id, problem = self.org.create(
            "Event", {"Subject": subject, "OwnerId": self.rep_id, **values, **fields}
        )
        assert problem is None and record_id is not None, problem
        return record_id

    def outlook_items(self, kind: ItemKind) -> dict[str, Any]:
        side = self.outlook.contacts if kind is ItemKind.CONTACT else self.outlook.events
        return {s.id: s for s in side.changes(None, {}).items}

    def close(self) -> None:
        self.service.close()
        self.fake.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GraphWorld]:
    w = GraphWorld(tmp_path / "home")
    yield w
    w.close()


def test_create_edit_and_delete_both_ways(world: GraphWorld) -> None:
    ada, problem = world.org.create(
        "Contact", {"FirstName": "Ada", "LastName": "Lovelace", "OwnerId": world.rep_id}
    )
    assert problem is None and ada is not None
    review = world.add_sf_event("Pipeline review", START)
    world.outlook.contacts.create(Contact("Bo", "Ek", email="bo@example.org"), "outlook-bo")
    call = Event("Customer call", EventTiming(START + 4 * HOUR, START + 5 * HOUR))
    world.outlook.events.create(call, "outlook-call")

    assert world.sync().writes == 4
    assert {s.record.last_name for s in world.outlook_items(ItemKind.CONTACT).values()} == {
        "Lovelace",
        "Ek",
    }
    assert {s.record.subject for s in world.outlook_items(ItemKind.EVENT).values()} == {
        "Pipeline review",
        "Customer call",
    }
    (bo,) = world.rows("Contact", LastName="Ek")
    assert bo["Email"] == "bo@example.org" and bo["OwnerId"] == world.rep_id
    assert world.rows("Event", Subject="Customer call")
    assert world.sync().writes == 0

    # Edits: Ada's title in Salesforce, the call's subject in Outlook.
    world.org.edit(ada, Title="CFO")
    (seen,) = [
        s
        for s in world.outlook_items(ItemKind.EVENT).values()
        if s.record.subject == "Customer call"
    ]
    world.outlook.events.update(seen.id, seen.version, replace(seen.record, subject="Call, moved"))
    assert world.sync().writes == 2
    (ada_mail,) = [
        s.record
        for s in world.outlook_items(ItemKind.CONTACT).values()
        if s.record.last_name == "Lovelace"
    ]
    assert ada_mail.title == "CFO"
    assert world.rows("Event", Subject="Call, moved")

    # Deletions: the review in Salesforce, Bo in Outlook.
    world.org.remove(review)
    (bo_mail,) = [
        s for s in world.outlook_items(ItemKind.CONTACT).values() if s.record.last_name == "Ek"
    ]
    world.outlook.contacts.delete(bo_mail.id, bo_mail.version)
    assert world.sync().writes == 2
    assert [s.record.subject for s in world.outlook_items(ItemKind.EVENT).values()] == [
        "Call, moved"
    ]
    assert world.rows("Contact", LastName="Ek") == []
    assert world.sync().writes == 0


def test_a_series_with_a_moved_and_a_cancelled_occurrence_from_outlook(
    world: GraphWorld,
) -> None:
    week = dt.timedelta(days=7)
    moved = START + week
    weekly = Event(
        "Weekly pipeline",
        EventTiming(START, START + HOUR, "Europe/Paris"),
        recurrence=Recurrence(
            rule="FREQ=WEEKLY;COUNT=4;BYDAY=MO",
            exdates=(START + 2 * week,),
            overrides=(
                Occurrence(
                    moved,
                    EventTiming(moved + 2 * HOUR, moved + 3 * HOUR, "Europe/Paris"),
                    "Weekly pipeline (moved)",
                ),
            ),
        ),
    )
    world.outlook.events.create(weekly, "outlook-series")

    world.sync()

    rows = world.rows("Event", IsRecurrence2=True)
    assert len(rows) == 3  # one of the four cancelled
    (moved_row,) = world.rows("Event", Subject="Weekly pipeline (moved)")
    assert moved_row["StartDateTime"] == sf_time(moved + 2 * HOUR)
    assert world.sync().writes == 0
    # A change in Salesforce to the whole series (each occurrence's location) comes back.
    for row in rows:
        world.org.edit(row["Id"], Location="Room 2")
    assert world.sync().writes == 1
    (seen,) = world.outlook_items(ItemKind.EVENT).values()
    assert seen.record.location == "Room 2" and seen.record.recurrence is not None
