"""steady_state.py's phases: what one `python bench/steady_state.py --child crmsync|raw ...`
process runs over the N reps of a restored snapshot, timing only its own block and
printing one JSON line (bench/pairs.py).

- crmsync: `SyncService.sync_rep` per rep, discovery warmed first (as in a long-running
  `serve`); SQL statements and commits are counted on the state store's engine
  (SQLAlchemy events).
- raw, `--raw floor`: per rep a sync-collection REPORT per kind with the token crmsync
  saved, a GET per item it names, then the PUTs of the CRM edits (rendered before the
  clock starts) with If-Match.
- raw, `--raw faithful`: crmsync's requests instead: per kind the REPORT, one multiget of
  the items it names and of those the CRM edits update, then that kind's PUTs (see
  tests/service/test_churn_cycle_cost.py).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_servers
import pairs
import raw_http
import sample_data
from sqlalchemy import event
from steady_world import CONTENT_TYPES, KINDS

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Side
from crmsync.groupware.dav.collection import WRITTEN_AFTER
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.multistatus import multiget_body, sync_collection_body
from crmsync.groupware.dav.vcard import VCardFormat

REPORT_HEADERS = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
# The multiget each kind's format sends (the report, and the property holding the text).
MULTIGETS = {
    kind.value: (format.multiget_report, format.data_property)
    for kind, format in ((ItemKind.CONTACT, VCardFormat), (ItemKind.EVENT, ICalendarFormat))
}
# Per rep: its collections by kind, the sync tokens crmsync saved, the CRM edits' PUTs.
RepPlan = tuple[dict[str, str], dict[str, str], list[dict[str, str]]]


def run(args: argparse.Namespace) -> None:
    """The phase ``args.child`` names, over the slice ``args.part`` of the first N reps."""
    work = Path(args.work)
    server = pairs.load_server(work / "server.json")
    service = sample_data.open_service(work / "live" / "home")
    reps = [service.rep_by_email(email) for email in bench_servers.rep_emails(args.n)]
    part, parts = (int(x) for x in args.part.split("/"))
    reps = reps[part::parts]
    if args.child == "crmsync":
        result = child_crmsync(service, server, reps, args.profile)
    else:
        plan = raw_plan(service, reps, work, churned=args.state == "churned")
        result = child_raw(server, plan, faithful_rep if args.raw == "faithful" else floor_rep)
    service.close()
    pairs.emit(result)


def child_crmsync(
    service: Any, server: bench_servers.Server, reps: list[Any], profile: str | None = None
) -> dict[str, Any]:
    # Discovery warmed, as a running service keeps it (a day): the pass is the steady state.
    mail = service.mail_server()
    for rep in reps:
        mail.open(rep.email)
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    engine = service.store.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    writes = errors = 0
    # CPU time, not wall time: what the profile explains is crmsync's own client CPU.
    profiler = cProfile.Profile(time.process_time) if profile else None
    with pairs.TimedBlock(server, lambda: mail.requests_made) as timed:
        if profiler:
            profiler.enable()
        for rep in reps:
            report = service.sync_rep(rep)
            if report.error:
                print(f"WARNING: {rep.email}: {report.error}")
                errors += 1
            writes += report.writes
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(profile)
        print(f"cProfile of the pass written to {profile}", file=sys.stderr)
    return {**timed.as_dict(), **counts, "writes": writes, "errors": errors}


def raw_plan(service: Any, reps: list[Any], work: Path, churned: bool) -> list[RepPlan]:
    """Per rep, what a raw loop works from: its collections by kind, the sync tokens
    crmsync saved, and the PUTs of the CRM edits (churn only)."""
    collections = json.loads((work / "collections.json").read_text())
    puts = json.loads((work / "puts.json").read_text()) if churned else {}
    return [
        (
            collections[rep.email],
            {kind.value: sync_token(service, rep, kind) for kind in KINDS},
            puts.get(rep.email, []),
        )
        for rep in reps
    ]


def sync_token(service: Any, rep: Any, kind: ItemKind) -> str:
    """The sync-token of the rep's saved cursor, without the hrefs written after it."""
    cursor = service.store.cursor(rep.id, kind, Side.MAIL) or ""
    return cursor.split(WRITTEN_AFTER, 1)[0]


