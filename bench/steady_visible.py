"""steady_state.py's `--visible` mode: how long an edit takes to show on the other side
while `crmsync serve` runs with its default interval.

On the seeded 'linked' snapshot, N reps assigned, `crmsync serve` (its own process, the
state and CRM in SQLite, `--interval` 60 s and 2 cycles at once by default) first runs
every rep once (a warm-up, not measured); then the bench makes `--edits` edits at random
instants spread over `--window` seconds, alternately on the server (a rep edits a
contact's job title or an event's subject: GET, then PUT with If-Match) and in the CRM
(the same fields, through the built-in CRM's own update), each on another rep and item.
An edit is made at the moment its write returned; it is visible once crmsync wrote it to
the other side: the item's link in the state store is then stamped (``synced_at``, taken
right after the write) with a new version of the edited side's counterpart. The store is
read every second; the stamp, not the poll, gives the time. At the end every edit is
checked on the other side itself (the CRM record's field, the server item's text).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_servers
import common
import raw_http
import sample_data
from sqlalchemy import select
from steady_world import CONTENT_TYPES, KINDS

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.groupware.dav.local_server import free_port
from crmsync.store import schema

_L = schema.links
COLUMNS = [
    "M items",
    "N reps",
    "edits made on",
    "edits",
    "visible",
    "p50 s",
    "p95 s",
    "max s",
    "serve's first pass s",
    "load",
]


@dataclass
class Edit:
    at: float  # seconds after the window opened
    rep_id: str
    kind: ItemKind
    crm_id: str
    mail_id: str
    on_server: bool
    token: str
    made: dt.datetime | None = None
    visible: dt.datetime | None = None
    arrived: bool | None = None  # the token found on the other side at the end

    @property
    def seconds(self) -> float | None:
        if self.made is None or self.visible is None:
            return None
        return (self.visible - self.made).total_seconds()


@dataclass
class Visible:
    items: int
    n: int
    edits: list[Edit]
    first_pass: float  # serve's first cycle of every rep, before the edits
    loads: list[float] = field(default_factory=list)

    def rows(self) -> list[list[str]]:
        found = []
        for name, chosen in (
            ("server (to the CRM)", [e for e in self.edits if e.on_server]),
            ("CRM (to the server)", [e for e in self.edits if not e.on_server]),
            ("both", self.edits),
        ):
            times = sorted(e.seconds for e in chosen if e.seconds is not None)
            arrived = sum(1 for e in chosen if e.arrived)
            found.append(
                [
                    common.fmt(self.items),
                    common.fmt(self.n),
                    name,
                    str(len(chosen)),
                    f"{len(times)} ({arrived} checked there)",
                    *(f"{v:.1f}" for v in percentiles(times)),
                    f"{self.first_pass:.0f}",
                    f"{min(self.loads):.1f}-{max(self.loads):.1f}",
                ]
            )
        return found

    def summary(self) -> str:
        times = sorted(e.seconds for e in self.edits if e.seconds is not None)
        p50, p95, top = percentiles(times)
        lost = len(self.edits) - len(times)
        verdict = "MET" if times and p95 < 60 and not lost else "MISSED"
        if self.n < 1000:
            verdict = f"{verdict} at {self.n} reps (the target is stated at 1,000: no verdict)"
        return (
            f"{self.n} reps x {self.items}: p50 {p50:.1f} s, p95 {p95:.1f} s, max {top:.1f} s"
            f" over {len(times)} of {len(self.edits)} edits; {verdict}"
        )


def percentiles(times: list[float]) -> tuple[float, float, float]:
    """p50, p95 (nearest rank: the value below which 95 % of the edits fall) and max."""
    if not times:
        return (float("nan"),) * 3  # type: ignore[return-value]
    rank = max(0, -(-95 * len(times) // 100) - 1)
    return statistics.median(times), times[rank], times[-1]


def run(world: Any, n: int, args: Any) -> Visible:
    world.restore("linked")
    home = world.live / "home"
    service = sample_data.open_service(home)
    reps = [service.rep_by_email(e) for e in bench_servers.rep_emails(n)]
    service.store.save_config(SyncConfig("bench", user_ids=tuple(r.id for r in reps)))
    edits = plan_edits(service, reps, args)
    log = world.work / f"serve-{n}.log"
    env = {**os.environ, "CRMSYNC_HOME": str(home)}
    opened = dt.datetime.now(dt.UTC)
    argv = ["serve", "--port", str(free_port()), "--interval", f"{args.interval:g}"]
    serve = common.start_crmsync(argv, env, log)
    loads = [os.getloadavg()[0]]
    try:
        warm = wait_for_pass(service, [r.id for r in reps], opened, serve, log)
        print(
            f"[M={world.items} N={n}] serve's first pass over every rep took {warm:.0f} s "
            f"(not measured); edits start",
            flush=True,
        )
        watcher = threading.Thread(target=watch, args=(service, edits), daemon=True)
        watcher.start()
        t0 = time.monotonic()
        with raw_http.raw_client(world.server) as client:
            for edit in edits:
                time.sleep(max(0.0, t0 + edit.at - time.monotonic()))
                make_edit(service, client, world.server, edit)
                loads.append(os.getloadavg()[0])
        deadline = time.monotonic() + 3 * args.interval + 120
        while any(e.visible is None for e in edits) and time.monotonic() < deadline:
            time.sleep(1.0)
            loads.append(os.getloadavg()[0])
    finally:
        common.stop_processes([serve], 120)
    with raw_http.raw_client(world.server) as client:
        for edit in edits:
            edit.arrived = arrived(service, client, world.server, edit)
    service.close()
    print(
        f"[M={world.items} N={n}] {sum(e.visible is not None for e in edits)} of "
        f"{len(edits)} edits visible",
        flush=True,
    )
    return Visible(world.items, n, edits, warm, loads)


def edits_problem(edits: int, reps: int, items: int) -> str | None:
    """Why ``edits`` edits cannot be planned on ``reps`` reps of ``items`` contacts and as
    many events each, or ``None``: every edit takes an item of its own (two edits of one
    item would be seen as one), so there are at most 2 x N x M."""
    most = 2 * reps * items
    if 1 <= edits <= most:
        return None
    return (
        f"--visible --edits {edits}: give between 1 and {most}, one contact or event each "
        f"({reps} reps x {items} contacts and {items} events, none edited twice)"
    )


def plan_edits(service: Any, reps: list[Any], args: Any) -> list[Edit]:
    """Random instants over the window; sides alternate and kinds every two edits (a rep
    out of one kind's items takes the other's); each edit on another rep and, once every
    rep has one, on another item of that rep: no item is edited twice."""
    rng = random.Random(args.seed)
    instants = sorted(rng.uniform(0, args.window) for _ in range(args.edits))
    unedited = {
        (rep.id, kind): sorted(service.store.links(rep.id, kind), key=lambda k: k.crm_id)
        for rep in reps[: args.edits]  # the reps that get an edit
        for kind in KINDS
    }
    edits = []
    for i, at in enumerate(instants):
        rep = reps[i % len(reps)]
        preferred_first = KINDS if (i // 2) % 2 == 0 else KINDS[::-1]
        kind = next((k for k in preferred_first if unedited[rep.id, k]), None)
        if kind is None:
            raise SystemExit(f"edit {i + 1}: every linked item of rep {rep.id} is edited already")
        link = unedited[rep.id, kind].pop(0)
        edits.append(
            Edit(
                at,
                rep.id,
                kind,
                link.crm_id,
                link.mail_id,
                i % 2 == 0,
                f"Visible edit {i} {rng.randrange(10**9)}",
            )
        )
    return edits


def make_edit(service: Any, client: Any, server: bench_servers.Server, edit: Edit) -> None:
    if edit.on_server:
        url = server.url + edit.mail_id
        got = client.get(url)
        text = sample_data.retitled(got.text, edit.kind, edit.token)
        response = client.put(
            url,
            content=text.encode(),
            headers={"Content-Type": CONTENT_TYPES[edit.kind], "If-Match": got.headers["ETag"]},
        )
        if response.status_code not in (200, 201, 204):
            print(f"WARNING: server edit of {edit.mail_id}: HTTP {response.status_code}")
            return
    else:
        sample_data.retitle_in_crm(service.crm, edit.kind, edit.crm_id, edit.token)
    edit.made = dt.datetime.now(dt.UTC)


def watch(service: Any, edits: list[Edit]) -> None:
    """Every second: the link stamps of edits made and not yet visible."""
    while any(e.visible is None for e in edits):
        for edit in [e for e in edits if e.made is not None and e.visible is None]:
            with service.store.engine.connect() as conn:
                stamp = conn.execute(
                    select(_L.c.synced_at).where(
                        _L.c.rep_id == edit.rep_id,
                        _L.c.kind == edit.kind.value,
                        _L.c.crm_id == edit.crm_id,
                    )
                ).scalar_one_or_none()
            if stamp is not None and stamp > edit.made:
                edit.visible = stamp
        time.sleep(1.0)


def arrived(service: Any, client: Any, server: bench_servers.Server, edit: Edit) -> bool:
    if edit.on_server:
        if edit.kind is ItemKind.CONTACT:
            return bool(service.crm.get_contact(edit.crm_id).record.title == edit.token)
        return bool(service.crm.get_event(edit.crm_id).record.subject == edit.token)
    return edit.token in client.get(server.url + edit.mail_id).text


def wait_for_pass(
    service: Any,
    rep_ids: list[str],
    since: dt.datetime,
    serve: subprocess.Popen[bytes],
    log: Path,
) -> float:
    """Seconds until every rep finished a cycle after ``since``; SystemExit once
    `common.PASS_TIMEOUT` passed or serve exited."""

    def check() -> None:
        if serve.poll() is not None:
            raise SystemExit(f"crmsync serve exited; see its log, {log}")

    wall, _ = common.wait_for_pass(service.store.engine, rep_ids, since, poll=1.0, check=check)
    return wall
