"""The benchmarks' waits end: a pass of crmsync processes that never finishes, or whose
process died, stops the bench with a message saying so instead of hanging it
(bench/steady_visible.py waited for `crmsync serve`'s first pass without a deadline;
steady_workers.py's passes waited out the timeout when a worker or the scheduler died)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from crmsync.store import StateStore

BENCH = Path(__file__).parents[2] / "bench"


def _bench_common() -> ModuleType:
    """bench/common.py, which the scripts import as ``common`` from their own folder."""
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


common = _bench_common()


def test_a_pass_that_never_ends_stops_at_its_timeout(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "key")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    store.cycle_finished("done", at=dt.datetime.now(dt.UTC))
    store.schedule_reps(["waiting"])
    with pytest.raises(SystemExit, match=r"pass \(1 of 2 reps\) not done after 0 s"):
        common.wait_for_pass(store.engine, ["done", "waiting"], since, poll=0.01, timeout=0.1)
    wall, errors = common.wait_for_pass(store.engine, ["done"], since, poll=0.01, timeout=0.1)
    assert wall >= 1 and errors == 0
    store.close()


def test_a_wait_stops_when_the_process_it_waits_for_exits() -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()

    def check() -> None:
        if exited.poll() is not None:
            raise SystemExit("crmsync serve exited")

    with pytest.raises(SystemExit, match="crmsync serve exited"):
        common.wait_until(lambda: None, timeout=60, poll=0.01, what=lambda: "x", check=check)


def test_a_workers_pass_stops_when_the_scheduler_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # steady_workers imports common from there
    steady_workers = importlib.import_module("steady_workers")
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "key")
    store.schedule_reps(["waiting"])
    copy = steady_workers.PostgresCopy("postgresql://bench@127.0.0.1/bench")
    copy.engines = {"state": store.engine}  # the pass reads only the state database
    fleet = steady_workers.Fleet(tmp_path, copy.urls, "redis://", 0, tmp_path / "logs", None)
    fleet.scheduler = subprocess.Popen([sys.executable, "-c", "pass"])
    fleet.scheduler.wait()
    started = dt.datetime.now(dt.UTC)
    with pytest.raises(SystemExit, match=r"the scheduler exited; see .*scheduler\.log"):
        copy.wait_pass(["waiting"], started, fleet.check_alive)
    store.close()
