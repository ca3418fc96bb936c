"""Initial sync of a seeded built-in CRM to a DAV server, beside the raw PUT limit and vdirsyncer.

    python bench/initial_sync.py --server radicale|xandikos [--reps N] [--items M]
        [--url URL] [--no-vdirsyncer] [--profile FILE]

Seeds reps x M contacts and M events into the built-in CRM (SQLite in a temp dir), runs
`SyncService.sync_all()` once, then, against the same server, a bare httpx PUT loop writing
the same items (rendered by crmsync's own renderers) into empty collections, then
vdirsyncer uploading the same contacts from a local vdir. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import common

from crmsync.domain.records import ItemKind


def main() -> None:
    parser = common.arguments(__doc__.splitlines()[0], items=2000)
    parser.add_argument("--no-vdirsyncer", action="store_true", help="skip the vdirsyncer run")
    parser.add_argument("--profile", help="write a cProfile of sync_all() to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, workdir: Path) -> None:
    emails = common.rep_emails(args.reps)
    with common.dav_server(args, workdir, emails) as server:
        service = common.open_service(workdir / "home")
        t0 = time.perf_counter()
        seeded = common.seed_crm(service.crm, emails, args.items, args.seed)
        common.configure(service, server, seeded.reps)
        print(f"seeded {len(seeded.reps)} rep(s) x {args.items} contacts + {args.items} events "
              f"in {time.perf_counter() - t0:.1f} s; server {server.name} at {server.url}",
              flush=True)
        ours, total = sync_measured(service, server, args.profile)
        service.close()
        raw = raw_loop(server, seeded)
        vdir = None
        if not args.no_vdirsyncer:
            vdir = vdirsyncer(server, seeded, workdir / "vdirsyncer")
        report(args, server, ours, total, raw, vdir)


# ------------------------------------------------------------------------------ crmsync


def sync_measured(service: Any, server: common.Server, profile: str | None
                  ) -> tuple[dict[ItemKind, common.Measured], common.Measured]:
    """Run sync_all() once; per-kind figures come from wrapping the engine's sync_kind."""
    def requests() -> int:
        return service.mail_server().requests_made

    # CPU time, not wall time: the client CPU per item is what the profile should explain.
    profiler = cProfile.Profile(time.process_time) if profile else None
    with common.per_kind_meter(service, server) as per_kind, \
            common.measure("total", 0, server, requests) as total:
        if profiler:
            profiler.enable()
        reports = service.sync_all()
        if profiler:
            profiler.disable()
    if profiler and profile:
        profiler.dump_stats(profile)
        print(f"cProfile of sync_all() written to {profile}")
    total.items = sum(r.writes for r in reports)
    failed = [r for r in reports if r.error]
    errors = sum(k.errors for r in reports for k in r.kinds.values())
    if failed or errors:
        print(f"WARNING: {len(failed)} rep(s) failed, {errors} item error(s): "
              f"{[r.error for r in failed][:3]}")
    for row in service.store.errors()[:5]:
        print("  error row:", row)
    return per_kind, total


# ------------------------------------------------------------------------------ raw loop


def raw_loop(server: common.Server, seeded: common.Seeded) -> dict[str, common.Measured]:
    """The same items PUT sequentially by one bare httpx client into empty collections.

    Rendering happens inside the timed loop (crmsync has to render too); the render-only
    CPU is measured apart, before, for the breakdown.
    """
    results: dict[str, common.Measured] = {}
    client = common.raw_client(server)
    plans = (
        ("contacts", seeded.contacts, common.render_contact, common.VCARD_TYPE),
        ("events", seeded.events, common.render_event, common.ICAL_TYPE),
    )
    for kind, per_rep, render, content_type in plans:
        n = sum(len(v) for v in per_rep.values())
        cpu0 = time.process_time()
        for records in per_rep.values():
            for crm_id, record in records:
                render(crm_id, record)
        results[f"render {kind}"] = common.Measured(f"render {kind}", n,
                                                    cpu=time.process_time() - cpu0)
        paths = [common.make_collection(client, server, f"raw-{kind}-{i}", kind)
                 for i in range(len(per_rep))]
        sent = 0
        with common.measure(kind, n, server) as m:
            for path, records in zip(paths, per_rep.values(), strict=True):
                sent += common.put_items(
                    client, server, path,
                    (render(crm_id, record) for crm_id, record in records), content_type)
        m.requests = sent
        results[kind] = m
        print(f"raw {kind}: {n} items in {m.wall:.1f} s", flush=True)
    client.close()
    return results


# ------------------------------------------------------------------------------ vdirsyncer


