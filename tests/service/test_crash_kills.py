"""Crash safety in incremental cycles (DESIGN rule 5): kills at every kind of moment.

A rep's contacts and events are synced between the built-in CRM and Radicale. Each trial
makes the changes people make between cycles (edits on either side, deletions, a
conflict, a deletion against an edit both ways, new items on both sides), then runs a
cycle in a process of its own behind a proxy that SIGKILLs it at its n-th request to the
server: before forwarding it, after the server applied it but before the reply, or just
after the reply. Then a person changes some of the items the killed cycle wrote, the way
a rep would who saw them arrive, and a cycle runs to its end.

Checked after each trial: no item twice on either side; every item holds what the
conflict setting says, except that a change a person made after our write landed is the
last word; both sides and the links agree; a further cycle writes nothing.

The default run makes a few dozen kills; the ``slow`` variant, several hundred.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Record
from crmsync.domain.settings import ConflictBehaviour, ContactSettings, EventSettings, SyncConfig
from tests.servers import (
    REP_EMAIL,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    DavServerInfo,
    start_radicale,
)
from tests.service.crash_worker import worker_env
from tests.service.http_proxy import Counting, KillMoment, KillProxy, Request
from tests.service.worlds import World

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("crash_worker.py")
ITEMS = 24  # per kind, synced before the first trial
# Requests a trial's cycle makes, until a cycle that ran to its end tells: discovery, the
# listings per kind and round, the writes. Kill points are drawn up to it.
FIRST_ESTIMATE = 20
MOMENTS = list(KillMoment)


# ---------------------------------------------------------------------- items


def contact(n: int, title: str) -> Contact:
    return Contact(
        first_name=f"P{n:03d}", last_name="Kill", email=f"p{n:03d}@kill.test", title=title
    )


def event(n: int, location: str) -> Event:
    start = dt.datetime(2030, 6, 1, 8, tzinfo=dt.UTC) + dt.timedelta(hours=3 * n)
    return Event(
        f"Meeting {n:03d}",
        EventTiming(start, start + dt.timedelta(hours=1)),
        location=location,
    )


MAKERS: dict[ItemKind, Callable[[int, str], Record]] = {
    ItemKind.CONTACT: contact,
    ItemKind.EVENT: event,
}


def key_of(record: Record) -> str:
    return record.email if isinstance(record, Contact) else record.subject  # type: ignore[union-attr]


def vcard(record: Contact, uid: str) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:{record.first_name} {record.last_name}\r\n"
        f"N:{record.last_name};{record.first_name};;;\r\n"
        f"EMAIL;TYPE=INTERNET:{record.email}\r\nTITLE:{record.title}\r\nEND:VCARD\r\n"
    )


def vevent(record: Event, uid: str) -> str:
    start, end = record.timing.start, record.timing.end
    assert isinstance(start, dt.datetime) and isinstance(end, dt.datetime)
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//client//kill test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
        f"DTSTART:{start.strftime(stamp)}\r\nDTEND:{end.strftime(stamp)}\r\n"
        f"SUMMARY:{record.subject}\r\nLOCATION:{record.location}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


# ---------------------------------------------------------------------- the world


class KillWorld:
    """One rep, the CRM, Radicale behind a `KillProxy`, and what each item should hold."""

    def __init__(self, tmp_path: Path, conflict: ConflictBehaviour) -> None:
        self.radicale = start_radicale(tmp_path)
        self.proxy = KillProxy(self.radicale.url)
        info = DavServerInfo(
            "radicale", self.proxy.url, SERVICE_ACCOUNT, SERVICE_PASSWORD, "/{email}/", REP_EMAIL
        )
        config = SyncConfig(
            name="Sales",
            contacts=ContactSettings(conflict=conflict, propagate_deletions=True),
            events=EventSettings(conflict=conflict, sync_private=True),
        )
        self.world = World(info, tmp_path / "home", config)
        self.conflict = conflict
        self.next_number = 0
        self.expected: dict[ItemKind, dict[str, Record]] = {kind: {} for kind in MAKERS}
        for kind, make in MAKERS.items():
            for _ in range(ITEMS):
                record = make(self._number(), "v0")
                self.world.crm.add_record(kind, self.world.rep.id, record)
                self.expected[kind][key_of(record)] = record
        self.world.sync()

    def _number(self) -> int:
        self.next_number += 1
        return self.next_number

    def close(self) -> None:
        self.world.close()
        self.proxy.close()
        self.radicale.stop()

    # -- each side as a person sees it, by natural key --------------------------------

    def crm_items(self, kind: ItemKind) -> dict[str, list[tuple[str, Record]]]:
        found: dict[str, list[tuple[str, Record]]] = {}
        for stored in self.world.crm.list_records(kind, owner_id=self.world.rep.id):
            found.setdefault(key_of(stored.record), []).append((stored.id, stored.record))
        return found

    def mail_items(self, kind: ItemKind) -> dict[str, list[tuple[str, Record]]]:
        found: dict[str, list[tuple[str, Record]]] = {}
        for seen in self.world.mail_items(kind).values():
            assert seen.record is not None, seen
            found.setdefault(key_of(seen.record), []).append((seen.id, seen.record))
        return found

    def ids(self, kind: ItemKind) -> dict[str, dict[str, str]]:
        """Each item's id on each side ("crm", "mail"), by natural key."""
        return {
            side: {key: found[0][0] for key, found in items.items()}
            for side, items in (("crm", self.crm_items(kind)), ("mail", self.mail_items(kind)))
        }

    def change(self, kind: ItemKind, side: str, item_id: str, record: Record | None) -> None:
        """Edit (or, with ``None``, delete) an item as a person using that side would."""
        if side == "crm":
            if record is None:
                self.world.crm.delete_record(kind, item_id)
            else:
                self.world.crm.update_record(kind, item_id, record)
            return
        collection = self.world.collection(kind)
        seen = collection.fetch(item_id)
        assert seen is not None
        if record is None:
            collection.delete(item_id, seen.version)
        else:
            collection.update(item_id, seen.version, record)

    def mail_create(self, kind: ItemKind, record: Record) -> None:
        uid = f"client-{key_of(record).replace('@', '-').replace(' ', '-')}"
        text = vcard(record, uid) if isinstance(record, Contact) else vevent(record, uid)  # type: ignore[arg-type]
        response = self.world.put_raw(kind, uid, text)
        assert response.status_code in (200, 201, 204), response.text

    # -- one trial ---------------------------------------------------------------------

    def people_change(self, kind: ItemKind, rng: random.Random, trial: int) -> list[Planned]:
        """The changes of one trial; returns the writes the next cycle is due to make."""
        make, expected = MAKERS[kind], self.expected[kind]
        keys = rng.sample(sorted(expected), 7)
        a, b, c, d, e, f, g = keys
        number = {key: int(key_number(key)) for key in keys}
        crm_new = {k: make(number[k], f"crm {trial}") for k in (a, c, g)}
        mail_new = {k: make(number[k], f"mail {trial}") for k in (b, c, f)}
        ids = self.ids(kind)
        for k, record in crm_new.items():
            self.change(kind, "crm", ids["crm"][k], record)
        for k, record in mail_new.items():
            self.change(kind, "mail", ids["mail"][k], record)
        for side, k in (("crm", d), ("mail", e), ("crm", f), ("mail", g)):
            self.change(kind, side, ids[side][k], None)
        h, i = make(self._number(), f"new crm {trial}"), make(self._number(), f"new mail {trial}")
        self.world.crm.add_record(kind, self.world.rep.id, h)
        while len(expected) < ITEMS:  # make up for the deletions people made after kills
            more = make(self._number(), f"new crm {trial}")
            self.world.crm.add_record(kind, self.world.rep.id, more)
            expected[key_of(more)] = more
        self.mail_create(kind, i)

        winner = crm_new[c] if self.conflict is ConflictBehaviour.CRM_WINS else mail_new[c]
        loser = "mail" if self.conflict is ConflictBehaviour.CRM_WINS else "crm"
        del expected[d], expected[e]
        expected.update({a: crm_new[a], b: mail_new[b], c: winner, f: mail_new[f], g: crm_new[g]})
        expected[key_of(h)], expected[key_of(i)] = h, i
        return [
            Planned(a, "mail", crm_new[a]),
            Planned(b, "crm", mail_new[b]),
            Planned(c, loser, winner),
            Planned(f, "crm", mail_new[f]),
            Planned(g, "mail", crm_new[g]),
            Planned(key_of(h), "mail", h),
            Planned(key_of(i), "crm", i),
        ]

    def run_killed_cycle(
        self, at_request: int, moment: KillMoment, counting: Counting | None = None
    ) -> int | None:
        """A cycle in a worker process, killed at its ``at_request``-th request (of those
        ``counting`` is true for, if given). Returns ``None`` when the kill landed, else
        how many requests the cycle made (a cycle with fewer requests than ``at_request``
        ends on its own)."""
        process = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.world.home), self.world.server.email],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
            cwd=REPO,
        )
        kills, requests = len(self.proxy.kills), self.proxy.requests
        self.proxy.arm(process.pid, at_request, moment, counting)
        try:
            out, err = process.communicate(timeout=120)
        finally:
            self.proxy.disarm()
        if len(self.proxy.kills) > kills:
            assert process.returncode == -9, (process.returncode, out, err)
            return None
        assert process.returncode == 0, f"cycle failed: {out}\n{err}"
        return self.proxy.requests - requests

    def people_change_what_landed(
        self, kind: ItemKind, planned: list[Planned], rng: random.Random, trial: int
    ) -> None:
        """A rep who saw our writes arrive edits or deletes some of them."""
        make, expected = MAKERS[kind], self.expected[kind]
        sides = {"crm": self.crm_items(kind), "mail": self.mail_items(kind)}
        deletes = 0
        for write in planned:
            there = sides[write.target].get(write.key, [])
            if [record for _, record in there] != [write.record]:
                continue  # our write has not landed there
            choice = rng.choice(["edit", "edit", "delete", "nothing"])
            ((item_id, _),) = there
            if choice == "delete" and deletes < 2:
                deletes += 1
                self.change(kind, write.target, item_id, None)
                del expected[write.key]
            elif choice != "nothing":
                later = make(int(key_number(write.key)), f"later {trial}")
                self.change(kind, write.target, item_id, later)
                expected[write.key] = later

    def check(self, kind: ItemKind) -> None:
        expected = self.expected[kind]
        crm, mail = self.crm_items(kind), self.mail_items(kind)
        for side, items in (("mail side", mail), ("CRM", crm)):
            twice = {key: len(found) for key, found in items.items() if len(found) > 1}
            assert twice == {}, f"duplicates in the {side}: {twice}"
        wrong = {
            key: (record, crm.get(key), mail.get(key))
            for key, record in expected.items()
            if [r for _, r in crm.get(key, [])] != [record]
            or [r for _, r in mail.get(key, [])] != [record]
        }
        assert wrong == {}, f"items not as expected (expected, CRM, mail): {wrong}"
        extra = (set(crm) | set(mail)) - set(expected)
        assert extra == set(), f"items that should be gone: {extra}"
        links = self.world.service.store.links(self.world.rep.id, kind)
        assert len(links) == len(expected)