class RawClient:
    """The raw loop's HTTP client: counts the requests it sends; a REPORT not answered
    207 or a PUT refused ends the phase."""

    def __init__(self, server: bench_servers.Server) -> None:
        self.url = server.url
        self.client = raw_http.raw_client(server)
        self.requests = 0

    def report(self, path: str, body: str, depth: str = "0") -> bytes:
        response = self.client.request(
            "REPORT",
            self.url + path,
            headers={**REPORT_HEADERS, "Depth": depth},
            content=body.encode(),
        )
        self.requests += 1
        if response.status_code != 207:
            raise SystemExit(f"REPORT {path}: HTTP {response.status_code}")
        return response.content

    def get(self, href: str) -> None:
        self.client.get(self.url + href)
        self.requests += 1

    def put(self, put: dict[str, str]) -> None:
        """A CRM edit's PUT, If-Match the ETag its link held."""
        response = self.client.put(
            self.url + put["href"],
            content=put["text"].encode(),
            headers={
                "Content-Type": CONTENT_TYPES[ItemKind(put["kind"])],
                "If-Match": put["etag"],
            },
        )
        self.requests += 1
        if response.status_code not in (200, 201, 204):
            raise SystemExit(f"PUT {put['href']}: HTTP {response.status_code}")

    def close(self) -> None:
        self.client.close()


def child_raw(
    server: bench_servers.Server,
    plan: list[RepPlan],
    rep_loop: Callable[[RawClient, RepPlan], None],
) -> dict[str, Any]:
    """Time ``rep_loop`` (`floor_rep` or `faithful_rep`) over every rep's plan."""
    client = RawClient(server)
    with pairs.TimedBlock(server) as timed:
        for rep_plan in plan:
            rep_loop(client, rep_plan)
    client.close()
    timed.requests = client.requests
    return {**timed.as_dict(), "statements": 0, "commits": 0, "writes": 0}


def floor_rep(client: RawClient, rep_plan: RepPlan) -> None:
    """The floor: per kind a sync-collection REPORT and a GET per item it names, then
    the PUTs."""
    paths, tokens, puts = rep_plan
    for kind, path in paths.items():
        listed = client.report(path, sync_collection_body(tokens[kind]))
        for href in changed_hrefs(listed, path):
            client.get(href)
    for put in puts:
        client.put(put)


def faithful_rep(client: RawClient, rep_plan: RepPlan) -> None:
    """The requests a faithful client sends (crmsync's, see
    tests/service/test_churn_cycle_cost.py): per kind a sync-collection REPORT, one
    multiget of the items it names and of those the CRM edits update (an update keeps the
    lines it does not map), and the PUTs."""
    paths, tokens, puts = rep_plan
    for kind, path in paths.items():
        listed = client.report(path, sync_collection_body(tokens[kind]))
        kind_puts = [put for put in puts if put["kind"] == kind]
        wanted = changed_hrefs(listed, path)
        wanted += [p["href"] for p in kind_puts if p["href"] not in wanted]
        if wanted:
            client.report(path, multiget_body(*MULTIGETS[kind], wanted), depth="1")
        for put in kind_puts:
            client.put(put)


def changed_hrefs(body: bytes, collection: str) -> list[str]:
    """The items a sync-collection answer names as changed (not the removed ones)."""
    found = []
    for response in ET.fromstring(body).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        status = response.findtext("{DAV:}status") or ""
        if href.rstrip("/") != collection.rstrip("/") and " 404 " not in status:
            found.append(href)
    return found
