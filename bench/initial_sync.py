"""Initial sync of a seeded built-in CRM to a DAV server, paired with the raw PUT limit.

    python bench/initial_sync.py --server radicale|xandikos [--reps N] [--items M]
        [--pairs P] [--url URL] [--no-vdirsyncer] [--profile FILE]

Seeds reps x M contacts and M events into the built-in CRM (SQLite in a temp dir) once,
then runs P interleaved pairs (crmsync, raw; raw, crmsync; ...), each phase in a fresh
Python process writing into empty collections of the same server: crmsync's
`SyncService.sync_all()` from a fresh copy of the seeded databases, and a bare httpx PUT
loop writing the same items (rendered by crmsync's own renderers). Each phase's
collections are deleted before the next phase. Then, once, a crmsync phase with its PUTs
answered in process (crmsync's own work per item), and vdirsyncer uploading the same
contacts from a local vdir (for scale, no ratio). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import bench_servers
import common
import httpx
import meters
import pairs
import psutil
import raw_http
import sample_data

RATE_TARGET = 0.9  # crmsync items/s >= 0.9 x the raw loop's
CPU_TARGET = 1.0  # crmsync client CPU/item <= the raw loop's


def main() -> None:
    parser = bench_servers.arguments(__doc__.splitlines()[0], items=2000)
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs (>= 3)")
    parser.add_argument("--no-vdirsyncer", action="store_true", help="skip the vdirsyncer run")
    parser.add_argument(
        "--profile",
        help="write a cProfile (CPU time) of the first crmsync phase's sync_all() to this file",
    )
    parser.add_argument("--child", choices=("crmsync", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--puts-answered-here", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--server-json", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "crmsync":
        child_crmsync(args)
    elif args.child == "raw":
        child_raw(args)
    else:
        with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
            run(args, Path(tmp))


# ------------------------------------------------------------------------------ parent


def run(args: argparse.Namespace, workdir: Path) -> None:
    emails = bench_servers.rep_emails(args.reps)
    with bench_servers.dav_server(args, workdir, emails) as server:
        template = workdir / "template"
        service = sample_data.open_service(template)
        t0 = time.perf_counter()
        seeded = sample_data.seed_crm(service.crm, emails, args.items, args.seed)
        sample_data.configure(service, server, seeded.reps)
        service.close()
        ids = workdir / "ids.json"
        ids.write_text(
            json.dumps(
                {
                    "contacts": [[i for i, _ in v] for v in seeded.contacts.values()],
                    "events": [[i for i, _ in v] for v in seeded.events.values()],
                }
            )
        )
        print(
            f"seeded {len(seeded.reps)} rep(s) x {args.items} contacts + {args.items} events "
            f"in {time.perf_counter() - t0:.1f} s; server {server.name} at {server.url}",
            flush=True,
        )
        info = pairs.server_json(server, workdir / "server.json")
        base = [
            "--server",
            server.name,
            "--server-json",
            str(info),
            "--seed",
            str(args.seed),
            "--items",
            str(args.items),
            "--reps",
            str(args.reps),
        ]

        def crmsync_phase(k: int) -> pairs.Phase:
            home = workdir / f"crmsync-{k}"
            shutil.copytree(template, home)
            extra = ["--profile", args.profile] if args.profile and k == 0 else []
            result = pairs.run_child(
                __file__,
                [*base, "--child", "crmsync", "--home", str(home), *extra],
                f"crmsync {k + 1}",
            )
            delete_collections(server, result["collections"])
            shutil.rmtree(home)
            return result

        def raw_phase(k: int) -> pairs.Phase:
            result = pairs.run_child(
                __file__,
                [*base, "--child", "raw", "--ids", str(ids), "--tag", str(k)],
                f"raw {k + 1}",
            )
            delete_collections(server, result["collections"])
            return result

        found = []
        for ours, raw, order in pairs.interleaved(args.pairs, crmsync_phase, raw_phase):
            found.append((ours, raw, order))
            print(
                f"pair {len(found)} ({order}): crmsync {ours['items']} items "
                f"{ours['wall']:.1f} s, {ours['cpu'] / max(ours['items'], 1) * 1000:.2f} "
                f"ms CPU/item; raw {raw['items']} items {raw['wall']:.1f} s, "
                f"{raw['cpu'] / max(raw['items'], 1) * 1000:.2f} ms CPU/item; load "
                f"{ours['load']:.1f} / {raw['load']:.1f}",
                flush=True,
            )
        # Once, for the breakdown: crmsync's own work per item, its PUTs answered in
        # process (discovery, listings and everything else as in the pairs).
        home = workdir / "crmsync-own-work"
        shutil.copytree(template, home)
        own_work = pairs.run_child(
            __file__,
            [*base, "--child", "crmsync", "--home", str(home), "--puts-answered-here"],
            "crmsync, PUTs answered in process",
        )
        shutil.rmtree(home)
        vdir = None
        if not args.no_vdirsyncer:
            vdir = vdirsyncer(server, seeded, workdir / "vdirsyncer")
        report(args, server, found, vdir, own_work)


def delete_collections(server: bench_servers.Server, paths: list[str]) -> None:
    """Empty the server of a phase's collections, so the next phase starts alike."""
    with raw_http.raw_client(server) as client:
        for path in paths:
            client.request("DELETE", server.url + path)


