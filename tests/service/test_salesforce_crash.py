"""A cycle SIGKILLed mid-create against Salesforce, then run again: no duplicate anywhere.

Items made in the rep's calendar and address book are due to be created in Salesforce.
The cycle runs in a process of its own (`crash_worker.py`) reaching the fake Salesforce
through a `KillProxy`, which kills it at its first or second write to Salesforce: before
forwarding the write, after Salesforce applied it but before the answer, or right after
the answer. A second cycle then runs to its end: each item is in Salesforce once (a
contact's create is an upsert on the marker; an event's is found by its marker), nothing
is twice in the mailbox, and a further cycle writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from tests.servers import running_dav_server
from tests.service.crash_worker import run_worker
from tests.service.http_proxy import KillMoment, KillProxy, Request
from tests.service.salesforce_world import SalesforceWorld
from tests.service.worlds import BOTH_WAYS

START = dt.datetime(2030, 6, 3, 8, tzinfo=dt.UTC)


def is_write(request: Request) -> bool:
    return request.method in ("POST", "PATCH", "DELETE") and "/services/data/" in request.path


@pytest.mark.parametrize("write", [1, 2], ids=["first-write", "second-write"])
@pytest.mark.parametrize("moment", list(KillMoment), ids=[m.name.lower() for m in KillMoment])
def test_a_cycle_killed_mid_create_reruns_with_no_duplicate(
    tmp_path: Path, moment: KillMoment, write: int
) -> None:
    with running_dav_server("radicale", tmp_path) as server:
        world = SalesforceWorld(server, tmp_path / "home", BOTH_WAYS)
        proxy = KillProxy(world.fake.url)
        try:
            settings = world.service.crm_settings()
            world.service.configure_crm(replace(settings, my_domain_url=proxy.url))
            for n in range(2):
                world.mailbox.contacts.create(
                    Contact(first_name=f"P{n}", last_name="Kill", email=f"p{n}@kill.test"),
                    marker=f"client-contact-{n}",
                )
                start = START + dt.timedelta(hours=3 * n)
                world.mailbox.events.create(
                    Event(f"Meeting {n}", EventTiming(start, start + dt.timedelta(hours=1))),
                    marker=f"client-event-{n}",
                )

            killed = run_worker(
                world.home, world.server.email, proxy, is_write, at_request=write, moment=moment
            )
            assert killed == -9
            assert proxy.kills and is_write(proxy.kills[0].request)
            assert run_worker(world.home, world.server.email) == 0

            contacts = Counter(r["Email"] for r in world.rows("Contact", LastName="Kill"))
            events = Counter(r["Subject"] for r in world.rows("Event"))
            assert contacts == {"p0@kill.test": 1, "p1@kill.test": 1}
            assert events == {"Meeting 0": 1, "Meeting 1": 1}
            for kind in ItemKind:
                assert len(world.mail_items(kind)) == 2
            assert run_worker(world.home, world.server.email) == 0
            assert world.sync().writes == 0
        finally:
            proxy.close()
            world.close()
