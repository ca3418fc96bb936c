"""Peak client memory of sync cycles at large collections (target: <= 300 MB at 50,000 items).

    python bench/memory.py --server radicale [--sizes 5000,10000,25000] [--target 50000]

For each size M (items per collection: one rep with M contacts and M events): a fresh
server and databases, then each phase runs in its own fresh Python process so its peak
RSS (ru_maxrss) is the phase's alone:
  baseline     imports + opening the service, no cycle
  first cycle  full listing of both collections, all M items downloaded (multiget) and
               paired with the CRM records by marker
  no-change    an ordinary cycle when nothing changed
  full listing the cycle after the sync-tokens and CRM cursors are lost: both sides list
               everything and compare by version/ETag (nothing downloaded)
Sizes the server cannot seed in reasonable time are extrapolated linearly from the
measured ones (printed as such). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import Side

PHASES = ("baseline", "first cycle", "no-change", "full listing")


def main() -> None:
    parser = common.arguments(__doc__.splitlines()[0], items=0)
    parser.add_argument("--sizes", default="5000,10000,25000",
                        help="items per collection to measure, comma-separated")
    parser.add_argument("--target", type=int, default=50_000,
                        help="the size the target is about (measured if in --sizes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--server-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
            results[size] = measure_size(args, Path(tmp), size)
    report(args, results)


# ------------------------------------------------------------------------------ parent


def measure_size(args: argparse.Namespace, workdir: Path, size: int) -> dict[str, dict[str, Any]]:
    with common.dav_server(args, workdir, common.rep_emails(1)) as server:
        server_json = workdir / "server.json"
        server_json.write_text(json.dumps({
            "name": server.name, "url": server.url, "username": server.username,
            "password": server.password, "principal_path": server.principal_path,
            "data_dir": str(server.data_dir) if server.data_dir else None,
        }))
        base = [sys.executable, __file__, "--server", server.name, "--home",
                str(workdir / "home"), "--server-json", str(server_json),
                "--seed", str(args.seed), "--items", str(size)]
        found: dict[str, dict[str, Any]] = {}
        for phase in ("setup", *PHASES):
            cpu0 = server.cpu_seconds()
            done = subprocess.run([*base, "--child", phase], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"phase {phase} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["server_cpu"] = server.cpu_seconds() - cpu0
            found[phase] = result
            print(f"[{size}] {phase}: {result}", flush=True)
        return found


def report(args: argparse.Namespace, results: dict[int, dict[str, dict[str, Any]]]) -> None:
    rows = []
    for size, phases in results.items():
        for phase in PHASES:
            r = phases[phase]
            rows.append([common.fmt(size), phase, common.fmt(r["max_rss_mb"]),
                         common.fmt(r["wall"]), common.fmt(r["cpu"]),
                         common.fmt(r["server_cpu"]), common.fmt(r.get("requests"))])
        setup = phases["setup"]
        print(f"[{size}] setup: {setup['how']}; {setup['wall']:.1f} s")
    target = args.target
    verdicts: list[str] = []
    values: list[float] = []
    for phase in PHASES[1:]:
        if target in results:
            value = results[target][phase]["max_rss_mb"]
            how = "measured"
        else:
            value, how = extrapolate({s: p[phase]["max_rss_mb"] for s, p in results.items()},
                                     target)
        if value is None:
            continue
        rows.append([common.fmt(target), f"{phase} ({how})", common.fmt(value), "", "", "", ""])
        verdicts.append(f"{phase} {value:.0f} MB ({how})")
        values.append(value)
    common.print_table(
        f"Peak client RSS per phase ({args.server}; 1 rep, M contacts + M events; each phase "
        "in a fresh process)",
        ["items/collection", "phase", "peak RSS MB", "wall s", "client CPU s",
         "server CPU s", "requests"],
        rows,
    )
    print(common.machine_note())
    worst = max(values, default=float("nan"))
    print(f"SUMMARY memory ({args.server}) at {target:,} items per collection: "
          + "; ".join(verdicts)
          + f" (target <= 300 MB: {common.verdict(worst <= 300)})")


def extrapolate(points: dict[int, float], target: int) -> tuple[float | None, str]:
    """A least-squares line through (size, MB), read at ``target``."""
    if len(points) < 2:
        return None, "not enough sizes to extrapolate"
    xs, ys = list(points), list(points.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    value = my + slope * (target - mx)
    return value, f"extrapolated linearly, {slope * 1000:.1f} MB per 1,000 items"


# ------------------------------------------------------------------------------ children


def child(args: argparse.Namespace) -> None:
    info = json.loads(Path(args.server_json).read_text())
    server = common.Server(info["name"], info["url"], info["username"], info["password"],
                           info["principal_path"], None,
                           Path(info["data_dir"]) if info["data_dir"] else None)
    home = Path(args.home)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {}
    if args.child == "setup":
        service = common.open_service(home)
        seeded = common.seed_crm(service.crm, common.rep_emails(1), args.items, args.seed)
        common.configure(service, server, seeded.reps)
        rep = seeded.reps[0]
        facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
        out["how"] = common.write_server_items(
            server, facts.addressbook,
            [common.render_contact(i, c) for i, c in seeded.contacts[rep.id]],
            common.VCARD_TYPE)
        common.write_server_items(
            server, facts.calendar,
            [common.render_event(i, e) for i, e in seeded.events[rep.id]], common.ICAL_TYPE)
    else:
        service = common.open_service(home)
        if args.child != "baseline":
            rep = service.reps()[0]
            if args.child == "full listing":
                for kind in (ItemKind.CONTACT, ItemKind.EVENT):
                    for side in (Side.CRM, Side.MAIL):
                        service.store.save_cursor(rep.id, kind, side, None)
            before = service.mail_server().requests_made
            reports = service.sync_all()
            out["requests"] = service.mail_server().requests_made - before
            out["writes"] = sum(r.writes for r in reports)
            out["errors"] = [r.error for r in reports if r.error]
            out["links"] = sum(service.store.count_links(rep.id, k)
                               for k in (ItemKind.CONTACT, ItemKind.EVENT))
    service.close()
    out.update(wall=time.perf_counter() - wall0, cpu=time.process_time() - cpu0,
               max_rss_mb=common.max_rss_mb())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
