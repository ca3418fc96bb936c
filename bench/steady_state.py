"""Steady state at N reps: a no-change pass and a 1 % churn pass over every rep, each paired
with the raw loop of the same sync-collection REPORTs, GETs and PUTs.

    python bench/steady_state.py [--server radicale|sabredav] [--reps 100,300] [--items 100]
        [--churn 0.01] [--pairs 3] [--passes no-change,churn] [--seed-into DIR | --seeded DIR]
        [--workers 1,2 --postgres-url URL [--server-cpus 1] | --visible [--edits 60]]
        [--profile FILE]

`--reps 100,300,1000` and `--items 100,500` add the larger sizes. One server per M is
seeded once with max(N) reps x M contacts and M events (Radicale: files written into its
storage; SabreDAV: the raw PUT loop), then paired by one crmsync cycle per rep; every N
uses the first N of those reps. `--seed-into DIR` seeds and stops; `--seeded DIR` runs
the passes on such a folder.

Passes (each phase a fresh Python process; pairs interleaved, bench/pairs.py):
- no-change: crmsync runs `SyncService.sync_rep` for each of the N reps, discovery warmed
  first (as in a long-running `serve`, which keeps it); raw sends each rep's two
  sync-collection REPORTs with the tokens crmsync saved.
- churn: the same state is restored before each phase (the server's folder and both
  databases copied back, the server restarted on its port): per rep, 1 % of the contacts
  and of the events were edited on the server (a rep's edits) and another 1 % in the CRM.
  crmsync syncs the N reps; raw sends the REPORTs, GETs each item the REPORT names, and
  PUTs the CRM-edited items (rendered before its clock starts) with If-Match. `--raw
  faithful` sends crmsync's requests instead (one multiget of the changed items and those
  the CRM edits update, instead of a GET per changed item; see
  tests/service/test_churn_cycle_cost.py).
SQL statements and commits are counted on the state store's engine (SQLAlchemy events).
`--workers` runs the passes through `crmsync scheduler` and `crmsync worker` processes
instead (bench/steady_workers.py); `--visible` measures edit-to-visible under `crmsync
serve` (bench/steady_visible.py).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import common
import pairs
from sqlalchemy import event

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import Side
from crmsync.groupware.dav.collection import WRITTEN_AFTER
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.local_server import LocalRadicale
from crmsync.groupware.dav.multistatus import multiget_body, sync_collection_body
from crmsync.groupware.dav.vcard import VCardFormat

TIME_TARGET = 1.5  # a pass <= 1.5 x the raw loop (issue 16, at 1,000 reps)
KINDS = (ItemKind.CONTACT, ItemKind.EVENT)
REPORT_HEADERS = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
CONTENT_TYPES = {ItemKind.CONTACT: common.VCARD_TYPE, ItemKind.EVENT: common.ICAL_TYPE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("radicale", "sabredav"), default="radicale")
    parser.add_argument("--reps", default="100,300", help="N values, comma-separated")
    parser.add_argument(
        "--items",
        default="100",
        help="M values (contacts per rep, and as many events), comma-separated",
    )
    parser.add_argument("--churn", type=float, default=0.01, help="share of items edited")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs (>= 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seeded",
        help="run the passes on this folder, left by a run "
        "stopped after seeding (its snapshots 'linked' and 'churned' made), "
        "instead of seeding again; --items names its M",
    )
    parser.add_argument(
        "--seed-into",
        help="seed max(--reps) reps x --items into this new "
        "folder (server, databases, snapshots), stop, and keep it for --seeded",
    )
    parser.add_argument(
        "--workers",
        help="e.g. 1,2: run the passes through `crmsync "
        "scheduler` and that many `crmsync worker` processes instead (needs "
        "--postgres-url and redis-server)",
    )
    parser.add_argument(
        "--postgres-url",
        help="a PostgreSQL URL whose user may create databases (`bash .ci/postgres.sh` prints one)",
    )
    parser.add_argument(
        "--server-cpus",
        help="pin the DAV server to these CPUs (e.g. 2,3) "
        "and the workers to the others (with --workers)",
    )
    parser.add_argument(
        "--visible",
        action="store_true",
        help="measure edit-to-visible under `crmsync serve` instead (bench/steady_visible.py)",
    )
    parser.add_argument("--edits", type=int, default=60, help="--visible: edits made")
    parser.add_argument(
        "--window",
        type=float,
        default=300.0,
        help="--visible: seconds over which the edits are spread",
    )
    parser.add_argument(
        "--interval", type=float, default=60.0, help="--visible: serve's --interval (its default)"
    )
    parser.add_argument(
        "--passes",
        default="no-change,churn",
        help="which passes to run, comma-separated (no-change, churn)",
    )
    parser.add_argument(
        "--raw",
        choices=("floor", "faithful"),
        default="floor",
        help="the raw loop: floor (a REPORT, a GET per changed item, the PUTs) or faithful "
        "(crmsync's requests: a REPORT, one multiget of the changed items and those the CRM "
        "edits update, the PUTs)",
    )
    parser.add_argument(
        "--profile",
        help="write a cProfile (client CPU time) of the first timed crmsync phase of each pass",
    )
    parser.add_argument("--child", choices=("crmsync", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--state", choices=("linked", "churned"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--part", default="0/1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    # A run started in the background ignores SIGINT: SIGTERM stops it through its
    # finally blocks (workers, servers and databases stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reps = sorted(int(n) for n in args.reps.split(","))
    if args.seed_into:
        world = World(Path(args.seed_into), max(reps), int(args.items), args)
        try:
            world.seed()
        finally:
            world.stop()
        print(
            f"seeded: rerun the passes with --seeded {args.seed_into} --items {args.items}"
            f" --server {args.server}"
        )
        return
    passes = args.passes.split(",")
    if unknown := set(passes) - set(STATES):
        parser.error(f"--passes: unknown {', '.join(sorted(unknown))} (no-change, churn)")
    if args.workers and not args.postgres_url:
        parser.error("--workers needs --postgres-url (bash .ci/postgres.sh prints one)")
    if args.visible:
        import steady_visible

        sizes = [int(m) for m in args.items.split(",")]
        problem = steady_visible.edits_problem(args.edits, min(reps), min(sizes))
        if problem:
            parser.error(problem)
    rows: list[list[str]] = []
    phases: list[pairs.Phase] = []
    summaries: list[str] = []
    for items in (int(m) for m in args.items.split(",")):
        with tempfile.TemporaryDirectory(prefix="crmsync-steady-") as tmp:
            work = Path(args.seeded or tmp)
            port = None
            if args.seeded:
                url = json.loads((work / "server.json").read_text())["url"]
                port = int(url.rsplit(":", 1)[1])
            world = World(work, max(reps), items, args, port)
            try:
                if args.seeded:
                    world.start()
                else:
                    world.seed()
                if args.visible:
                    import steady_visible

                    for n in reps:
                        found = steady_visible.run(world, n, args)
                        rows += found.rows()
                        summaries.append(found.summary())
                    continue
                if args.workers:
                    import steady_workers

                    counts = sorted(int(w) for w in args.workers.split(","))
                    cpus = (
                        {int(c) for c in args.server_cpus.split(",")} if args.server_cpus else None
                    )
                    found_rows, found_summaries = steady_workers.run_workers_mode(
                        world, args, reps, counts, cpus
                    )
                    rows += found_rows
                    summaries += found_summaries
                    continue
                states = [STATES[name] for name in passes]
                for n in reps:
                    for state in states:
                        found = world.pairs(n, state, args.pairs)
                        phases += [p for o, r, _ in found for p in (o, r)]
                        ratio = pairs.Ratio(
                            "wall", [o["wall"] / r["wall"] for o, r, _ in found], TIME_TARGET
                        )
                        rows.append(table_row(items, n, state, found, ratio))
                        failed = sum(o.get("errors", 0) for o, _, _ in found)
                        summaries.append(
                            f"{n} reps x {items} {PASS_NAMES[state]}: "
                            + (f"{failed} failed cycles: no verdict" if failed else ratio.summary())
                        )
            finally:
                world.stop()
    print_results(args, rows, phases, summaries)


def print_results(
    args: argparse.Namespace, rows: list[list[str]], phases: list[pairs.Phase], summaries: list[str]
) -> None:
    server = "Radicale" if args.server == "radicale" else "SabreDAV"
    if args.visible:
        import steady_visible

        common.print_table(
            f"Edit to visible under `crmsync serve --interval {args.interval:g}` on one "
            f"{server} ({args.edits} edits over {args.window:g} s per N)",
            steady_visible.COLUMNS,
            rows,
        )
        print(common.machine_note())
        print("SUMMARY edit to visible (target p95 < 60 s at 1,000 reps): " + "; ".join(summaries))
        return
    if args.workers:
        import steady_workers

        common.print_table(
            f"Steady state through `crmsync scheduler` + `crmsync worker` (Redis, PostgreSQL) "
            f"on one {server}, beside the raw loop ({args.pairs} rounds, order alternated; "
            "medians)",
            steady_workers.WORKERS_COLUMNS,
            rows,
        )
        print(common.machine_note())
        print(
            "SUMMARY workers (target >= 1.8 x one worker's speed where the server is not "
            "the bottleneck): " + "; ".join(summaries)
        )
        return
    common.print_table(
        f"Steady state on one {server} vs the {args.raw} raw loop ({args.pairs} interleaved "
        "pairs, fresh "
        "processes; medians over the pairs; per rep = divided by N)",
        [
            "M items",
            "N reps",
            "pass",
            "wall s crmsync (raw)",
            "x raw: median (spread)",
            "requests/rep (raw)",
            "SQL stmts/rep",
            "commits/rep",
            "client CPU s (raw)",
            "server CPU s (raw)",
            "writes",
            "failed cycles",
            "load",
        ],
        rows,
    )
    print(pairs.load_note(phases))
    print(
        f"SUMMARY steady state (target <= {TIME_TARGET} x the {args.raw} raw loop): "
        + "; ".join(summaries)
    )


PASS_NAMES = {"linked": "no change", "churned": "churn"}
STATES = {"no-change": "linked", "churn": "churned"}


def table_row(
    items: int,
    n: int,
    state: str,
    found: list[tuple[pairs.Phase, pairs.Phase, str]],
    ratio: pairs.Ratio,
) -> list[str]:
    def med(side: int, key: str) -> float:
        return pairs.Ratio("", [pair[side][key] for pair in found]).median

    loads = [p["load"] for o, r, _ in found for p in (o, r)]
    return [
        common.fmt(items),
        common.fmt(n),
        PASS_NAMES[state],
        f"{med(0, 'wall'):.2f} ({med(1, 'wall'):.2f})",
        f"{ratio.median:.2f} ({ratio.low:.2f}-{ratio.high:.2f})",
        f"{med(0, 'requests') / n:.1f} ({med(1, 'requests') / n:.1f})",
        f"{med(0, 'statements') / n:.1f}",
        f"{med(0, 'commits') / n:.2f}",
        f"{med(0, 'cpu'):.2f} ({med(1, 'cpu'):.2f})",
        f"{med(0, 'server_cpu'):.2f} ({med(1, 'server_cpu'):.2f})",
        f"{med(0, 'writes'):.0f}",
        f"{sum(o.get('errors', 0) for o, _, _ in found)}",
        f"{min(loads):.1f}-{max(loads):.1f}",
    ]


# ------------------------------------------------------------------------------ parent


class DavProcess:
    """The benchmark's DAV server (Radicale or SabreDAV) over a folder, restartable on
    its port: a snapshot of the folder is put back and the server started on it again."""

    def __init__(self, kind: str, folder: Path, emails: list[str], port: int | None) -> None:
        self.kind = kind
        self.folder = folder
        self.started_once = port is not None  # a --seeded folder holds its data already
        if kind == "radicale":
            users = {
                common.SERVICE_ACCOUNT: common.SERVICE_PASSWORD,
                **dict.fromkeys(emails, common.REP_PASSWORD),
            }
            self.server: Any = LocalRadicale(folder, users, common.SERVICE_ACCOUNT, port=port)
            self.account = (common.SERVICE_ACCOUNT, common.SERVICE_PASSWORD, "/{email}/")
        else:
            missing = common.sabredav_missing()
            if missing:
                raise SystemExit(f"SabreDAV cannot run here: {missing}")
            from tests import sabredav

            self.server = sabredav.SabreDavServer(
                folder, reps=dict.fromkeys(emails, common.REP_PASSWORD), port=port
            )
            self.account = (
                sabredav.SERVICE_ACCOUNT,
                sabredav.SERVICE_PASSWORD,
                sabredav.PRINCIPAL_PATH,
            )

    def start(self) -> common.Server:
        if self.kind == "radicale":
            self.server.start(timeout=120)
        else:
            self.server.start(timeout=120, keep_data=self.started_once)
        self.started_once = True
        user, password, principal = self.account
        return common.Server(
            self.kind,
            self.server.url,
            user,
            password,
            principal,
            common._child_listening_on(self.server.port),
            self.folder if self.kind == "radicale" else None,
            self.server.stop,
        )

    def stop(self) -> None:
        self.server.stop()


class World:
    """One DAV server and one deployment home under ``work``, with snapshots to restore."""

    def __init__(
        self, work: Path, reps: int, items: int, args: argparse.Namespace, port: int | None = None
    ) -> None:
        self.work = work
        self.reps = reps
        self.items = items
        self.args = args
        self.script = __file__
        self.emails = common.rep_emails(reps)
        self.dav_kind = args.server
        self.dav = DavProcess(args.server, work / "live" / args.server, self.emails, port)
        self.server: common.Server | None = None
        self.restores = len(list(work.glob("used-*")))

    @property
    def live(self) -> Path:
        return self.work / "live"

    def start(self) -> common.Server:
        self.server = self.dav.start()
        pairs.server_json(self.server, self.work / "server.json")
        return self.server

    def stop(self) -> None:
        self.dav.stop()

    def pin_server(self, cpus: set[int]) -> None:
        """Keep the DAV server (and its children) on these CPUs."""
        if self.server is not None and self.server.process is not None:
            for process in [self.server.process, *self.server.process.children(True)]:
                process.cpu_affinity(sorted(cpus))

    def seed(self) -> None:
        """Seed, pair (first cycle), snapshot 'linked'; churn, snapshot 'churned'."""
        server = self.start()
        home = self.live / "home"
        t0 = time.perf_counter()
        service = common.open_service(home)
        seeded = common.seed_crm(service.crm, self.emails, self.items, self.args.seed)
        common.configure(service, server, seeded.reps)
        collections: dict[str, dict[str, str]] = {}
        for rep in seeded.reps:
            facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
            collections[rep.email] = {
                ItemKind.CONTACT.value: facts.addressbook,
                ItemKind.EVENT.value: facts.calendar,
            }
            common.write_server_items(
                server,
                facts.addressbook,
                [common.render_contact(i, c) for i, c in seeded.contacts[rep.id]],
                common.VCARD_TYPE,
            )
            common.write_server_items(
                server,
                facts.calendar,
                [common.render_event(i, e) for i, e in seeded.events[rep.id]],
                common.ICAL_TYPE,
            )
        (self.work / "collections.json").write_text(json.dumps(collections))
        t1 = time.perf_counter()
        for rep in seeded.reps:
            report = service.sync_rep(rep)
            if report.error:
                raise SystemExit(f"pairing cycle of {rep.email} failed: {report.error}")
        # A second cycle per rep, as a running service's next one: it marks the flows in
        # sync (written once, when they change), so the snapshot is the steady state.
        for rep in seeded.reps:
            service.sync_rep(rep)
        links = sum(service.store.count_links(r.id, k) for r in seeded.reps for k in KINDS)
        print(
            f"[M={self.items}] seeded {self.reps} reps x {self.items} contacts + events in "
            f"{t1 - t0:.0f} s, paired by a first cycle in {time.perf_counter() - t1:.0f} s "
            f"({links:,} links)",
            flush=True,
        )
        service.close()
        self.snapshot("linked")
        self.churn(seeded)
        self.snapshot("churned")

    def churn(self, seeded: common.Seeded) -> None:
        """Per rep, edit ``churn`` of the items on the server and as many others in the CRM;
        write what the raw loop PUTs for the CRM edits (rendered, with the link's ETag)."""
        server = self.server
        assert server is not None
        service = common.open_service(self.live / "home")
        count = max(1, round(self.items * self.args.churn))
        puts: dict[str, list[dict[str, str]]] = {}
        with common.raw_client(server) as client:
            for rep in seeded.reps:
                puts[rep.email] = []
                for kind in KINDS:
                    links = sorted(service.store.links(rep.id, kind), key=lambda k: k.crm_id)
                    for link in links[:count]:  # the rep's edits on the server
                        url = server.url + link.mail_id
                        title = f"Edited on the server {time.time()}"
                        text = common.retitled(client.get(url).text, kind, title)
                        response = client.put(
                            url,
                            content=text.encode(),
                            headers={"Content-Type": CONTENT_TYPES[kind]},
                        )
                        if response.status_code not in (200, 201, 204):
                            raise SystemExit(f"churn PUT {url}: HTTP {response.status_code}")
                    for link in links[count : 2 * count]:  # edits in the CRM
                        puts[rep.email].append(self.edit_in_crm(service, kind, link))
        service.close()
        (self.work / "puts.json").write_text(json.dumps(puts))

    @staticmethod
    def edit_in_crm(service: Any, kind: ItemKind, link: Any) -> dict[str, str]:
        field = "title" if kind is ItemKind.CONTACT else "subject"
        record = common.retitle_in_crm(service.crm, kind, link.crm_id, f"Churned {field}")
        if isinstance(record, Contact):
            _, text = common.render_contact(link.crm_id, record)
        else:
            _, text = common.render_event(link.crm_id, record)
        return {"href": link.mail_id, "etag": link.mail_version, "kind": kind.value, "text": text}

    def snapshot(self, state: str) -> None:
        self.dav.stop()
        copy_state(self.live, self.work / state, self.dav_kind)
        self.start()

    def restore(self, state: str) -> None:
        """Put the snapshot back: the old folder is set aside (deleting 10^5 files takes
        longer than a phase), then `copy_state`."""
        self.dav.stop()
        self.restores += 1
        self.live.rename(self.work / f"used-{self.restores}")
        copy_state(self.work / state, self.live, self.dav_kind)
        self.start()

    def pairs(self, n: int, state: str, count: int) -> list[tuple[pairs.Phase, pairs.Phase, str]]:
        base = ["--work", str(self.work), "--state", state, "--n", str(n), "--raw", self.args.raw]

        def phase(which: str, k: int) -> pairs.Phase:
            if state == "churned":
                self.restore("churned")
            profile = self.args.profile and which == "crmsync" and k == 0
            extra = ["--profile", f"{self.args.profile}.{state}"] if profile else []
            return pairs.run_child(
                __file__,
                [*base, "--child", which, *extra],
                f"M={self.items} N={n} {PASS_NAMES[state]} {which} {k + 1}",
            )

        if state == "linked":
            self.restore("linked")
            # Untimed: the restarted server's first pass over every collection is slower
            # (at 1,000 reps the first phase took 85 s, the next ones 24-37), and the
            # raw loop changes nothing, so neither timed side pays for the warm-up.
            phase("raw", -1)
        found = []
        for ours, raw, order in pairs.interleaved(
            count, lambda k: phase("crmsync", k), lambda k: phase("raw", k)
        ):
            found.append((ours, raw, order))
            print(
                f"[M={self.items} N={n} {PASS_NAMES[state]}] pair {len(found)} ({order}): "
                f"crmsync {ours['wall']:.2f} s {ours['requests']} req "
                f"{ours['statements']} stmts {ours['commits']} commits, "
                f"raw {raw['wall']:.2f} s {raw['requests']} req; "
                f"load {ours['load']:.1f} / {raw['load']:.1f}",
                flush=True,
            )
        return found


def copy_state(source: Path, target: Path, kind: str) -> None:
    """Radicale's files as hard links (it replaces a file it writes, never writes into
    it); SabreDAV's SQLite database and both of ours as copies."""
    link = os.link if kind == "radicale" else shutil.copy2
    shutil.copytree(source / kind, target / kind, copy_function=link)
    shutil.copytree(source / "home", target / "home")


# ------------------------------------------------------------------------------ children


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    server = pairs.load_server(work / "server.json")
    service = common.open_service(work / "live" / "home")
    reps = [service.rep_by_email(email) for email in common.rep_emails(args.n)]
    part, parts = (int(x) for x in args.part.split("/"))
    reps = reps[part::parts]
    if args.child == "crmsync":
        result = child_crmsync(service, server, reps, args.profile)
    else:
        churned = args.state == "churned"
        if args.raw == "faithful":
            result = child_faithful_raw(service, server, reps, work, churned)
        else:
            result = child_raw(service, server, reps, work, churned)
    service.close()
    pairs.emit(result)


def child_crmsync(
    service: Any, server: common.Server, reps: list[Any], profile: str | None = None
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


def raw_plan(
    service: Any, reps: list[Any], work: Path, churned: bool
) -> list[tuple[dict[str, str], dict[str, str], list[dict[str, str]]]]:
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


def child_raw(
    service: Any, server: common.Server, reps: list[Any], work: Path, churned: bool
) -> dict[str, Any]:
    plan = raw_plan(service, reps, work, churned)
    client = common.raw_client(server)
    requests = 0
    with pairs.TimedBlock(server) as timed:
        for paths, tokens, rep_puts in plan:
            for kind, path in paths.items():
                response = client.request(
                    "REPORT",
                    server.url + path,
                    headers=REPORT_HEADERS,
                    content=sync_collection_body(tokens[kind]).encode(),
                )
                requests += 1
                if response.status_code != 207:
                    raise SystemExit(f"REPORT {path}: HTTP {response.status_code}")
                for href in changed_hrefs(response.content, path):
                    client.get(server.url + href)
                    requests += 1
            for put in rep_puts:
                response = client.put(
                    server.url + put["href"],
                    content=put["text"].encode(),
                    headers={
                        "Content-Type": CONTENT_TYPES[ItemKind(put["kind"])],
                        "If-Match": put["etag"],
                    },
                )
                requests += 1
                if response.status_code not in (200, 201, 204):
                    raise SystemExit(f"PUT {put['href']}: HTTP {response.status_code}")
    client.close()
    timed.requests = requests
    return {**timed.as_dict(), "statements": 0, "commits": 0, "writes": 0}


# The multiget each kind's format sends (the report, and the property holding the text).
MULTIGETS = {
    kind.value: (format.multiget_report, format.data_property)
    for kind, format in ((ItemKind.CONTACT, VCardFormat), (ItemKind.EVENT, ICalendarFormat))
}


def child_faithful_raw(
    service: Any, server: common.Server, reps: list[Any], work: Path, churned: bool
) -> dict[str, Any]:
    """The raw loop of the requests a faithful client sends (crmsync's, see
    tests/service/test_churn_cycle_cost.py): per kind a sync-collection REPORT, one
    multiget of the items it names and of those the CRM edits update (an update keeps the
    lines it does not map), and the PUTs."""
    plan = raw_plan(service, reps, work, churned)
    client = common.raw_client(server)
    requests = 0

    def report(path: str, body: str, depth: str = "0") -> bytes:
        nonlocal requests
        response = client.request(
            "REPORT",
            server.url + path,
            headers={**REPORT_HEADERS, "Depth": depth},
            content=body.encode(),
        )
        requests += 1
        if response.status_code != 207:
            raise SystemExit(f"REPORT {path}: HTTP {response.status_code}")
        return response.content

    with pairs.TimedBlock(server) as timed:
        for paths, tokens, rep_puts in plan:
            for kind, path in paths.items():
                listed = report(path, sync_collection_body(tokens[kind]))
                kind_puts = [put for put in rep_puts if put["kind"] == kind]
                wanted = changed_hrefs(listed, path)
                wanted += [p["href"] for p in kind_puts if p["href"] not in wanted]
                if wanted:
                    report(path, multiget_body(*MULTIGETS[kind], wanted), depth="1")
                for put in kind_puts:
                    response = client.put(
                        server.url + put["href"],
                        content=put["text"].encode(),
                        headers={
                            "Content-Type": CONTENT_TYPES[ItemKind(kind)],
                            "If-Match": put["etag"],
                        },
                    )
                    requests += 1
                    if response.status_code not in (200, 201, 204):
                        raise SystemExit(f"PUT {put['href']}: HTTP {response.status_code}")
    client.close()
    timed.requests = requests
    return {**timed.as_dict(), "statements": 0, "commits": 0, "writes": 0}


def changed_hrefs(body: bytes, collection: str) -> list[str]:
    """The items a sync-collection answer names as changed (not the removed ones)."""
    found = []
    for response in ET.fromstring(body).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        status = response.findtext("{DAV:}status") or ""
        if href.rstrip("/") != collection.rstrip("/") and " 404 " not in status:
            found.append(href)
    return found


if __name__ == "__main__":
    main()
