"""Shared basics of the benchmark scripts: crmsync processes and their waits, output.

Not a test module: the scripts under ``bench/`` import it (they run as
``python bench/NAME.py`` from the repository root, so this folder is on ``sys.path``;
this module puts the repository root there too, for ``crmsync`` and ``tests``: the other
bench modules import it before either).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crmsync.store import schema  # noqa: E402

# ---------------------------------------------------------------------------- crmsync processes

# How long a pass of every rep through crmsync processes may take before a bench gives up
# (minutes at 1,000 reps; a pass that never ends means a process is stuck).
PASS_TIMEOUT = 1800.0
T = TypeVar("T")


def start_crmsync(argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``crmsync ARGV`` in a session of its own (`stop_processes` reaches its children
    too), its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from crmsync.admin.cli import main; main()", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM to every process's session at once, then up to ``timeout`` seconds each
    to finish (cycles in flight end first); SIGKILL for one still running."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(
    done: Callable[[], T | None],
    *,
    timeout: float,
    poll: float,
    what: Callable[[], str],
    check: Callable[[], None] = lambda: None,
) -> T:
    """``done()`` every ``poll`` seconds until it returns something, which is returned;
    ``check()`` between tries (it raises if a process the wait depends on died). After
    ``timeout`` seconds: SystemExit saying ``what()`` is not done."""
    deadline = time.monotonic() + timeout
    while (found := done()) is None:
        check()
        if time.monotonic() > deadline:
            raise SystemExit(f"{what()} not done after {timeout:.0f} s")
        time.sleep(poll)
    return found


def wait_for_pass(
    engine: Any,
    rep_ids: Sequence[str],
    since: dt.datetime,
    *,
    poll: float,
    timeout: float = PASS_TIMEOUT,
    check: Callable[[], None] = lambda: None,
) -> tuple[float, int]:
    """Seconds from ``since`` until every rep finished a cycle after it and gave its lease
    up (read from the state database ``engine``), and how many of those cycles ended in
    an error."""
    reps = schema.reps
    finished = select(reps.c.last_error).where(
        reps.c.rep_id.in_(rep_ids),
        reps.c.last_cycle_finished >= since,
        reps.c.lease_owner.is_(None),
    )
    done: list[Any] = []

    def all_done() -> tuple[float, int] | None:
        with engine.connect() as conn:
            done[:] = conn.execute(finished).all()
        if len(done) < len(rep_ids):
            return None
        wall = (dt.datetime.now(dt.UTC) - since).total_seconds()
        return wall, sum(1 for (error,) in done if error)

    return wait_until(
        all_done,
        timeout=timeout,
        poll=poll,
        what=lambda: f"pass ({len(done)} of {len(rep_ids)} reps)",
        check=check,
    )


# ---------------------------------------------------------------------------- output


def fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}g}"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table on a terminal-independent width (so logs keep every column)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(columns):
        # The first column names the row: never cut it.
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    Console(width=max(240, int(os.environ.get("COLUMNS", "0") or 0)), soft_wrap=False).print(table)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def machine_note() -> str:
    """CPUs and load averages: other processes on the machine skew wall-clock figures."""
    one, five, _ = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, load average {one:.1f} (1 min) / {five:.1f} "
        "(5 min) at the end; a load above the CPU count means other processes competed "
        "with the client and the server, so wall-clock rates are noisy (CPU figures less so)"
    )
