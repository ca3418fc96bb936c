"""Peak client memory of sync cycles at large collections (target: <= 250 MB at 50,000 items).

    python bench/memory.py [--servers radicale,xandikos] [--sizes 50000]
        [--memray DIR]

For each server and size M (items per collection: one rep with M contacts and M events):
a fresh server and databases, then each phase runs in its own fresh Python process so its
peak RSS (its memory map's VmHWM) is the phase's alone:
  baseline     imports + opening the service, no cycle
  first cycle  full listing of both collections, all M items downloaded (multiget) and
               paired with the CRM records by marker
  no-change    an ordinary cycle when nothing changed
  full listing the cycle after the sync-tokens and CRM cursors are lost: both sides list
               everything and compare by version/ETag (nothing downloaded)
Every size is measured, none extrapolated. ``--memray DIR`` runs the first cycle under
memray (``pip install memray``) and writes its capture and the allocations alive at the
peak (``memray stats``) there. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
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

PHASES = ("baseline", "first cycle", "no-change", "full listing")
TARGET_MB = 250


def main() -> None:
    parser = bench_servers.arguments(__doc__.splitlines()[0], items=0)
    parser.add_argument(
        "--servers", default="radicale,xandikos", help="servers to run, comma-separated"
    )
    parser.add_argument(
        "--sizes", default="50000", help="items per collection to measure, comma-separated"
    )
    parser.add_argument("--memray", help="run the first cycle under memray; files go here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--server-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
                results[name, size] = measure_size(
                    argparse.Namespace(**{**vars(args), "server": name}), Path(tmp), size
                )
    report(results)


# ------------------------------------------------------------------------------ parent


def measure_size(args: argparse.Namespace, workdir: Path, size: int) -> dict[str, dict[str, Any]]:
    with bench_servers.dav_server(
        args, workdir, bench_servers.rep_emails(1, args.server)
    ) as server:
        info = pairs.server_json(server, workdir / "server.json")
        base = [
            sys.executable,
            __file__,
            "--server",
            server.name,
            "--home",
            str(workdir / "home"),
            "--server-json",
            str(info),
            "--seed",
            str(args.seed),
            "--items",
            str(size),
        ]
        found: dict[str, dict[str, Any]] = {}
        for phase in ("setup", *PHASES):
            command = [*base, "--child", phase]
            memray_file = None
            if args.memray and phase == "first cycle":
                Path(args.memray).mkdir(parents=True, exist_ok=True)
                memray_file = Path(args.memray) / f"first-cycle-{server.name}-{size}.bin"
                memray_file.unlink(missing_ok=True)
                command = [
                    sys.executable,
                    "-m",
                    "memray",
                    "run",
                    "-q",
                    "--trace-python-allocators",
                    "-o",
                    str(memray_file),
                    *command[1:],
                ]
            cpu0 = server.cpu_seconds()
            load0 = os.getloadavg()[0]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"phase {phase} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["server_cpu"] = server.cpu_seconds() - cpu0
            result["load"] = (load0 + os.getloadavg()[0]) / 2
            if memray_file is not None:
                result["memray"] = True  # its RSS includes memray's own
            found[phase] = result
            print(f"[{server.name} {size}] {phase}: {result}", flush=True)
            if memray_file is not None:
                memray_summary(memray_file)
        return found


def memray_summary(capture: Path, top: int = 30) -> None:
    """Where the first cycle's peak went: the allocations alive at memray's high-water
    mark, summed by the innermost crmsync line that made them (and by allocating line)."""
    from collections import Counter

    from memray import FileReader

    by_crmsync: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    reader = FileReader(str(capture))
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        stack = record.stack_trace()
        if stack:
            function, path, line = stack[0]
            by_line[f"{Path(path).name}:{line} {function}"] += record.size
        ours = next((f for f in stack if "/crmsync/" in f[1]), None)
        key = "(outside crmsync: imports, libraries)"
        if ours is not None:
            key = f"{ours[1].rpartition('/crmsync/')[2]}:{ours[2]} {ours[0]}"
        by_crmsync[key] += record.size
    total = sum(by_line.values())
    lines = [
        f"heap alive at the peak: {total / 2**20:.1f} MB "
        f"(RSS adds the interpreter, freed-but-kept arenas and memray itself)",
        "by the innermost crmsync line:",
    ]
    lines += [f"  {size / 2**20:7.1f} MB  {where}" for where, size in by_crmsync.most_common(top)]
    lines.append("by allocating line:")
    lines += [f"  {size / 2**20:7.1f} MB  {where}" for where, size in by_line.most_common(top)]
    text = "\n".join(lines)
    out = capture.with_suffix(".peak.txt")
    out.write_text(text + "\n")
    print(text)
    print(f"memray capture {capture}; this summary in {out}")


def report(results: dict[tuple[str, int], dict[str, dict[str, Any]]]) -> None:
    rows = []
    verdicts: list[str] = []
    loads: list[float] = []
    for (name, size), phases in results.items():
        for phase in PHASES:
            r = phases[phase]
            loads.append(r["load"])
            rows.append(
                [
                    name,
                    common.fmt(size),
                    phase + (" (under memray)" if r.get("memray") else ""),
                    common.fmt(r["max_rss_mb"]),
                    common.fmt(r["wall"]),
                    common.fmt(r["cpu"]),
                    common.fmt(r["server_cpu"]),
                    common.fmt(r.get("requests")),
                    common.fmt(r.get("links")),
                    common.fmt(r["load"], 1),
                ]
            )
        setup = phases["setup"]
        print(f"[{name} {size}] setup: {setup['how']}; {setup['wall']:.1f} s")
        worst = max(phases[p]["max_rss_mb"] for p in PHASES[1:])
        verdicts.append(
            f"{name} {size:,}: first cycle {phases['first cycle']['max_rss_mb']:.0f}"
            f" MB, no-change {phases['no-change']['max_rss_mb']:.0f} MB, full "
            f"listing {phases['full listing']['max_rss_mb']:.0f} MB "
            f"(<= {TARGET_MB} MB: {common.verdict(worst <= TARGET_MB)})"
        )
    common.print_table(
        "Peak client RSS per phase (1 rep, M contacts + M events; each phase in a fresh "
        "process, measured at every size)",
        [
            "server",
            "items/collection",
            "phase",
            "peak RSS MB",
            "wall s",
            "client CPU s",
            "server CPU s",
            "requests",
            "links",
            "load",
        ],
        rows,
    )
    if loads:
        print(
            f"1-minute load average during the phases: {min(loads):.1f}-{max(loads):.1f}; "
            f"{os.cpu_count()} CPUs; run {time.strftime('%Y-%m-%d %H:%M')}"
        )
    print("SUMMARY memory: " + "; ".join(verdicts))


# ------------------------------------------------------------------------------ children


def child(args: argparse.Namespace) -> None:
    server = pairs.load_server(args.server_json)
    home = Path(args.home)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {}
    if args.child == "setup":
        shutil.rmtree(home, ignore_errors=True)
        service = sample_data.open_service(home)
        seeded = sample_data.seed_crm(
            service.crm, bench_servers.rep_emails(1, server.name), args.items, args.seed
        )
        sample_data.configure(service, server, seeded.reps)
        rep = seeded.reps[0]
        facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
        out["how"] = linked_setup.write_server_items(
            server,
            facts.addressbook,
            [sample_data.render_contact(i, c) for i, c in seeded.contacts[rep.id]],
            raw_http.VCARD_TYPE,
        )
        linked_setup.write_server_items(
            server,
            facts.calendar,
            [sample_data.render_event(i, e) for i, e in seeded.events[rep.id]],
            raw_http.ICAL_TYPE,
        )
    else:
        service = sample_data.open_service(home)
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
            out["links"] = sum(
                service.store.count_links(rep.id, k) for k in (ItemKind.CONTACT, ItemKind.EVENT)
            )
    service.close()
    out.update(
        wall=time.perf_counter() - wall0,
        cpu=time.process_time() - cpu0,
        max_rss_mb=meters.max_rss_mb(),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
