"""How long the console's Statuses page takes to render for an org of N reps.

    python bench/console_status.py [--reps 400,2000] [--runs 15]

For each N: a fresh deployment (built-in CRM, SQLite state store) with N active reps in
one profile-wide configuration plus a directly assigned pilot, each rep's latest cycle
stamped, a rep with held deletions and 200 failing items; the console app in-process
(FastAPI's TestClient, an API token as the caller). Timed, the median and the slowest of
``runs`` requests after one warm-up:

- ``GET /status``: the page as served (search box, 50 reps a page, the org's activity);
- ``GET /status?q=...``: a search narrowing to one rep;
- ``GET /api/v1/reps``: every rep's line at once (the same reads as the page, unpaged);
- baseline: the page's former per-rep work in the same run, ``views.rep_summary`` for
  every rep (reads of the rep's status, the configurations and the rep's error counts
  each), which the page did before it read them for all reps in a few queries.

The target of issue 14: under 300 ms at 2,000 reps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import fmt, machine_note, print_table, verdict

from crmsync.admin.web import create_app, views
from crmsync.admin.web.security import MANAGE, Permission, hash_password
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.domain.sync import ErrorEntry, ErrorType
from crmsync.service.deployment import Deployment
from tests.admin.web.seeding import stamp_cycle

TARGET_MS = 300.0


def _seed(service, reps: int) -> None:  # type: ignore[no-untyped-def]
    crm, store = service.crm, service.store
    profile = crm.create_profile("Sales")
    users = [
        crm.create_user(f"rep{n:05}@example.com", f"Rep {n:05}", profile_id=profile.id)
        for n in range(reps)
    ]
    store.save_config(SyncConfig("Sales", profile_ids=(profile.id,)))
    store.save_config(SyncConfig("Pilot", user_ids=tuple(u.id for u in users[:10])))
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    for user in users:
        stamp_cycle(store, user.id, started)
    store.record_error(
        ErrorEntry(
            users[1].id,
            ItemKind.CONTACT,
            None,
            "delete",
            ErrorType.MASS_DELETE,
            "held",
            "confirm",
            started,
        )
    )
    for n in range(200):
        store.record_error(
            ErrorEntry(
                users[2].id,
                ItemKind.CONTACT,
                f"/x/{n}.vcf",
                "read from mail server",
                ErrorType.MALFORMED_ITEM,
                "unreadable",
                "fix",
                started,
            )
        )


def _timed(runs: int, call: Callable[[], object]) -> tuple[float, float]:
    """Median and slowest of ``runs`` calls after one warm-up, in milliseconds."""
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", default="400,2000", help="org sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=15, help="timed requests per row")
    args = parser.parse_args()
    sizes = [int(n) for n in args.reps.split(",")]
    rows = []
    for reps in sizes:
        with tempfile.TemporaryDirectory() as workdir:
            from fastapi.testclient import TestClient

            app = create_app(Deployment.from_env(Path(workdir) / "home"))
            with TestClient(app) as client:
                service = app.state.service
                service.store.create_admin(
                    "bench", hash_password("bench password"), {*MANAGE, Permission.VIEW_ALL_DATA}
                )
                token = service.store.create_api_token("bench", "bench")
                headers = {"Authorization": f"Bearer {token}"}
                seeding = time.perf_counter()
                _seed(service, reps)
                seeded = time.perf_counter() - seeding

                def page(path: str, headers: dict[str, str] = headers) -> Callable[[], object]:
                    def get() -> object:
                        response = client.get(path, headers=headers)
                        assert response.status_code == 200, response.text[:300]
                        return response

                    return get

                def baseline(service=service) -> object:  # type: ignore[no-untyped-def]
                    return [views.rep_summary(service, u) for u in service.reps()]

                for label, call in (
                    ("GET /status", page("/status")),
                    ("GET /status?q=rep00002", page("/status?q=rep00002")),
                    ("GET /api/v1/reps (every rep)", page("/api/v1/reps")),
                    ("baseline: rep_summary per rep", baseline),
                ):
                    median, slowest = _timed(args.runs, call)
                    target = verdict(median < TARGET_MS) if label == "GET /status" else ""
                    rows.append(
                        [label, fmt(reps), fmt(median, 1), fmt(slowest, 1), target, fmt(seeded, 1)]
                    )
    print_table(
        f"Statuses page render time ({args.runs} runs each, after a warm-up)",
        ["request", "reps", "median ms", "slowest ms", f"< {TARGET_MS:.0f} ms", "seeding s"],
        rows,
    )
    print(machine_note())


if __name__ == "__main__":
    main()
