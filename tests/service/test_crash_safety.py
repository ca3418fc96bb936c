"""Crash safety (DESIGN rule 5): an initial sync killed with SIGKILL at many random points.

A rep starts with 150 contacts and 150 events in the built-in CRM and 15 contacts and 15
events a calendar client put on the rep's Radicale folders, so the initial sync writes
both ways. Each cycle runs in a process of its own (``crash_worker.py``) that a proxy in
front of Radicale kills at a random request (before forwarding it, after the server
applied it, or after the reply); the next cycle starts from whatever the killed one left
behind. A
last cycle then runs to completion, and the test checks what rule 5 promises: nothing
twice on either side, nothing lost, every link pointing at items that exist, and a
further cycle with nothing to do.

The kill points come from a seeded RNG, scaled by the requests of one uninterrupted run of
the same data for a twin rep on the same server, and by the progress (items written) so
far, so the kills spread over the whole sync however fast or loaded the machine is.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Record
from crmsync.groupware.dav.ical import parse_ical
from crmsync.groupware.dav.vcard import parse_vcard
from tests.servers import (
    REP_EMAIL,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    DavServerInfo,
    start_radicale,
)
from tests.service.crash_worker import worker_env
from tests.service.http_proxy import KillMoment, KillProxy
from tests.service.worlds import BOTH_WAYS, World, uid_of

UTC = dt.UTC
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("crash_worker.py")
TWIN_EMAIL = "twin@example.com"
MOMENTS = list(KillMoment)

CRM_CONTACTS = 150
CRM_EVENTS = 150
MAIL_CONTACTS = 15
MAIL_EVENTS = 15
KILLS = 24  # attempted; at least MIN_KILLS must land while the cycle is still running
MIN_KILLS = 20
SEED = 20261105
KINDS = (ItemKind.CONTACT, ItemKind.EVENT)


# ---------------------------------------------------------------------- the data


def crm_contacts() -> list[Contact]:
    return [
        Contact(
            first_name=f"Cora{i:03d}",
            last_name=f"Crm{i:03d}",
            email=f"cora{i:03d}@crm.example",
            title="Buyer" if i % 3 else "",
            phone=f"+1 555 01{i:03d}" if i % 4 == 0 else "",
            account_name=f"Acme {i % 7}" if i % 5 == 0 else "",
        )
        for i in range(CRM_CONTACTS)
    ]


def crm_events() -> list[Event]:
    events = []
    base = dt.datetime(2030, 4, 1, 8, tzinfo=UTC)
    for i in range(CRM_EVENTS):
        if i % 10 == 0:
            day = dt.date(2030, 5, 1) + dt.timedelta(days=i)
            timing = EventTiming(day, day + dt.timedelta(days=1))
        elif i % 7 == 0:
            start = base + dt.timedelta(days=i, hours=1)
            timing = EventTiming(start, start + dt.timedelta(minutes=45), "Europe/Berlin")
        else:
            start = base + dt.timedelta(days=i // 3, hours=i % 3 * 2)
            timing = EventTiming(start, start + dt.timedelta(hours=1), "UTC")
        events.append(Event(f"CRM meeting {i:03d}", timing, location="Room 1" if i % 2 else ""))
    return events


def mail_contact_texts() -> dict[str, str]:
    """Name → vCard, as a client writes them (own UIDs, no crmsync marker)."""
    return {
        f"client-card-{i:02d}": (
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"UID:client-card-{i:02d}\r\n"
            f"FN:Milo Mail{i:02d}\r\nN:Mail{i:02d};Milo;;;\r\n"
            f"EMAIL;TYPE=INTERNET:milo{i:02d}@client.example\r\n"
            "END:VCARD\r\n"
        )
        for i in range(MAIL_CONTACTS)
    }


def mail_event_texts() -> dict[str, str]:
    return {
        f"client-event-{i:02d}": (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//client//test//EN\r\n"
            "BEGIN:VEVENT\r\n"
            f"UID:client-event-{i:02d}\r\n"
            "DTSTAMP:20300101T000000Z\r\n"
            f"DTSTART:203006{i + 1:02d}T090000Z\r\n"
            f"DTEND:203006{i + 1:02d}T100000Z\r\n"
            f"SUMMARY:Client call {i:02d}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        for i in range(MAIL_EVENTS)
    }


@dataclass
class Originals:
    """What the world held before the first cycle, by kind."""

    crm_ids: dict[ItemKind, set[str]]
    records: dict[ItemKind, Counter[str]]  # repr of every record, CRM's and the client's
    client_uids: dict[ItemKind, set[str]]


def populate(world: World) -> Originals:
    crm_ids: dict[ItemKind, set[str]] = {kind: set() for kind in KINDS}
    records: dict[ItemKind, Counter[str]] = {kind: Counter() for kind in KINDS}
    for contact in crm_contacts():
        crm_ids[ItemKind.CONTACT].add(world.crm.create_contact(world.rep.id, contact).id)
        records[ItemKind.CONTACT][repr(contact)] += 1
    for event in crm_events():
        crm_ids[ItemKind.EVENT].add(world.crm.create_event(world.rep.id, event).id)
        records[ItemKind.EVENT][repr(event)] += 1
    client_uids: dict[ItemKind, set[str]] = {kind: set() for kind in KINDS}
    for kind, texts, parse in (
        (ItemKind.CONTACT, mail_contact_texts(), parse_vcard),
        (ItemKind.EVENT, mail_event_texts(), parse_ical),
    ):
        for name, text in texts.items():
            response = world.put_raw(kind, name, text)
            assert response.status_code in (200, 201, 204), response.text
            records[kind][repr(parse(text).record)] += 1
            client_uids[kind].add(name)
    return Originals(crm_ids, records, client_uids)


# ---------------------------------------------------------------------- the worker


def start_cycle(world: World) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(world.home), world.server.email],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
        cwd=REPO,
    )


def run_cycle(world: World, proxy: KillProxy, timeout: float = 120.0) -> tuple[int, dict]:
    """One whole cycle in a worker: how many requests it made, and its JSON summary."""
    before = proxy.requests
    process = start_cycle(world)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker failed ({process.returncode}): {out}\n{err}"
    return proxy.requests - before, json.loads(out.strip().splitlines()[-1])


def items_written(world: World, storage: Path, originals: int) -> int:
    """How far the sync got: items on both sides beyond the ones we started with.

    Counted from Radicale's storage folder and the CRM's tables, not from the links,
    which the engine saves in batches.
    """
    rep_root = storage / "collections" / "collection-root" / world.rep.email
    mail = sum(
        1 for path in rep_root.glob("*/*") if path.is_file() and not path.name.startswith(".")
    )
    crm = len(world.crm.list_contacts(owner_id=world.rep.id)) + len(
        world.crm.list_events(owner_id=world.rep.id)
    )
    return mail + crm - originals


# ---------------------------------------------------------------------- the test


@pytest.fixture
def worlds(tmp_path: Path) -> Iterator[tuple[World, World, KillProxy]]:
    radicale = start_radicale(tmp_path, users={TWIN_EMAIL: "twin-secret"})
    proxy = KillProxy(radicale.url)
    info = DavServerInfo(
        "radicale", proxy.url, SERVICE_ACCOUNT, SERVICE_PASSWORD, "/{email}/", REP_EMAIL
    )
    made: list[World] = []
    try:
        made.append(World(info, tmp_path / "home", BOTH_WAYS))
        made.append(World(replace(info, email=TWIN_EMAIL), tmp_path / "twin", BOTH_WAYS))
        yield made[0], made[1], proxy
    finally:
        for world in made:
            world.close()
        proxy.close()
        radicale.stop()


def test_initial_sync_killed_at_random_points_ends_complete_without_duplicates(
    worlds: tuple[World, World, KillProxy], tmp_path: Path
) -> None:
    world, twin, proxy = worlds
    originals = populate(world)
    populate(twin)
    expected_links = sum(sum(c.values()) for c in originals.records.values())

    # Measure in requests: the whole initial sync uninterrupted, and a cycle with nothing
    # to do (discovery and reading), so the kill points need no clock.
    full, summary = run_cycle(twin, proxy)
    assert sum(summary["writes"].values()) > 0
    idle, summary = run_cycle(twin, proxy)
    assert sum(summary["writes"].values()) == 0, summary
    work = max(full - idle, 1)

    # Each kill's request: during discovery or reading now and then, else a random share of
    # the writes still to do, estimated from the items written so far; the moment cycles
    # through before forwarding, applied but unanswered, and after the reply.
    rng = random.Random(SEED)
    kills: list[tuple[int, int]] = []  # (request, items written before the run)
    finished_early = 0
    for attempt in range(2 * KILLS):
        if len(kills) == KILLS:
            break
        before = items_written(world, tmp_path / "radicale", expected_links)
        remaining = work * max(expected_links - before, 0) // expected_links
        if not kills or before >= expected_links or rng.random() < 0.15:
            at_request = rng.randint(1, idle)
        else:
            at_request = idle + rng.randint(1, max(1, 2 * remaining // (KILLS - len(kills))))
        process = start_cycle(world)
        proxy.arm(process.pid, at_request, MOMENTS[attempt % len(MOMENTS)])
        try:
            out, err = process.communicate(timeout=120)
        finally:
            proxy.disarm()
        if process.returncode == -signal.SIGKILL:
            kills.append((at_request, before))
            continue
        assert process.returncode == 0, f"cycle failed: {out}\n{err}"
        finished_early += 1

    assert len(kills) >= MIN_KILLS, (
        f"only {len(kills)} kills landed mid-cycle (seed {SEED}, full run {full} requests, "
        f"idle {idle})"
    )
    # The kills spread over the sync: some before any item was written, several in the middle.
    progress = sorted({before for _, before in kills})
    assert progress[0] == 0 and len(progress) >= 8, progress

    _, summary = run_cycle(world, proxy)
    assert summary["error"] is None
    print(
        f"full {full} requests, idle {idle}, {len(kills)} kills, {finished_early} "
        f"cycles finished first, items written at the kills: {[b for _, b in kills]}"
    )

    # A further cycle finds nothing to do.
    again = world.service.sync_rep(world.rep)
    assert again.error is None and again.writes == 0, again

    store = world.service.store
    assert store.errors(rep_id=world.rep.id) == []
    for kind in KINDS:
        check_kind(world, originals, kind)
    status = store.rep_status(world.rep.id)
    assert status.last_error is None
    assert status.records_in_sync == {kind: sum(originals.records[kind].values()) for kind in KINDS}


def natural_key(record: Record) -> object:
    if isinstance(record, Contact):
        return record.email
    assert isinstance(record, Event)
    return (record.subject, record.timing.start, record.timing.end)


def check_kind(world: World, originals: Originals, kind: ItemKind) -> None:
    expected = originals.records[kind]

    # Mail side: every item once by UID, by marker and by natural key; nothing missing.
    texts = world.raw_texts(kind)
    uids = Counter(uid_of(text) for text in texts.values())
    assert [u for u, n in uids.items() if n > 1 or u is None] == []
    assert originals.client_uids[kind] <= set(uids)
    mail = world.mail_items(kind)
    assert set(mail) == set(texts)
    assert all(seen.record is not None for seen in mail.values())
    markers = Counter(seen.marker for seen in mail.values() if seen.marker is not None)
    assert [m for m, n in markers.items() if n > 1] == []
    assert set(markers) == originals.crm_ids[kind]
    mail_keys = Counter(natural_key(seen.record) for seen in mail.values())
    assert [k for k, n in mail_keys.items() if n > 1] == []
    assert Counter(repr(seen.record) for seen in mail.values()) == expected

    # CRM side: every record once, the originals kept, the client's items added once.
    crm_side = world.crm.side(world.rep.id, kind).changes(None, {})
    crm = {seen.id: seen for seen in crm_side.items}
    assert originals.crm_ids[kind] <= set(crm)
    crm_keys = Counter(natural_key(seen.record) for seen in crm.values())
    assert [k for k, n in crm_keys.items() if n > 1] == []
    assert Counter(repr(seen.record) for seen in crm.values()) == expected
    created_in_crm = Counter(seen.marker for seen in crm.values() if seen.marker is not None)
    assert [m for m, n in created_in_crm.items() if n > 1] == []
    assert set(created_in_crm) <= set(mail)
    assert len(created_in_crm) == len(originals.client_uids[kind])

    # Links: one per pair, each pointing at existing items at their current versions.
    links = world.service.store.links(world.rep.id, kind)
    assert len(links) == sum(expected.values())
    assert len({link.crm_id for link in links}) == len({link.mail_id for link in links})
    assert len({link.mail_id for link in links}) == len(links)
    for link in links:
        assert link.crm_id in crm and link.mail_id in mail, link
        assert link.crm_version == crm[link.crm_id].version, link
        assert link.mail_version == mail[link.mail_id].version, link
        # A pair holds the same content on both sides.
        assert repr(crm[link.crm_id].record) == repr(mail[link.mail_id].record), link