# ------------------------------------------------------------------------------ children


def child_crmsync(args: argparse.Namespace) -> None:
    """One timed `sync_all()` from a fresh copy of the seeded databases."""
    server = pairs.load_server(args.server_json)
    service = sample_data.open_service(Path(args.home))
    if args.puts_answered_here:
        answer_puts_in_process()

    def requests() -> int:
        return service.mail_server().requests_made

    # CPU time, not wall time: the client CPU per item is what the profile should explain.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    with (
        meters.per_kind_meter(service, server) as per_kind,
        pairs.TimedBlock(server, requests) as total,
    ):
        if profiler:
            profiler.enable()
        reports = service.sync_all()
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(args.profile)
        print(f"cProfile of sync_all() written to {args.profile}")
    failed = [r.error for r in reports if r.error]
    errors = sum(k.errors for r in reports for k in r.kinds.values())
    if failed or errors:
        print(f"WARNING: {len(failed)} rep(s) failed, {errors} item error(s): {failed[:3]}")
    collections = []
    for rep in service.reps():
        facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
        collections += [facts.addressbook, facts.calendar]
    service.close()
    kinds = {
        kind.value: {
            "items": m.items,
            "wall": m.wall,
            "cpu": m.cpu,
            "server_cpu": m.server_cpu,
            "requests": m.requests,
        }
        for kind, m in per_kind.items()
    }
    pairs.emit(
        {
            **total.as_dict(),
            "items": sum(r.writes for r in reports),
            "kinds": kinds,
            "collections": collections,
        }
    )


def answer_puts_in_process() -> None:
    """Every PUT of the DAV backend answered "201 Created" with a fresh ETag, without
    sending it: what is left of a sync's CPU is crmsync's own work."""
    from crmsync.groupware.dav.collection import DavCollection

    etags = itertools.count()

    def put(self: DavCollection, href: str, text: str, headers: dict[str, str]) -> httpx.Response:
        self.connection.requests_made += 1
        text.encode("utf-8")  # as the connection does
        return httpx.Response(201, headers={"ETag": f'"in-process-{next(etags)}"'})

    DavCollection._put = put  # type: ignore[method-assign]


def child_raw(args: argparse.Namespace) -> None:
    """The same items PUT sequentially by one bare httpx client into empty collections.

    Rendering happens inside the timed loop (crmsync has to render too); a render-only pass
    runs after it, for the breakdown."""
    server = pairs.load_server(args.server_json)
    ids = json.loads(Path(args.ids).read_text())
    records = regenerate(args.reps, args.items, args.seed)
    plans = (
        (
            "contact",
            ids["contacts"],
            records["contacts"],
            sample_data.render_contact,
            raw_http.VCARD_TYPE,
        ),
        ("event", ids["events"], records["events"], sample_data.render_event, raw_http.ICAL_TYPE),
    )
    client = raw_http.raw_client(server)
    work = []
    for kind, per_rep_ids, per_rep_records, render, content_type in plans:
        for rep, (rep_ids, rep_records) in enumerate(
            zip(per_rep_ids, per_rep_records, strict=True)
        ):
            path = raw_http.make_collection(
                client, server, f"raw-{kind}s-{args.tag}-{rep}", f"{kind}s"
            )
            work.append(
                (kind, path, list(zip(rep_ids, rep_records, strict=True)), render, content_type)
            )
    client.close()
    kinds: dict[str, dict[str, Any]] = {}
    # The client is made before the clock starts, as crmsync's connection is.
    client = raw_http.raw_client(server)
    with pairs.TimedBlock(server) as total:
        sent = 0
        for kind, path, items, render, content_type in work:
            with pairs.TimedBlock(server) as part:
                sent_here = raw_http.put_items(
                    client, server, path, (render(i, r) for i, r in items), content_type
                )
            sent += sent_here
            acc = kinds.setdefault(
                kind, {"items": 0, "wall": 0.0, "cpu": 0.0, "server_cpu": 0.0, "requests": 0}
            )
            acc["items"] += sent_here
            acc["requests"] += sent_here
            for key in ("wall", "cpu", "server_cpu"):
                acc[key] += getattr(part, key)
    client.close()
    total.requests = sent
    render_cpu = {}
    for kind, _, items, render, _ in work:
        cpu0 = time.process_time()
        for i, r in items:
            render(i, r)
        render_cpu[kind] = render_cpu.get(kind, 0.0) + time.process_time() - cpu0
    pairs.emit(
        {
            **total.as_dict(),
            "items": sent,
            "kinds": kinds,
            "render_cpu": render_cpu,
            "collections": [path for _, path, *_ in work],
        }
    )


