"""steady_state.py's `--workers` mode: the passes through real `crmsync scheduler` and
`crmsync worker` processes (Redis broker, PostgreSQL state and CRM), 1 vs 2 workers.

The seeded SQLite state and CRM are copied once into two PostgreSQL databases, and each
snapshot ('linked', 'churned') into a schema beside the live tables, so a restore is a
TRUNCATE and an INSERT ... SELECT per table while the workers stay connected. A pass is
timed from the moment its N reps are made due (``next_due`` cleared in one transaction)
until every one of them has finished a cycle after that moment and given its lease up;
the scheduler claims every 0.1 s. Before the timed pass, the same workers run one
untimed no-change pass (their threads' services then hold discovery, as a running
worker's do). CPU is read from the processes (psutil): the workers, the scheduler, the
DAV server, PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import bench_servers
import common
import meters
import psutil
import sample_data
from sqlalchemy import Engine, Integer, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from steady_world import PASS_NAMES

from crmsync.crm.builtin.tables import metadata as crm_metadata
from crmsync.store import schema

FAR_AWAY = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_R = schema.reps


class PostgresCopy:
    """The deployment's state and CRM databases in PostgreSQL, with snapshot schemas."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.urls = {
            "state": self._database_url("crmsync_bench_state"),
            "crm": self._database_url("crmsync_bench_crm"),
        }
        self.metadata = {"state": schema.metadata, "crm": crm_metadata}
        self.engines: dict[str, Engine] = {}

    def _database_url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self, secrets_key: Path) -> None:
        """Fresh databases with crmsync's own schema (its migrations, as a deployment)."""
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for url in self.urls.values():
                name = make_url(url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        from crmsync.crm.builtin import BuiltinCrm
        from crmsync.store import StateStore

        StateStore(self.urls["state"], secrets_key).close()
        BuiltinCrm(self.urls["crm"]).close()
        self.engines = {which: create_engine(url) for which, url in self.urls.items()}

    def drop(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for url in self.urls.values():
                conn.execute(
                    text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
                )
        admin.dispose()

    def snapshot_from(self, home: Path, snapshot: str) -> None:
        """Copy the SQLite databases of ``home`` into the live tables, then into the
        schema ``snap_<snapshot>``."""
        for which, engine in self.engines.items():
            source = create_engine(f"sqlite:///{home / (which + '.sqlite')}")
            tables = self.metadata[which].sorted_tables
            with source.connect() as read, engine.begin() as write:
                write.execute(
                    text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE")
                )
                for table in tables:
                    rows = [dict(row._mapping) for row in read.execute(select(table))]
                    for start in range(0, len(rows), 5000):
                        write.execute(insert(table), rows[start : start + 5000])
                write.execute(text(f"DROP SCHEMA IF EXISTS snap_{snapshot} CASCADE"))
                write.execute(text(f"CREATE SCHEMA snap_{snapshot}"))
                for table in tables:
                    write.execute(
                        text(f'CREATE TABLE snap_{snapshot}."{table.name}" AS TABLE "{table.name}"')
                    )
                    self._fix_sequences(write, table)
            source.dispose()

    def restore(self, snapshot: str) -> None:
        """Put the snapshot back into the live tables, every rep scheduled far away (the
        scheduler must not start a pass before the bench does)."""
        for which, engine in self.engines.items():
            tables = self.metadata[which].sorted_tables
            with engine.begin() as conn:
                conn.execute(
                    text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE")
                )
                for table in tables:
                    conn.execute(
                        text(
                            f'INSERT INTO "{table.name}" SELECT * FROM '
                            f'snap_{snapshot}."{table.name}"'
                        )
                    )
                    self._fix_sequences(conn, table)
                if which == "state":
                    conn.execute(
                        update(_R).values(next_due=FAR_AWAY, lease_owner=None, lease_expires=None)
                    )

    @staticmethod
    def _fix_sequences(conn: Any, table: Any) -> None:
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer):  # setval(NULL, ...) where no sequence
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', "
                        f"'{column.name}'), "
                        f'COALESCE((SELECT max("{column.name}") '
                        f'FROM "{table.name}"), 0) + 1, false)'
                    )
                )

    def start_pass(self, rep_ids: Sequence[str]) -> dt.datetime:
        """Make the reps due now; the pass's start."""
        with self.engines["state"].begin() as conn:
            started = dt.datetime.now(dt.UTC)
            conn.execute(update(_R).where(_R.c.rep_id.in_(rep_ids)).values(next_due=None))
        return started

    def wait_pass(
        self, rep_ids: Sequence[str], started: dt.datetime, check: Callable[[], None]
    ) -> tuple[float, int]:
        """Seconds from ``started`` until every rep finished a cycle after it (with its
        lease given up), and how many of those cycles ended in an error. ``check`` raises
        when a process the pass needs exited (`Fleet.check_alive`): the wait stops then,
        not after `common.PASS_TIMEOUT`."""
        return common.wait_for_pass(self.engines["state"], rep_ids, started, poll=0.05, check=check)

    def first_errors(self, rep_ids: Sequence[str]) -> list[str]:
        with self.engines["state"].connect() as conn:
            return [
                e
                for (e,) in conn.execute(
                    select(_R.c.last_error)
                    .where(_R.c.rep_id.in_(rep_ids), _R.c.last_error.is_not(None))
                    .limit(3)
                )
            ]


