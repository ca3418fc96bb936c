"""A cycle SIGKILLed mid-create against Google, then run again: no duplicate anywhere.

Two contacts and two events in the built-in CRM are due to be created in the rep's
Google account. The cycle runs in a process of its own (`crash_worker.py`) reaching the
fake Google (on 127.0.0.1) through a `KillProxy`, which kills it at its first or second
create: before forwarding it, after Google applied it but before the answer, or right
after the answer. A second cycle then runs to its end: each item is in Google once (an
event's create carries a client-chosen id, so the repeat answers 409 and is linked; a
contact is found by the marker in its clientData), and a further cycle writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from tests.service.crash_worker import run_worker
from tests.service.google_world import GoogleWorld, live_google
from tests.service.http_proxy import KillMoment, KillProxy, Request
from tests.service.worlds import BOTH_WAYS

START = dt.datetime(2030, 6, 3, 8, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(live_google(), reason="kills cycles against the fake only")


def is_create(request: Request) -> bool:
    return request.method == "POST" and (
        request.path.split("?")[0].endswith("/events") or ":createContact" in request.path
    )


@pytest.mark.parametrize("write", [1, 2], ids=["first-create", "second-create"])
@pytest.mark.parametrize("moment", list(KillMoment), ids=[m.name.lower() for m in KillMoment])
def test_a_cycle_killed_mid_create_reruns_with_no_duplicate(
    tmp_path: Path, moment: KillMoment, write: int
) -> None:
    world = GoogleWorld(tmp_path / "home", BOTH_WAYS)
    proxy = KillProxy(world.server.url)  # type: ignore[union-attr]
    try:
        settings = dataclasses.replace(world.settings, server_url=proxy.url)
        world.service.configure_server(settings, world.key)
        for n in range(2):
            world.crm.create_contact(
                world.rep.id, Contact(f"P{n}", "Kill", email=f"p{n}@kill.test")
            )
            start = START + dt.timedelta(hours=3 * n)
            world.crm.create_event(
                world.rep.id,
                Event(f"Meeting {n}", EventTiming(start, start + dt.timedelta(hours=1))),
            )

        killed = run_worker(
            world.home, world.email, proxy, is_create, at_request=write, moment=moment
        )
        assert killed == -9
        assert proxy.kills and is_create(proxy.kills[0].request)
        assert run_worker(world.home, world.email) == 0

        contacts = Counter(
            address["value"]
            for person in world.fake.people.book(world.email).people.values()
            if not person.get("metadata", {}).get("deleted")
            for address in person.get("emailAddresses", ())
        )
        assert contacts == {"p0@kill.test": 1, "p1@kill.test": 1}
        events = Counter(
            e.get("summary")
            for e in world.fake.calendar.calendar(world.email).events.values()
            if e.get("status") != "cancelled"
        )
        assert events == {"Meeting 0": 1, "Meeting 1": 1}
        for kind in ItemKind:
            assert len(world.crm_records(kind)) == 2
        assert run_worker(world.home, world.email) == 0
        assert world.sync().writes == 0
    finally:
        proxy.close()
        world.close()
