"""Cost of a sync cycle when nothing changed, paired with the raw sync-collection REPORTs.

    python bench/no_change.py [--servers radicale,xandikos,sabredav] [--items M]
        [--small S] [--sabredav-items M] [--pairs P] [--url URL]

Setup (per server and size, fresh server and databases): one rep with M contacts and M
events in the built-in CRM; the same items, rendered by crmsync and stamped with their CRM
ids, put on the server (Radicale: files written straight into its storage folder;
Xandikos: one git commit into the collection; otherwise the raw PUT loop); a first cycle
lists and downloads everything and pairs the items by marker. Then P interleaved pairs,
each phase a fresh Python process: one crmsync no-change cycle (`sync_all()`, discovery
included), and the raw limit: one bare httpx client sending each collection's
sync-collection REPORT with the token crmsync saved. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench_servers
import common
import linked_setup
import meters
import pairs
import raw_http
import sample_data

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Side
from crmsync.groupware.dav.multistatus import sync_collection_body

TIME_TARGET = 1.2  # a no-change cycle's wall time <= 1.2 x the raw REPORTs'
REQUEST_TARGET = 2  # requests per collection per no-change cycle
KINDS = ((ItemKind.CONTACT, "address book"), (ItemKind.EVENT, "calendar"))


def main() -> None:
    parser = bench_servers.arguments(__doc__.splitlines()[0], items=10_000)
    parser.add_argument(
        "--servers",
        default=",".join(bench_servers.SERVERS),
        help="servers to run, comma-separated (SabreDAV is skipped with the "
        "reason where it cannot run)",
    )
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs (>= 3)")
    parser.add_argument("--small", type=int, default=100, help="the comparison size")
    parser.add_argument(
        "--sabredav-items",
        type=int,
        default=2000,
        help="M for SabreDAV (seeded over HTTP, one PUT per item)",
    )
    parser.add_argument("--child", choices=("crmsync", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--server-json", help=argparse.SUPPRESS)
    parser.add_argument("--collections", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "crmsync":
        child_crmsync(args)
        return
    if args.child == "raw":
        child_raw(args)
        return
    rows: list[list[str]] = []
    summaries: list[str] = []
    phases: list[pairs.Phase] = []
    breakdown: list[list[str]] = []
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        if name == "sabredav" and not args.url and (missing := bench_servers.sabredav_missing()):
            print(f"SabreDAV skipped: {missing}")
            summaries.append(f"sabredav skipped ({missing})")
            continue
        big = args.sabredav_items if name == "sabredav" else args.items
        sizes = [big] if big == args.small else [big, args.small]
        for items in sizes:
            with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
                found = scenario(args, name, Path(tmp), items)
            rows.extend(table_rows(name, items, found))
            breakdown.append(breakdown_row(name, items, found))
            phases += [p for pair in found for p in pair[:2]]
            ratio = whole_ratio(found)
            worst = max(k["requests"] for o, _, _ in found for k in o["kinds"].values())
            summaries.append(
                f"{name} {items:,}: {worst} request(s)/collection "
                f"({common.verdict(worst <= REQUEST_TARGET)}), "
                + ratio.summary()
                + "; "
                + warm_ratio(found).summary()
            )
    common.print_table(
        f"No-change cycle vs raw sync-collection REPORTs (1 rep; {args.pairs} interleaved "
        "pairs, each phase a fresh process; times are medians over the pairs)",
        [
            "server",
            "items/coll.",
            "collection",
            "requests (raw)",
            "wall s (raw)",
            "x raw time: median (spread)",
            "verdict",
            "client CPU s (raw)",
            "server CPU s",
            "peak RSS MB",
            "load",
        ],
        rows,
    )
    common.print_table(
        "Where a fresh-process no-change cycle's wall time goes (medians over the pairs)",
        [
            "server",
            "items/coll.",
            "whole cycle s",
            "discovery PROPFINDs s",
            "sync-collection REPORTs s",
            "rest s (state store, CRM, engine)",
            "raw REPORTs s",
            "client CPU s",
        ],
        breakdown,
    )
    print(pairs.load_note(phases))
    print(
        f"SUMMARY no-change (target <= {REQUEST_TARGET} requests per collection and "
        f"<= {TIME_TARGET} x the raw REPORTs' wall time): " + "; ".join(summaries)
    )


# ------------------------------------------------------------------------------ parent


def scenario(
    args: argparse.Namespace, name: str, workdir: Path, items: int
) -> list[tuple[pairs.Phase, pairs.Phase, str]]:
    args = argparse.Namespace(**{**vars(args), "server": name})
    emails = bench_servers.rep_emails(1, name)
    with bench_servers.dav_server(args, workdir, emails) as server:
        linked = linked_setup.linked_setup(server, workdir / "home", items, args.seed)
        service = linked.service
        rep = linked.seeded.reps[0]
        facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
        collections = workdir / "collections.json"
        collections.write_text(
            json.dumps(
                {ItemKind.CONTACT.value: facts.addressbook, ItemKind.EVENT.value: facts.calendar}
            )
        )
        service.close()
        print(
            f"[{name} {items}] server seeded in {linked.server_seed.wall:.1f} s "
            f"({linked.how}); first (pairing) cycle {linked.pairing.wall:.1f} s, "
            f"{linked.pairing.requests} requests, client CPU {linked.pairing.cpu:.1f} s, "
            f"peak RSS {linked.pairing.peak_rss:.0f} MB",
            flush=True,
        )
        base = [
            "--server",
            name,
            "--server-json",
            str(pairs.server_json(server, workdir / "server.json")),
            "--home",
            str(workdir / "home"),
            "--collections",
            str(collections),
        ]
        found = []
        for ours, raw, order in pairs.interleaved(
            args.pairs,
            lambda k: pairs.run_child(
                __file__, [*base, "--child", "crmsync"], f"{name} {items} crmsync {k + 1}"
            ),
            lambda k: pairs.run_child(
                __file__, [*base, "--child", "raw"], f"{name} {items} raw {k + 1}"
            ),
        ):
            found.append((ours, raw, order))
            print(
                f"[{name} {items}] pair {len(found)} ({order}): crmsync {ours['wall']:.3f} s "
                f"{ours['requests']} req, raw {raw['wall']:.3f} s {raw['requests']} req; "
                f"load {ours['load']:.1f} / {raw['load']:.1f}",
                flush=True,
            )
        return found


def whole_ratio(found: list[tuple[pairs.Phase, pairs.Phase, str]]) -> pairs.Ratio:
    return pairs.Ratio("wall time", [o["wall"] / r["wall"] for o, r, _ in found], TIME_TARGET)


def table_rows(
    name: str, items: int, found: list[tuple[pairs.Phase, pairs.Phase, str]]
) -> list[list[str]]:
    def median(values: list[float]) -> float:
        return pairs.Ratio("", values).median

    loads = [p["load"] for o, r, _ in found for p in (o, r)]
    load = f"{min(loads):.1f}-{max(loads):.1f}"
    rows = []
    for kind, label in KINDS:
        ours = [o["kinds"][kind.value] for o, _, _ in found]
        raws = [r["kinds"][kind.value] for _, r, _ in found]
        ratio = pairs.Ratio(
            "", [o["wall"] / r["wall"] for o, r in zip(ours, raws, strict=True)], TIME_TARGET
        )
        rows.append(
            [
                name,
                common.fmt(items),
                label,
                _both(max(o["requests"] for o in ours), max(r["requests"] for r in raws)),
                _both(median([o["wall"] for o in ours]), median([r["wall"] for r in raws])),
                f"{ratio.median:.2f} ({ratio.low:.2f}-{ratio.high:.2f})",
                "",
                _both(median([o["cpu"] for o in ours]), median([r["cpu"] for r in raws])),
                common.fmt(median([o["server_cpu"] for o in ours]), 3),
                "",
                load,
            ]
        )
    whole = whole_ratio(found)
    ours_all = [o for o, _, _ in found]
    raws_all = [r for _, r, _ in found]
    discovery = max(
        o["requests"] - sum(k["requests"] for k in o["kinds"].values()) for o in ours_all
    )
    rows.append(
        [
            name,
            common.fmt(items),
            f"whole cycle ({discovery} discovery req)",
            _both(max(o["requests"] for o in ours_all), max(r["requests"] for r in raws_all)),
            _both(median([o["wall"] for o in ours_all]), median([r["wall"] for r in raws_all])),
            f"{whole.median:.2f} ({whole.low:.2f}-{whole.high:.2f})",
            whole.verdict(),
            _both(median([o["cpu"] for o in ours_all]), median([r["cpu"] for r in raws_all])),
            common.fmt(median([o["server_cpu"] for o in ours_all]), 3),
            common.fmt(max(o["peak_rss"] for o in ours_all)),
            load,
        ]
    )
    warm = warm_ratio(found)
    warms = [o["warm"] for o in ours_all]
    raw_warms = [r["warm"] for r in raws_all]
    rows.append(
        [
            name,
            common.fmt(items),
            "2nd cycle, same process (discovery cached)",
            _both(max(w["requests"] for w in warms), max(r["requests"] for r in raw_warms)),
            _both(median([w["wall"] for w in warms]), median([r["wall"] for r in raw_warms])),
            f"{warm.median:.2f} ({warm.low:.2f}-{warm.high:.2f})",
            warm.verdict(),
            _both(median([w["cpu"] for w in warms]), median([r["cpu"] for r in raw_warms])),
            common.fmt(median([w["server_cpu"] for w in warms]), 3),
            "",
            load,
        ]
    )
    return rows


def warm_ratio(found: list[tuple[pairs.Phase, pairs.Phase, str]]) -> pairs.Ratio:
    return pairs.Ratio(
        "warm cycle wall time",
        [o["warm"]["wall"] / r["warm"]["wall"] for o, r, _ in found],
        TIME_TARGET,
    )


def breakdown_row(
    name: str, items: int, found: list[tuple[pairs.Phase, pairs.Phase, str]]
) -> list[str]:
    """Where the fresh cycle's wall time went (medians over the pairs): its discovery
    PROPFINDs, its sync-collection REPORTs, and the rest (state store, CRM, engine)."""

    def median(values: list[float]) -> float:
        return pairs.Ratio("", values).median

    ours = [o for o, _, _ in found]
    walls = [o["request_walls"] for o in ours]
    propfind = median([w.get("PROPFIND", 0.0) for w in walls])
    report = median([w.get("REPORT", 0.0) for w in walls])
    rest = median([o["wall"] - sum(w.values()) for o, w in zip(ours, walls, strict=True)])
    raw = median([r["wall"] for _, r, _ in found])
    return [
        name,
        common.fmt(items),
        common.fmt(median([o["wall"] for o in ours]), 3),
        common.fmt(propfind, 3),
        common.fmt(report, 3),
        common.fmt(rest, 3),
        common.fmt(raw, 3),
        common.fmt(median([o["cpu"] for o in ours]), 3),
    ]


def _both(ours: float, raw: float) -> str:
    return f"{common.fmt(ours, 3)} ({common.fmt(raw, 3)})"


# ------------------------------------------------------------------------------ children


def child_crmsync(args: argparse.Namespace) -> None:
    """One no-change cycle in a fresh process (discovery included: nothing is cached),
    with the wall time of its DAV requests by method; then a second, warm cycle in the same
    process, as the service's scheduler runs them (discovery cached, code warm)."""
    server = pairs.load_server(args.server_json)
    service = sample_data.open_service(Path(args.home))

    def requests() -> int:
        return service.mail_server().requests_made

    with (
        request_walls() as walls,
        meters.per_kind_meter(service, server) as per_kind,
        pairs.TimedBlock(server, requests) as total,
    ):
        reports = service.sync_all()
    with pairs.TimedBlock(server, requests) as warm:
        reports += service.sync_all()
    if any(r.error or r.writes for r in reports):
        print(f"WARNING: a no-change cycle wrote or failed: {reports}")
    service.close()
    kinds = {
        kind.value: {
            "wall": m.wall,
            "cpu": m.cpu,
            "server_cpu": m.server_cpu,
            "requests": m.requests or 0,
        }
        for kind, m in per_kind.items()
    }
    pairs.emit({**total.as_dict(), "kinds": kinds, "request_walls": walls, "warm": warm.as_dict()})


