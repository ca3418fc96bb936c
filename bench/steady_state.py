"""Steady state at N reps: a no-change pass and a 1 % churn pass over every rep, each paired
with the raw loop of the same sync-collection REPORTs, GETs and PUTs.

    python bench/steady_state.py [--server radicale|sabredav] [--reps 100,300] [--items 100]
        [--churn 0.01] [--pairs 3] [--passes no-change,churn] [--seed-into DIR | --seeded DIR]
        [--workers 1,2 --postgres-url URL [--server-cpus 1] | --visible [--edits 60]]
        [--profile FILE]

`--reps 100,300,1000` and `--items 100,500` add the larger sizes. One server per M is
seeded once with max(N) reps x M contacts and M events (Radicale: files written into its
storage; SabreDAV: the raw PUT loop), then paired by one crmsync cycle per rep; every N
uses the first N of those reps (bench/steady_world.py). `--seed-into DIR` seeds and
stops; `--seeded DIR` runs the passes on such a folder.

Passes (each phase a fresh Python process, `--child`, bench/steady_children.py; pairs
interleaved, bench/pairs.py):
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
import json
import signal
import sys
import tempfile
from pathlib import Path

import common
import pairs
import steady_children
from steady_world import PASS_NAMES, World

TIME_TARGET = 1.5  # a pass <= 1.5 x the raw loop (issue 16, at 1,000 reps)
STATES = {"no-change": "linked", "churn": "churned"}


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
        steady_children.run(args)
        return
    # A run started in the background ignores SIGINT: SIGTERM stops it through its
    # finally blocks (workers, servers and databases stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reps = sorted(int(n) for n in args.reps.split(","))
    if args.seed_into:
        world = World(__file__, Path(args.seed_into), max(reps), int(args.items), args)
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
            world = World(__file__, work, max(reps), items, args, port)
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
                        found = run_pairs(world, n, state, args.pairs)
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


def run_pairs(
    world: World, n: int, state: str, count: int
) -> list[tuple[pairs.Phase, pairs.Phase, str]]:
    """``count`` interleaved pairs of a crmsync and a raw phase, each a fresh process of
    this script, over the first ``n`` reps from the snapshot ``state``."""
    base = ["--work", str(world.work), "--state", state, "--n", str(n), "--raw", world.args.raw]

    def phase(which: str, k: int) -> pairs.Phase:
        if state == "churned":
            world.restore("churned")
        profile = world.args.profile and which == "crmsync" and k == 0
        extra = ["--profile", f"{world.args.profile}.{state}"] if profile else []
        return pairs.run_child(
            __file__,
            [*base, "--child", which, *extra],
            f"M={world.items} N={n} {PASS_NAMES[state]} {which} {k + 1}",
        )

    if state == "linked":
        world.restore("linked")
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
            f"[M={world.items} N={n} {PASS_NAMES[state]}] pair {len(found)} ({order}): "
            f"crmsync {ours['wall']:.2f} s {ours['requests']} req "
            f"{ours['statements']} stmts {ours['commits']} commits, "
            f"raw {raw['wall']:.2f} s {raw['requests']} req; "
            f"load {ours['load']:.1f} / {raw['load']:.1f}",
            flush=True,
        )
    return found


if __name__ == "__main__":
    main()
