"""One sync cycle of one rep in a process of its own, for the crash-safety test to kill.

    python tests/service/crash_worker.py HOME REP_EMAIL

Opens the deployment at HOME exactly as the CLI does, runs `SyncService.sync_rep` for the
rep and prints one JSON line: the writes per kind and the rep's error (if any). The exit
code is 0 when the cycle ended without an error, 1 otherwise. `run_worker` starts it for
the kill tests, armed on a `KillProxy`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

if TYPE_CHECKING:
    from tests.service.http_proxy import Counting, KillProxy

REPO = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    """The environment to start this script with: no CRMSYNC_ settings, the repo on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_worker(
    home: Path,
    email: str,
    proxy: KillProxy | None = None,
    counting: Counting | None = None,
    **arm: object,
) -> int:
    """One cycle in a worker process, which ``proxy`` (when given) kills at the ``arm``-ed
    request of those ``counting`` picks; the exit code: 0 for a whole cycle, -9 killed."""
    process = subprocess.Popen(
        [sys.executable, __file__, str(home), email],
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proxy is not None:
        proxy.arm(process.pid, counting=counting, **arm)  # type: ignore[arg-type]
    out, err = process.communicate(timeout=120)
    if process.returncode not in (0, -9):
        raise AssertionError(f"worker failed ({process.returncode}): {out}\n{err}")
    if process.returncode == 0:
        assert json.loads(out.splitlines()[-1])["error"] is None
    return process.returncode


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