@contextlib.contextmanager
def request_walls() -> Iterator[dict[str, float]]:
    """Wall seconds spent in ``DavConnection.request`` and in ``DavConnection.streamed``
    blocks (a listing read as it arrives) per HTTP method while the block runs (a
    bench-only patch): PROPFIND is discovery, REPORT the collections' sync-collection."""
    from crmsync.groupware.dav.connection import DavConnection

    walls: dict[str, float] = {}
    original = DavConnection.request
    original_streamed = DavConnection.streamed

    def timed(self: DavConnection, method: str, *rest: Any, **options: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, method, *rest, **options)
        finally:
            walls[method] = walls.get(method, 0.0) + time.perf_counter() - start

    @contextlib.contextmanager
    def timed_streamed(self: DavConnection, method: str, *rest: Any, **options: Any) -> Any:
        start = time.perf_counter()
        try:
            with original_streamed(self, method, *rest, **options) as response:
                yield response
        finally:
            walls[method] = walls.get(method, 0.0) + time.perf_counter() - start

    DavConnection.request = timed  # type: ignore[method-assign]
    DavConnection.streamed = timed_streamed  # type: ignore[method-assign]
    try:
        yield walls
    finally:
        DavConnection.request = original  # type: ignore[method-assign]
        DavConnection.streamed = original_streamed  # type: ignore[method-assign]


