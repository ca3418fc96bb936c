"""One sync cycle of one rep in a process of its own, for the crash-safety test to kill.

    python tests/service/crash_worker.py HOME REP_EMAIL

Opens the deployment at HOME exactly as the CLI does, runs `SyncService.sync_rep` for the
rep and prints one JSON line: the writes per kind and the rep's error (if any). The exit
code is 0 when the cycle ended without an error, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService


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
