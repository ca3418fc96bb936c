"""What a cycle with edits on both sides costs in the state store (issue 16's churn).

One contact and one event edited by the rep on the server, another of each in the CRM.
Per kind the cycle must read its links once, record its write intents before writing,
save the links and settle the intents after, and save its cursors (with the round's audit
entries) after the round; no settling round follows, as both sides' cursors answer for
the round's writes. The closing write stamps the cycle and counts the records synced.
Nothing more: a status, cursor or count written on its own, or a settling round, make
this fail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

from sqlalchemy import event

from crmsync.crm.builtin.rows import OwnedKind
from crmsync.domain.records import ItemKind
from tests.servers import running_dav_server
from tests.service.test_quiet_cycle_cost import StatementCount, quiet_world
from tests.service.worlds import World

KINDS = (ItemKind.CONTACT, ItemKind.EVENT)
# Per kind: links read (2 with BEGIN), intents (2), links and settled intents (3), cursors
# and audit (3); the opening read (6) and closing write (3 with the activity counts, one
# statement per kind).
MOST_STATEMENTS = 6 + 2 * 10 + 2 + 2
WRITE_COMMITS = 2 * 3 + 1
READ_COMMITS = 1 + 2


def _edit_on_server(world: World, kind: ItemKind, href: str) -> None:
    text = world.raw_texts(kind)[href]
    if kind is ItemKind.CONTACT:
        text = text.replace("END:VCARD", "TITLE:Edited on the server\r\nEND:VCARD")
        content_type = "text/vcard"
    else:
        text = re.sub(r"SUMMARY:[^\r\n]*", "SUMMARY:Edited on the server", text, count=1)
        content_type = "text/calendar"
    response = world.connection.request(
        "PUT", href, body=text, headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 201, 204)


def _edit_in_crm(world: World, kind: ItemKind, crm_id: str) -> None:
    if kind is ItemKind.CONTACT:
        contact = world.crm.get_contact(crm_id).record
        world.crm.update_record(OwnedKind.CONTACT, crm_id, replace(contact, title="Edited"))
    else:
        event_ = world.crm.get_event(crm_id).record
        world.crm.update_record(OwnedKind.EVENT, crm_id, replace(event_, subject="Edited"))


def test_a_churn_cycle_writes_each_kind_in_four_transactions(tmp_path: Path) -> None:
    with running_dav_server("radicale", tmp_path / "server") as server:
        world = quiet_world(server, tmp_path / "home", 3)
        try:
            store = world.service.store
            for kind in KINDS:
                on_server, in_crm, _ = sorted(
                    store.links(world.rep.id, kind), key=lambda k: k.crm_id
                )
                _edit_on_server(world, kind, on_server.mail_id)
                _edit_in_crm(world, kind, in_crm.crm_id)
            since = dt.datetime.now(dt.UTC)  # counts are per hour: compare before and after
            before = [store.synced_since(kind, since) for kind in KINDS]
            count = StatementCount()
            event.listen(store.engine, "before_cursor_execute", count.on_execute)
            event.listen(store.engine, "commit", count.on_commit)
            try:
                report = world.sync()
            finally:
                event.remove(store.engine, "before_cursor_execute", count.on_execute)
                event.remove(store.engine, "commit", count.on_commit)
            assert report.writes == 4
            after = [store.synced_since(kind, since) for kind in KINDS]
            assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2]
        finally:
            world.close()
    assert count.write_commits == WRITE_COMMITS, count
    assert count.commits - count.write_commits <= READ_COMMITS, count
    assert count.statements <= MOST_STATEMENTS, count