def cluster_processes(url: str) -> list[psutil.Process]:
    """The PostgreSQL server listening on the URL's port, with its backends."""
    port = make_url(url).port
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and f"-p {port}" in " ".join(cmdline):
            return [process]
    return []


class Fleet:
    """One `crmsync scheduler` and W `crmsync worker` processes for the deployment."""

    def __init__(
        self,
        home: Path,
        urls: dict[str, str],
        broker: str,
        workers: int,
        logs: Path,
        worker_cpus: set[int] | None,
    ) -> None:
        self.env = {
            **os.environ,
            "CRMSYNC_HOME": str(home),
            "CRMSYNC_STATE_URL": urls["state"],
            "CRMSYNC_CRM_URL": urls["crm"],
            "CRMSYNC_BROKER_URL": broker,
        }
        self.count = workers
        self.logs = logs
        self.worker_cpus = worker_cpus
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Fleet:
        self.logs.mkdir(parents=True, exist_ok=True)
        for old_log in self.logs.glob("*.log"):
            old_log.unlink()
        for i in range(self.count):
            process = common.start_crmsync(["worker"], self.env, self.logs / f"worker{i}.log")
            if self.worker_cpus:
                psutil.Process(process.pid).cpu_affinity(sorted(self.worker_cpus))
            self.workers.append(process)
        self.scheduler = common.start_crmsync(
            ["scheduler", "--interval", "3600", "--poll", "0.1"],
            self.env,
            self.logs / "scheduler.log",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        started = [p for p in [*self.workers, self.scheduler] if p is not None]
        common.stop_processes(started, 60)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every worker says it is ready (Celery's "ready." line)."""
        logs = [self.logs / f"worker{i}.log" for i in range(self.count)]

        def all_ready() -> bool | None:
            return all("ready." in log.read_text(errors="replace") for log in logs) or None

        common.wait_until(
            all_ready,
            timeout=timeout,
            poll=0.2,
            what=lambda: f"the workers' start (see their logs in {self.logs})",
            check=self.check_alive,
        )

    def log_sizes(self) -> list[int]:
        return [(self.logs / f"worker{i}.log").stat().st_size for i in range(self.count)]

    def retries_since(self, sizes: list[int]) -> int:
        """Requests the workers retried (a connection reset, a timeout) since ``sizes``."""
        found = 0
        for i, size in enumerate(sizes):
            with (self.logs / f"worker{i}.log").open("rb") as log:
                log.seek(size)
                found += log.read().count(b"failed (")
        return found

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(p.pid) for p in self.workers]

    def check_alive(self) -> None:
        """SystemExit naming a process of the fleet (a worker, the scheduler) that exited."""
        named = [(f"worker {i}", f"worker{i}.log", p) for i, p in enumerate(self.workers)]
        if self.scheduler is not None:
            named.append(("the scheduler", "scheduler.log", self.scheduler))
        for name, log, process in named:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited; see {self.logs / log}")


@contextlib.contextmanager
def redis_broker(work: Path) -> Iterator[str]:
    from tests.redis_server import RedisServer, redis_missing

    missing = redis_missing()
    if missing:
        raise SystemExit(f"--workers needs Redis: {missing}")
    redis = RedisServer(work / "redis").start()
    try:
        yield redis.url
    finally:
        redis.stop()


def redis_processes(broker: str) -> list[psutil.Process]:
    port = make_url(broker).port
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if (p.info["name"] or "").startswith("redis-server")
        and f"{port}" in " ".join(p.info["cmdline"] or [])
    ]