def regenerate(reps: int, items: int, seed: int) -> dict[str, list[list[Any]]]:
    """The records `sample_data.seed_crm` seeded, generated again in the same order."""
    rng = random.Random(seed)
    out: dict[str, list[list[Any]]] = {"contacts": [], "events": []}
    for email in bench_servers.rep_emails(reps):
        out["contacts"].append([sample_data.make_contact(rng, n) for n in range(items)])
        out["events"].append([sample_data.make_event(rng, n, email) for n in range(items)])
    return out


# ------------------------------------------------------------------------------ vdirsyncer


def vdirsyncer(
    server: bench_servers.Server, seeded: sample_data.Seeded, folder: Path
) -> meters.Measured | None:
    """vdirsyncer uploading the same contacts from a filesystem vdir to empty address books."""
    exe = shutil.which("vdirsyncer") or str(Path(sys.executable).parent / "vdirsyncer")
    if not Path(exe).exists():
        print("vdirsyncer is not installed (pip install vdirsyncer): skipped")
        return None
    client = raw_http.raw_client(server)
    config = [
        textwrap.dedent(f"""\
        [general]
        status_path = "{folder / "status"}/"
        """)
    ]
    n = 0
    for i, records in enumerate(seeded.contacts.values()):
        path = raw_http.make_collection(client, server, f"vdirsyncer-{i}", "contacts")
        vdir = folder / f"vdir{i}"
        vdir.mkdir(parents=True)
        for crm_id, contact in records:
            name, text = sample_data.render_contact(crm_id, contact)
            (vdir / name).write_text(text, encoding="utf-8")
            n += 1
        config.append(
            textwrap.dedent(f"""\
            [pair c{i}]
            a = "c{i}_local"
            b = "c{i}_remote"
            collections = null
            conflict_resolution = "a wins"

            [storage c{i}_local]
            type = "filesystem"
            path = "{vdir}/"
            fileext = ".vcf"

            [storage c{i}_remote]
            type = "carddav"
            url = "{server.url}{path}"
            username = "{server.username}"
            password = "{server.password}"
            """)
        )
    client.close()
    config_path = folder / "config"
    config_path.write_text("\n".join(config))
    command = [exe, "-c", str(config_path)]
    subprocess.run([*command, "discover"], check=True, capture_output=True, input=b"")
    cpu0 = meters.children_cpu()
    peak = 0
    with meters.measure("vdirsyncer", n, server) as m:
        # Its RSS sampled every 10 ms (its ru_maxrss would start at ours: vfork + exec).
        process = psutil.Popen(
            [*command, "sync"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)
        _, stderr = process.communicate()
    m.cpu = meters.children_cpu() - cpu0  # the subprocess's CPU, not ours
    m.peak_rss = peak / 2**20
    if process.returncode != 0:
        print("vdirsyncer sync failed:", stderr[-2000:])
    print(f"vdirsyncer: {n} contacts in {m.wall:.1f} s", flush=True)
    return m


# ------------------------------------------------------------------------------ output


def _per_item(phase: dict[str, Any], key: str) -> float:
    return phase[key] / phase["items"] if phase["items"] else float("nan")


def _rate(phase: dict[str, Any]) -> float:
    return phase["items"] / phase["wall"] if phase["wall"] else float("nan")


def report(
    args: argparse.Namespace,
    server: bench_servers.Server,
    found: list[tuple[pairs.Phase, pairs.Phase, str]],
    vdir: meters.Measured | None,
    own_work: pairs.Phase,
) -> None:
    rows = []
    for k, (ours, raw, order) in enumerate(found, 1):
        for phase, name in (
            ((ours, "crmsync"), (raw, "raw PUT"))
            if order == "A,B"
            else ((raw, "raw PUT"), (ours, "crmsync"))
        ):
            kinds = phase["kinds"]
            rows.append(
                [
                    f"pair {k}: {name}",
                    common.fmt(phase["items"]),
                    common.fmt(phase["wall"]),
                    common.fmt(_rate(phase)),
                    common.fmt(_per_item(phase, "cpu") * 1000),
                    " / ".join(
                        common.fmt(_per_item(kinds[kind], "cpu") * 1000)
                        for kind in ("contact", "event")
                    ),
                    common.fmt(_per_item(phase, "server_cpu") * 1000),
                    common.fmt(_per_item(phase, "requests")),
                    common.fmt(phase["peak_rss"]),
                    common.fmt(phase["load"], 1),
                ]
            )
    if vdir is not None:
        rows.append(
            [
                "vdirsyncer (contacts, once)",
                common.fmt(vdir.items),
                common.fmt(vdir.wall),
                common.fmt(vdir.rate),
                common.fmt(vdir.cpu_per_item * 1000),
                "",
                common.fmt(vdir.server_cpu_per_item * 1000),
                "n/a",
                common.fmt(vdir.peak_rss),
                common.fmt(vdir.load, 1),
            ]
        )
    common.print_table(
        f"Initial sync: {args.reps} rep(s) x {args.items} contacts + {args.items} events, "
        f"{server.name}; phases in run order, each a fresh process into empty collections",
        [
            "phase",
            "items",
            "wall s",
            "items/s",
            "client CPU ms/item",
            "contacts / events",
            "server CPU ms/item",
            "req/item",
            "peak RSS MB",
            "load",
        ],
        rows,
    )
    ratios = [
        pairs.Ratio(
            "items/s", [_rate(o) / _rate(r) for o, r, _ in found], RATE_TARGET, at_most=False
        ),
        pairs.Ratio(
            "client CPU/item",
            [_per_item(o, "cpu") / _per_item(r, "cpu") for o, r, _ in found],
            CPU_TARGET,
        ),
    ]
    for kind in ("contact", "event"):
        ratios.append(
            pairs.Ratio(
                f"client CPU/item, {kind}s",
                [
                    _per_item(o["kinds"][kind], "cpu") / _per_item(r["kinds"][kind], "cpu")
                    for o, r, _ in found
                ],
            )
        )
    ratios.append(
        pairs.Ratio(
            "server CPU/item",
            [_per_item(o, "server_cpu") / _per_item(r, "server_cpu") for o, r, _ in found],
        )
    )
    pairs.print_ratios("Pairwise ratios, crmsync / raw PUT loop", ratios)
    raw_phases = [r for _, r, _ in found]
    render = {
        kind: sorted(r["render_cpu"][kind] / r["kinds"][kind]["items"] * 1000 for r in raw_phases)
        for kind in ("contact", "event")
    }
    print(
        "render-only CPU (part of the raw loop's figure), median of the raw phases: "
        + ", ".join(f"{kind}s {v[len(v) // 2]:.2f} ms/item" for kind, v in render.items())
    )
    rendering = sum(v[len(v) // 2] for v in render.values()) / len(render)
    own = _per_item(own_work, "cpu") * 1000
    print(
        f"crmsync's own work, its PUTs answered in process (one run): {own:.2f} ms CPU/item, "
        f"of which rendering about {rendering:.2f}; the rest (reading the CRM, planning, "
        "intents, links, audit) is what the raw loop does not do"
    )
    phases = [p for o, r, _ in found for p in (o, r)]
    print(pairs.load_note(phases))
    print(
        f"SUMMARY initial sync ({server.name}, {args.items} + {args.items} items, "
        f"{len(found)} pairs): "
        + "; ".join(r.summary() for r in ratios[:2])
        + f"; {sum(_per_item(o, 'requests') for o, _, _ in found) / len(found):.2f} "
        "requests/item"
    )


if __name__ == "__main__":
    main()
