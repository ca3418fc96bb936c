"""Meters of the benchmarks: RSS and CPU of this process, its children and the server,
and timed blocks (`measure`, per kind of item with `per_kind_meter`)."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import common  # noqa: F401  (puts the repository root on sys.path before crmsync imports)
import psutil

if TYPE_CHECKING:  # annotations only: bench_servers imports this module
    from bench_servers import Server

    from crmsync.domain.records import ItemKind
    from crmsync.service.runner import SyncService


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def max_rss_mb() -> float:
    """This process's lifetime peak RSS: ``VmHWM`` of its memory map where Linux has it.

    Not ``ru_maxrss`` there: a child started by ``subprocess`` (vfork + exec) inherits its
    parent's peak in ``ru_maxrss``, so a small phase would report its parent's size."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_cpu() -> float:
    """CPU of this process's terminated, waited-for children (subprocess.run ones)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(processes: Sequence[psutil.Process]) -> float:
    """User + system CPU of the processes and their living children so far (a process
    gone meanwhile counts nothing)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for p in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = p.cpu_times()
                    total += times.user + times.system
    return total


@dataclass
class Measured:
    label: str
    items: int
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = float("nan")
    requests: int | None = None
    peak_rss: float = float("nan")
    load: float = float("nan")  # mean 1-minute load average while it ran

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.wall else float("nan")

    @property
    def cpu_per_item(self) -> float:
        return self.cpu / self.items if self.items else float("nan")

    @property
    def server_cpu_per_item(self) -> float:
        return self.server_cpu / self.items if self.items else float("nan")

    @property
    def requests_per_item(self) -> float:
        if self.requests is None or not self.items:
            return float("nan")
        return self.requests / self.items


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0.0
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)
            if ticks % 100 == 0:
                self.loads.append(os.getloadavg()[0])
            ticks += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


@contextlib.contextmanager
def measure(
    label: str, items: int, server: Server | None = None, requests: Callable[[], int] | None = None
) -> Iterator[Measured]:
    """Time a block: wall clock, this process's CPU, the server's CPU, requests, peak RSS."""
    result = Measured(label, items)
    server_before = server.cpu_seconds() if server else float("nan")
    requests_before = requests() if requests else 0
    with PeakRss() as peak:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        yield result
        result.wall = time.perf_counter() - wall0
        result.cpu = time.process_time() - cpu0
    result.peak_rss = peak.peak
    result.load = sum(peak.loads) / len(peak.loads) if peak.loads else os.getloadavg()[0]
    if server is not None:
        result.server_cpu = server.cpu_seconds() - server_before
    if requests is not None:
        result.requests = requests() - requests_before


@contextlib.contextmanager
def per_kind_meter(service: SyncService, server: Server) -> Iterator[dict[ItemKind, Measured]]:
    """Measure each engine ``sync_kind`` call (one rep, one kind) while the block runs.

    Wraps ``crmsync.service.rep_cycle.sync_kind`` for the block's duration (bench-only patch,
    no crmsync code changes); figures add up over reps; ``items`` counts writes.
    """
    import crmsync.service.rep_cycle as runner

    def requests() -> int:
        return service.mail_server().requests_made

    per_kind = {
        kind: Measured(f"{kind.value}s", 0, server_cpu=0.0, requests=0, peak_rss=0.0)
        for kind in runner.KINDS
    }
    original = runner.sync_kind

    def timed(rep_id: str, kind: ItemKind, *rest: Any) -> Any:
        with measure(kind.value, 0, server, requests) as m:
            result = original(rep_id, kind, *rest)
        acc = per_kind[kind]
        acc.items += result.total_writes
        acc.wall += m.wall
        acc.cpu += m.cpu
        acc.server_cpu += m.server_cpu
        acc.requests = (acc.requests or 0) + (m.requests or 0)
        acc.peak_rss = max(acc.peak_rss, m.peak_rss)
        acc.load = m.load if acc.load != acc.load else (acc.load + m.load) / 2
        return result

    runner.sync_kind = timed  # type: ignore[assignment]
    try:
        yield per_kind
    finally:
        runner.sync_kind = original