def worker_pass(
    world: Any,
    copy: PostgresCopy,
    broker: str,
    workers: int,
    n: int,
    state: str,
    server_cpus: set[int] | None,
) -> dict[str, Any]:
    """One timed pass of N reps through a fresh scheduler and ``workers`` workers."""
    world.restore("linked")
    copy.restore("linked")
    service = sample_data.open_service(world.live / "home")
    rep_ids = [service.rep_by_email(e).id for e in bench_servers.rep_emails(n)]
    service.close()
    cpus = set(range(os.cpu_count() or 1))
    worker_cpus = cpus - server_cpus if server_cpus else None
    with Fleet(
        world.live / "home", copy.urls, broker, workers, world.work / "fleet-logs", worker_cpus
    ) as fleet:
        fleet.wait_ready()
        # Two untimed passes: every worker process and most of its cycle threads have then
        # opened their services and run discovery, as in a worker that has been running.
        copy.wait_pass(rep_ids, copy.start_pass(rep_ids), fleet.check_alive)
        warm, _ = copy.wait_pass(rep_ids, copy.start_pass(rep_ids), fleet.check_alive)
        fleet.check_alive()
        if state == "churned":
            world.restore("churned")
            copy.restore("churned")
        else:
            with copy.engines["state"].begin() as conn:
                conn.execute(update(_R).values(next_due=FAR_AWAY))
        if server_cpus:
            world.pin_server(server_cpus)
        metered = {
            "workers": fleet.processes(),
            "scheduler": [psutil.Process(fleet.scheduler.pid)],
            "server": [world.server.process] if world.server.process else [],
            "postgres": cluster_processes(copy.admin_url),
            "redis": redis_processes(broker),
        }
        before = {name: meters.tree_cpu(p) for name, p in metered.items()}
        load0 = os.getloadavg()[0]
        sizes = fleet.log_sizes()
        started = copy.start_pass(rep_ids)
        wall, errors = copy.wait_pass(rep_ids, started, fleet.check_alive)
        retries = fleet.retries_since(sizes)
        cpu = {name: meters.tree_cpu(p) - before[name] for name, p in metered.items()}
        load = (load0 + os.getloadavg()[0]) / 2
        if errors:
            print(f"WARNING: {errors} cycle(s) failed, e.g. {copy.first_errors(rep_ids)}")
    return {
        "wall": wall,
        "warm_up": warm,
        "errors": errors,
        "retries": retries,
        "load": load,
        "cpu": cpu["workers"],
        "server_cpu": cpu["server"],
        "postgres_cpu": cpu["postgres"],
        "other_cpu": cpu["scheduler"] + cpu["redis"],
        "workers": workers,
    }