def vdirsyncer(server: common.Server, seeded: common.Seeded, folder: Path
               ) -> common.Measured | None:
    """vdirsyncer uploading the same contacts from a filesystem vdir to empty address books."""
    exe = shutil.which("vdirsyncer") or str(Path(sys.executable).parent / "vdirsyncer")
    if not Path(exe).exists():
        print("vdirsyncer is not installed (pip install vdirsyncer): skipped")
        return None
    client = common.raw_client(server)
    config = [textwrap.dedent(f"""\
        [general]
        status_path = "{folder / 'status'}/"
        """)]
    n = 0
    for i, records in enumerate(seeded.contacts.values()):
        path = common.make_collection(client, server, f"vdirsyncer-{i}", "contacts")
        vdir = folder / f"vdir{i}"
        vdir.mkdir(parents=True)
        for crm_id, contact in records:
            name, text = common.render_contact(crm_id, contact)
            (vdir / name).write_text(text, encoding="utf-8")
            n += 1
        config.append(textwrap.dedent(f"""\
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
            """))
    client.close()
    config_path = folder / "config"
    config_path.write_text("\n".join(config))
    command = [exe, "-c", str(config_path)]
    subprocess.run([*command, "discover"], check=True, capture_output=True, input=b"")
    cpu0 = common.children_cpu()
    with common.measure("vdirsyncer", n, server) as m:
        done = subprocess.run([*command, "sync"], capture_output=True, text=True)
    m.cpu = common.children_cpu() - cpu0  # the subprocess's CPU, not ours
    m.peak_rss = common.child_max_rss_mb()
    if done.returncode != 0:
        print("vdirsyncer sync failed:", done.stderr[-2000:])
    print(f"vdirsyncer: {n} contacts in {m.wall:.1f} s", flush=True)
    return m


# ------------------------------------------------------------------------------ output


def report(args: argparse.Namespace, server: common.Server,
           ours: dict[ItemKind, common.Measured], total: common.Measured,
           raw: dict[str, common.Measured], vdir: common.Measured | None) -> None:
    raw_total = common.Measured("raw total", raw["contacts"].items + raw["events"].items)
    for key in ("contacts", "events"):
        m = raw[key]
        raw_total.wall += m.wall
        raw_total.cpu += m.cpu
        raw_total.server_cpu = (0.0 if raw_total.server_cpu != raw_total.server_cpu
                                else raw_total.server_cpu) + m.server_cpu
        raw_total.requests = (raw_total.requests or 0) + (m.requests or 0)
        raw_total.load = m.load if raw_total.load != raw_total.load \
            else (raw_total.load + m.load) / 2
        raw_total.peak_rss = m.peak_rss if raw_total.peak_rss != raw_total.peak_rss \
            else max(raw_total.peak_rss, m.peak_rss)
    pairs = [
        ("contacts: crmsync", ours[ItemKind.CONTACT], raw["contacts"]),
        ("contacts: raw PUT", raw["contacts"], raw["contacts"]),
    ]
    if vdir is not None:
        pairs.append(("contacts: vdirsyncer", vdir, raw["contacts"]))
    pairs += [
        ("events: crmsync", ours[ItemKind.EVENT], raw["events"]),
        ("events: raw PUT", raw["events"], raw["events"]),
        ("total: crmsync", total, raw_total),
        ("total: raw PUT", raw_total, raw_total),
    ]
    rows = []
    for label, m, base in pairs:
        rows.append([
            label, common.fmt(m.items), common.fmt(m.wall), common.fmt(m.rate),
            common.fmt(m.rate / base.rate), common.fmt(m.cpu_per_item * 1000),
            common.fmt(m.cpu_per_item / base.cpu_per_item),
            common.fmt(m.server_cpu_per_item * 1000), common.fmt(m.requests_per_item),
            common.fmt(m.peak_rss), common.fmt(m.load, 1),
        ])
    common.print_table(
        f"Initial sync: {args.reps} rep(s) x {args.items} contacts + {args.items} events, "
        f"{server.name}",
        ["run", "items", "wall s", "items/s", "x raw rate", "client CPU ms/item",
         "x raw CPU", "server CPU ms/item", "req/item", "peak RSS MB",
         "load"],
        rows,
    )
    render = [raw["render contacts"], raw["render events"]]
    print("render-only CPU (inside the raw loop's figure): " + ", ".join(
        f"{m.label} {m.cpu_per_item * 1000:.2f} ms/item" for m in render))
    print(f"client process peak RSS over the whole run (ru_maxrss): {common.max_rss_mb():.0f} MB")
    print(common.machine_note())
    rate_ratio = total.rate / raw_total.rate
    cpu_ratio = total.cpu_per_item / raw_total.cpu_per_item
    print(
        f"SUMMARY initial sync ({server.name}): rate {rate_ratio:.2f} x raw (target >= 0.9: "
        f"{common.verdict(rate_ratio >= 0.9)}); client CPU/item {cpu_ratio:.2f} x raw loop's "
        f"(target <= 1.5: {common.verdict(cpu_ratio <= 1.5)}); "
        f"{total.requests_per_item:.2f} requests/item"
        + (f"; vdirsyncer {vdir.rate:.1f} items/s, {vdir.cpu_per_item * 1000:.2f} ms CPU/item"
           if vdir else "")
    )


if __name__ == "__main__":
    main()
