"""Cost of a sync cycle when nothing changed, at M items per collection and at 100.

    python bench/no_change.py --server radicale|xandikos [--items M] [--cycles K] [--url URL]

Setup (per size, fresh server and databases): one rep with M contacts and M events in the
built-in CRM; the same items, rendered by crmsync and stamped with their CRM ids, put on
the server (Radicale: files written straight into its storage folder; otherwise the raw
PUT loop); a first cycle lists and downloads everything and pairs the items by marker.
Then K no-change cycles are timed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common

from crmsync.domain.records import ItemKind


def main() -> None:
    parser = common.arguments(__doc__.splitlines()[0], items=10_000)
    parser.add_argument("--cycles", type=int, default=3, help="no-change cycles to time")
    parser.add_argument("--small", type=int, default=100, help="the comparison size")
    args = parser.parse_args()
    sizes = [args.items] if args.items == args.small else [args.items, args.small]
    rows: list[list[str]] = []
    worst = 0.0
    for items in sizes:
        with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
            found, per_collection = scenario(args, Path(tmp), items)
        rows.extend(found)
        worst = max(worst, per_collection)
    common.print_table(
        f"No-change cycle ({args.server}, 1 rep, last of {args.cycles} cycles; per collection)",
        ["items/collection", "collection", "requests", "wall s", "client CPU s",
         "server CPU s", "peak RSS MB"],
        rows,
    )
    print(common.machine_note())
    print(f"SUMMARY no-change ({args.server}): at most {worst:.0f} request(s) per collection "
          f"per cycle at sizes {', '.join(map(str, sizes))} (target <= 2: "
          f"{common.verdict(worst <= 2)})")


def scenario(args: argparse.Namespace, workdir: Path, items: int
             ) -> tuple[list[list[str]], float]:
    with common.dav_server(args, workdir, common.rep_emails(1)) as server:
        linked = common.linked_setup(server, workdir / "home", items, args.seed)
        service = linked.service
        print(f"[{items}] server seeded in {linked.server_seed.wall:.1f} s ({linked.how}); "
              f"first (pairing) cycle {linked.pairing.wall:.1f} s, "
              f"{linked.pairing.requests} requests, client CPU {linked.pairing.cpu:.1f} s, "
              f"peak RSS {linked.pairing.peak_rss:.0f} MB", flush=True)

        def requests() -> int:
            return service.mail_server().requests_made

        worst = 0.0
        for _ in range(args.cycles):
            with common.per_kind_meter(service, server) as kinds, \
                    common.measure("cycle", 0, server, requests) as total:
                reports = service.sync_all()
            if any(r.error or r.writes for r in reports):
                print(f"WARNING: a no-change cycle wrote or failed: {reports}")
            worst = max(worst, *(float(k.requests or 0) for k in kinds.values()))
        service.close()
    rows = []
    for kind, label in ((ItemKind.CONTACT, "address book"), (ItemKind.EVENT, "calendar")):
        m = kinds[kind]
        rows.append([common.fmt(items), label, common.fmt(m.requests), common.fmt(m.wall),
                     common.fmt(m.cpu), common.fmt(m.server_cpu), common.fmt(m.peak_rss)])
    discovery = (total.requests or 0) - sum(k.requests or 0 for k in kinds.values())
    rows.append([common.fmt(items), "whole cycle (incl. discovery: "
                 f"{discovery} req)", common.fmt(total.requests), common.fmt(total.wall),
                 common.fmt(total.cpu), common.fmt(total.server_cpu),
                 common.fmt(total.peak_rss)])
    return rows, worst


if __name__ == "__main__":
    main()