def raw_phases(world: Any, n: int, state: str, parts: int, label: str) -> dict[str, Any]:
    """The raw loop over the N reps in ``parts`` concurrent fresh processes (each a slice
    of the reps); the wall time is the slowest process's."""
    import threading

    import pairs

    world.restore(state)
    found: list[dict[str, Any]] = [{} for _ in range(parts)]
    base = ["--work", str(world.work), "--state", state, "--n", str(n), "--child", "raw"]

    def run(k: int) -> None:
        found[k] = pairs.run_child(
            world.script, [*base, "--part", f"{k}/{parts}"], f"{label} raw part {k + 1}/{parts}"
        )

    threads = [threading.Thread(target=run, args=(k,)) for k in range(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(not f for f in found):
        raise SystemExit(f"{label}: a raw process failed")
    return {
        "wall": max(f["wall"] for f in found),
        "cpu": sum(f["cpu"] for f in found),
        "server_cpu": found[0]["server_cpu"] if parts == 1 else float("nan"),
        "requests": sum(f["requests"] for f in found),
        "load": sum(f["load"] for f in found) / parts,
    }


def run_workers_mode(
    world: Any, args: Any, reps: Sequence[int], counts: Sequence[int], server_cpus: set[int] | None
) -> tuple[list[list[str]], list[str]]:
    """Per N and pass: interleaved rounds of (1 worker, 2 workers; order alternated), each
    beside the raw loop in one process and in as many processes as the most workers."""
    import pairs

    rows: list[list[str]] = []
    summaries: list[str] = []
    copy = PostgresCopy(args.postgres_url)
    copy.create(world.work / "linked" / "home" / "secrets.key")
    try:
        home = world.work
        for snapshot in ("linked", "churned"):
            copy.snapshot_from(home / snapshot / "home", snapshot)
        with redis_broker(world.work) as broker:
            for n in reps:
                for state in ("linked", "churned"):
                    label = f"M={world.items} N={n} {PASS_NAMES[state]}"
                    rounds: list[dict[int | str, dict[str, Any]]] = []
                    for k in range(args.pairs):
                        order = list(counts) if k % 2 == 0 else list(reversed(counts))
                        found: dict[int | str, dict[str, Any]] = {}
                        for w in order:
                            found[w] = worker_pass(world, copy, broker, w, n, state, server_cpus)
                        found["raw"] = raw_phases(world, n, state, 1, label)
                        found["raw2"] = raw_phases(world, n, state, max(counts), label)
                        rounds.append(found)
                        print(
                            f"[{label}] round {k + 1} ({'/'.join(map(str, order))} workers): "
                            + ", ".join(
                                f"{w} worker(s) {found[w]['wall']:.2f} s "
                                f"(warm-up {found[w]['warm_up']:.2f}, "
                                f"{found[w]['retries']} retried requests, "
                                f"{found[w]['errors']} failed)"
                                for w in counts
                            )
                            + f"; raw {found['raw']['wall']:.2f} s, raw in {max(counts)} "
                            f"processes {found['raw2']['wall']:.2f} s; load "
                            f"{min(f['load'] for f in found.values()):.1f}-"
                            f"{max(f['load'] for f in found.values()):.1f}",
                            flush=True,
                        )
                    rows += workers_rows(world.items, n, state, rounds, counts)
                    one, most = min(counts), max(counts)
                    speedup = pairs.Ratio(
                        f"{most} workers' speed / {one}'s",
                        [r[one]["wall"] / r[most]["wall"] for r in rounds],
                        1.8,
                        at_most=False,
                    )
                    summaries.append(
                        f"{n} reps x {world.items} {PASS_NAMES[state]}: " + speedup.summary()
                    )
    finally:
        copy.drop()
    return rows, summaries


def workers_rows(
    items: int, n: int, state: str, rounds: list[dict[Any, dict[str, Any]]], counts: Sequence[int]
) -> list[list[str]]:
    import statistics

    def med(key: Any, field: str) -> float:
        return statistics.median(r[key][field] for r in rounds)

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    one = min(counts)
    rows = []
    for w in counts:
        busy = [
            (r[w]["cpu"] + r[w]["server_cpu"] + r[w]["postgres_cpu"] + r[w]["other_cpu"])
            / r[w]["wall"]
            for r in rounds
        ]
        loads = [r[w]["load"] for r in rounds]
        rows.append(
            [
                common.fmt(items),
                common.fmt(n),
                PASS_NAMES[state],
                f"{w} worker{'s' if w > 1 else ''}",
                f"{med(w, 'wall'):.2f} ({med('raw', 'wall'):.2f})",
                spread([r[w]["wall"] / r["raw"]["wall"] for r in rounds]),
                spread([r[one]["wall"] / r[w]["wall"] for r in rounds]) if w != one else "1",
                f"{med(w, 'cpu'):.2f} ({med('raw', 'cpu'):.2f})",
                f"{med(w, 'server_cpu'):.2f} ({med('raw', 'server_cpu'):.2f})",
                f"{med(w, 'postgres_cpu'):.2f}",
                f"{statistics.median(busy):.2f}",
                f"{med(w, 'warm_up'):.2f}",
                f"{med(w, 'retries'):.0f}",
                f"{sum(r[w]['errors'] for r in rounds)}",
                f"{min(loads):.1f}-{max(loads):.1f}",
            ]
        )
    most = max(counts)
    rows.append(
        [
            common.fmt(items),
            common.fmt(n),
            PASS_NAMES[state],
            f"raw in {most} processes",
            f"{med('raw2', 'wall'):.2f}",
            "",
            spread([r["raw"]["wall"] / r["raw2"]["wall"] for r in rounds]),
            f"{med('raw2', 'cpu'):.2f}",
            "",
            "",
            "",
            "",
            "",
            "",
            f"{min(r['raw2']['load'] for r in rounds):.1f}-"
            f"{max(r['raw2']['load'] for r in rounds):.1f}",
        ]
    )
    return rows


WORKERS_COLUMNS = [
    "M items",
    "N reps",
    "pass",
    "run by",
    "wall s (raw)",
    "x raw: median (spread)",
    "speed x one worker's (spread)",
    "workers' CPU s (raw)",
    "server CPU s (raw)",
    "PostgreSQL CPU s",
    "cores busy (all of it)",
    "warm-up pass s",
    "requests retried",
    "failed cycles",
    "load",
]