def child_raw(args: argparse.Namespace) -> None:
    """One sync-collection REPORT per collection with crmsync's saved token, read whole."""
    server = pairs.load_server(args.server_json)
    paths: dict[str, str] = json.loads(Path(args.collections).read_text())
    service = sample_data.open_service(Path(args.home))
    rep = service.reps()[0]
    tokens = {kind.value: service.store.cursor(rep.id, kind, Side.MAIL) or "" for kind, _ in KINDS}
    service.close()
    kinds: dict[str, Any] = {}
    headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
    # The client is made before the clock starts, as crmsync's connection is.
    client = raw_http.raw_client(server)
    timed = []
    # Twice: the first round is the fresh process's, the second the warm one (its client,
    # connection and code already used), paired with crmsync's warm cycle.
    for _ in range(2):
        with pairs.TimedBlock(server) as total:
            for kind, path in paths.items():
                with pairs.TimedBlock(server) as part:
                    response = client.request(
                        "REPORT",
                        server.url + path,
                        headers=headers,
                        content=sync_collection_body(tokens[kind]).encode(),
                    )
                    if response.status_code != 207:
                        raise SystemExit(f"REPORT {path}: HTTP {response.status_code}")
                kinds.setdefault(
                    kind,
                    {
                        "wall": part.wall,
                        "cpu": part.cpu,
                        "server_cpu": part.server_cpu,
                        "requests": 1,
                        "bytes": len(response.content),
                    },
                )
        total.requests = len(paths)
        timed.append(total)
    client.close()
    pairs.emit({**timed[0].as_dict(), "kinds": kinds, "warm": timed[1].as_dict()})


if __name__ == "__main__":
    main()
