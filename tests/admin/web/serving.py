"""`crmsync serve` as a child process on a port the system picks (``--port 0``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def serving(home: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``crmsync serve --port 0 --no-scheduler OPTIONS`` on ``home``; yields its base URL
    (read from uvicorn's start-up line); stops it with SIGTERM and expects status 0."""
    log_path = home.parent / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from crmsync.admin.cli import main; main()",
                "serve",
                "--port",
                "0",
                "--no-scheduler",
                *options,
            ],
            env={**os.environ, "CRMSYNC_HOME": str(home), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = _wait_for_url(process, log_path)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        assert code == 0, log_path.read_text()[-3000:]


def _wait_for_url(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log_path.read_text()[-3000:]}")
        for line in log_path.read_text().splitlines():
            message = json.loads(line).get("message", "") if line.startswith("{") else line
            found = re.search(r"running on (http://[\d.]+:\d+)", message)
            if found and httpx.get(found[1] + "/healthz").status_code == 200:
                return found[1]
        time.sleep(0.1)
    raise AssertionError(f"serve did not start: {log_path.read_text()[-3000:]}")
