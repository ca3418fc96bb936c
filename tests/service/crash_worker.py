"""One sync cycle of one rep in a process of its own, for the crash-safety test to kill.

    python tests/service/crash_worker.py HOME REP_EMAIL

Opens the deployment at HOME exactly as the CLI does, runs `SyncService.sync_rep` for the
rep and prints one JSON line: the writes per kind and the rep's error (if any). The exit
code is 0 when the cycle ended without an error, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

REPO = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    """The environment to start this script with: no CRMSYNC_ settings, the repo on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def main(home: str, email: str) -> int:
    with SyncService(Deployment.from_env(Path(home))) as service:
        report = service.sync_rep(service.rep_by_email(email))
        print(
            json.dumps(
                {
                    "writes": {kind.value: r.total_writes for kind, r in report.kinds.items()},
                    "error": report.error,
                }
            ),
            flush=True,
        )
    return 0 if report.error is None else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