@dataclass(frozen=True)
class Planned:
    """A write the cycle is due to make: on ``target``, the item ``key`` becomes ``record``."""

    key: str
    target: str
    record: Record


def key_number(key: str) -> str:
    """The item number in a contact's email or an event's subject."""
    return key.removeprefix("p").removesuffix("@kill.test").removeprefix("Meeting ")


# ---------------------------------------------------------------------- the tests


@pytest.fixture(params=list(ConflictBehaviour), ids=lambda c: c.value)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KillWorld]:
    made = KillWorld(tmp_path, request.param)
    try:
        yield made
    finally:
        made.close()


def _is_put(request: Request) -> bool:
    return request.method == "PUT"


def run_trials(world: KillWorld, trials: int, seed: int) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    kills: list[tuple[int, str, str]] = []
    estimate = FIRST_ESTIMATE
    for trial in range(trials):
        kind = list(MAKERS)[trial % 2]
        planned = world.people_change(kind, rng, trial)
        moment = MOMENTS[trial % len(MOMENTS)]
        if trial % 4 == 3:
            # Every fourth kill at one of the cycle's first PUTs, at each moment in turn:
            # drawn among all requests, a dozen kills could all miss the writes.
            at_request = rng.randint(1, 2)
            made = world.run_killed_cycle(at_request, moment, counting=_is_put)
        else:
            at_request = rng.randint(1, estimate)
            made = world.run_killed_cycle(at_request, moment)
            if made is not None:
                estimate = made
        if made is None:
            kill = world.proxy.kills[-1]
            kills.append((at_request, kill.request.method, moment.value))
        world.people_change_what_landed(kind, planned, rng, trial)
        world.world.sync()
        world.check(kind)
        assert world.world.service.sync_rep(world.world.rep).writes == 0
    return kills


def test_incremental_cycles_killed_anywhere_leave_no_duplicate_and_no_lost_edit(
    world: KillWorld,
) -> None:
    kills = run_trials(world, trials=12, seed=20261205 + len(world.conflict.value))
    print(f"{world.conflict.value}: {len(kills)} kills: {kills}")
    assert len(kills) >= 10
    assert {moment for _, _, moment in kills} == {m.value for m in KillMoment}
    assert any(method == "PUT" for _, method, _ in kills)


@pytest.mark.slow
def test_many_kills_in_incremental_cycles(world: KillWorld) -> None:
    kills = run_trials(world, trials=120, seed=7 + len(world.conflict.value))
    print(f"{world.conflict.value}: {len(kills)} kills")
    assert len(kills) >= 100
