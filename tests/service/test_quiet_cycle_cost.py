"""What a cycle that finds nothing to do costs in the state store (issue 16).

SQLAlchemy's event hooks count every statement the service sends to the state database
and every commit of a transaction that wrote, during a quiet cycle against a real
Radicale: a regression (a status rewritten each cycle, a row upserted "just in case")
makes these fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from crmsync.domain.records import Contact, Event, EventTiming
from tests.servers import DavServerInfo, running_dav_server
from tests.service.worlds import BOTH_WAYS, World

# A quiet cycle: one read transaction (BEGIN; the rep's row, statuses, cursors and write
# intents; the org's settings version: the settings themselves are held in memory while
# it stands) and the closing write (BEGIN IMMEDIATE, one UPDATE of the rep's row). Nothing
# per kind: with no change on either side the links are not read.
MOST_STATEMENTS = 8
MOST_COMMITS = 2  # read transactions included


@dataclass
class StatementCount:
    statements: int = 0
    writes: int = 0  # INSERT / UPDATE / DELETE statements
    commits: int = 0
    write_commits: int = 0  # commits of transactions that wrote

    def __post_init__(self) -> None:
        self._wrote: set[int] = set()

    def on_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.statements += 1
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1
            self._wrote.add(id(conn))

    def on_commit(self, conn: Any) -> None:
        self.commits += 1
        if id(conn) in self._wrote:
            self._wrote.discard(id(conn))
            self.write_commits += 1


def count_during(engine: Engine, world: World) -> StatementCount:
    count = StatementCount()
    event.listen(engine, "before_cursor_execute", count.on_execute)
    event.listen(engine, "commit", count.on_commit)
    try:
        report = world.sync()
    finally:
        event.remove(engine, "before_cursor_execute", count.on_execute)
        event.remove(engine, "commit", count.on_commit)
    assert report.error is None and report.writes == 0
    return count


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


def quiet_world(server: DavServerInfo, home: Path, items: int) -> World:
    world = World(server, home, BOTH_WAYS)
    start = dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC)
    for i in range(items):
        world.crm.create_contact(world.rep.id, Contact(f"Ann{i}", "Lee", email=f"a{i}@x.test"))
        world.crm.create_event(
            world.rep.id,
            Event(
                f"Call {i}",
                EventTiming(start + dt.timedelta(days=i), start + dt.timedelta(days=i, hours=1)),
            ),
        )
    world.sync()  # the initial sync
    world.sync()  # settles statuses (initial sync completed → in sync)
    return world


def test_a_quiet_cycle_reads_a_handful_and_commits_at_most_once(
    radicale: DavServerInfo, tmp_path: Path
) -> None:
    small = quiet_world(radicale, tmp_path / "small", 2)
    try:
        cost = count_during(small.service.store.engine, small)
    finally:
        small.close()
    assert cost.write_commits <= 1, cost
    assert cost.writes <= 1, cost  # the cycle's stamps, in one UPDATE of the rep's row
    assert cost.statements <= MOST_STATEMENTS, cost
    assert cost.commits <= MOST_COMMITS, cost


def test_a_quiet_cycles_cost_does_not_grow_with_the_items(tmp_path: Path) -> None:
    costs = []
    for items in (2, 20):
        # A server each: the rep's mailbox must hold only this world's items.
        with running_dav_server("radicale", tmp_path / f"server{items}") as server:
            world = quiet_world(server, tmp_path / f"items{items}", items)
            try:
                costs.append(count_during(world.service.store.engine, world))
            finally:
                world.close()
    assert costs[0] == costs[1]
