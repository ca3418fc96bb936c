"""What a cycle with edits on both sides costs on the mail server (issue 16's churn).

One contact and one event edited by the rep on the server, another of each in the CRM: a
client doing this by hand sends, per kind, a sync-collection REPORT, a GET of the item the
REPORT names and a PUT of the CRM's edit (6 requests). crmsync sends per kind the REPORT,
one multiget that reads the server's edit and, along with it, the text of the item the CRM's
edit updates (an update keeps every line crmsync does not map, so it needs that text) and
the PUT: 6 requests, no GET. Xandikos' tokens name a content state, so from a token taken
before a write, that item's deletion or its return to the earlier content would be no change
at all; instead of a settling REPORT after the writes, the saved cursor names the items
written after its token, and the next cycle reads those the listing leaves out
(tests/service/test_written_after_token.py). That next cycle, with nothing changed, sends
only the two REPORTs: our own writes come back with the ETags the links hold.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.crm.builtin.rows import OwnedKind
from crmsync.domain.records import Contact, Event, EventTiming, ItemKind
from tests.servers import DavServerInfo, running_dav_server
from tests.service.worlds import BOTH_WAYS, World, at


def _edited_on_server(kind: ItemKind, text: str) -> str:
    if kind is ItemKind.CONTACT:
        return text.replace("END:VCARD", "TITLE:Edited on the server\r\nEND:VCARD")
    return re.sub(r"SUMMARY:[^\r\n]*", "SUMMARY:Edited on the server", text, count=1)


@pytest.fixture
def radicale(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_dav_server("radicale", tmp_path / "server") as info:
        yield info


def test_a_churn_cycle_reads_the_updated_items_along_with_the_changes(
    radicale: DavServerInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(radicale, tmp_path / "home", BOTH_WAYS)
    try:
        for i in range(2):
            world.crm.create_contact(world.rep.id, Contact(f"Ann{i}", "Lee", email=f"a{i}@x.test"))
            world.crm.create_event(
                world.rep.id, Event(f"Call {i}", EventTiming(at(4 + i, 9), at(4 + i, 10)))
            )
        world.sync()
        world.sync()
        for kind in (ItemKind.CONTACT, ItemKind.EVENT):
            on_server, in_crm = sorted(
                world.service.store.links(world.rep.id, kind), key=lambda k: k.crm_id
            )
            text = world.raw_texts(kind)[on_server.mail_id]
            response = world.connection.request(
                "PUT",
                on_server.mail_id,
                body=_edited_on_server(kind, text),
                headers={
                    "Content-Type": "text/vcard" if kind is ItemKind.CONTACT else "text/calendar"
                },
            )
            assert response.status_code in (200, 201, 204)
            if kind is ItemKind.CONTACT:
                contact = world.crm.get_contact(in_crm.crm_id).record
                world.crm.update_record(
                    OwnedKind.CONTACT, in_crm.crm_id, replace(contact, title="Edited in the CRM")
                )
            else:
                event = world.crm.get_event(in_crm.crm_id).record
                world.crm.update_record(
                    OwnedKind.EVENT, in_crm.crm_id, replace(event, subject="Edited in the CRM")
                )
        mail = world.service.mail_server()
        before = mail.requests_made
        caplog.set_level(logging.DEBUG, logger="crmsync.groupware.dav.connection")
        report = world.sync()
        sent = Counter(r.args[0] for r in caplog.records if r.name.endswith("dav.connection"))
        assert report.writes == 4
        assert mail.requests_made - before == 6
        assert sent == {"REPORT": 4, "PUT": 2}
        before = mail.requests_made
        assert world.sync().writes == 0
        assert mail.requests_made - before == 2
        titles = {c.title for c in world.crm_records(ItemKind.CONTACT)}  # type: ignore[attr-defined]
        assert {"Edited on the server", "Edited in the CRM"} <= titles
    finally:
        world.close()
