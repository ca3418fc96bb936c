"""Interleaved pairs of phases, each in a fresh Python process, and their ratios.

A ratio from one sample per phase in a fixed order lets load drift and ordering decide the
verdict (the second phase inherits a grown heap and a warmer server). So every ratio in
``bench/`` comes from pairs run A, B, then B, A, then A, B ... (at least three), each phase
a fresh ``python bench/SCRIPT.py --child ...`` process printing one JSON line; the ratio
is taken pair by pair, and we print its median and spread (min-max) and a verdict only
when every pair falls on the same side of the target.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_servers
import common
import meters
import psutil

Phase = dict[str, Any]
MIN_PAIRS = 3


# ---------------------------------------------------------------------------- children


def server_json(server: bench_servers.Server, path: Path) -> Path:
    """Write what a child process needs to reach ``server`` (and meter its CPU)."""
    path.write_text(
        json.dumps(
            {
                "name": server.name,
                "url": server.url,
                "username": server.username,
                "password": server.password,
                "principal_path": server.principal_path,
                "data_dir": str(server.data_dir) if server.data_dir else None,
                "pid": server.process.pid if server.process else None,
            }
        )
    )
    return path


def load_server(path: str | Path) -> bench_servers.Server:
    info = json.loads(Path(path).read_text())
    process = None
    if info.get("pid"):
        try:
            process = psutil.Process(info["pid"])
        except psutil.Error:
            process = None
    return bench_servers.Server(
        info["name"],
        info["url"],
        info["username"],
        info["password"],
        info["principal_path"],
        process,
        Path(info["data_dir"]) if info["data_dir"] else None,
    )


def run_child(script: str, argv: Sequence[str], label: str) -> Phase:
    """Run ``python SCRIPT ARGV`` in a fresh process; its last stdout line, read as JSON,
    with the load average when it started and ended added."""
    load_before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"phase {label} failed:\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(f"  [{label}] {line}")
    result: Phase = json.loads(lines[-1])
    result["label"] = label
    result["load_before"] = load_before
    result["load_after"] = os.getloadavg()[0]
    return result


@dataclass
class Timed:
    """What a child measured around its timed block."""

    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = float("nan")
    peak_rss: float = float("nan")
    load: float = float("nan")
    requests: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall": self.wall,
            "cpu": self.cpu,
            "server_cpu": self.server_cpu,
            "peak_rss": self.peak_rss,
            "load": self.load,
            "requests": self.requests,
            "max_rss_mb": meters.max_rss_mb(),
        }


class TimedBlock:
    """Time a block in a child: wall, this process's CPU, the server's CPU, peak RSS, the
    mean 1-minute load average while it ran, and requests when ``requests`` is given."""

    def __init__(
        self, server: bench_servers.Server | None, requests: Callable[[], int] | None = None
    ) -> None:
        self.server = server
        self.requests = requests
        self.result = Timed()

    def __enter__(self) -> Timed:
        self._server0 = self.server.cpu_seconds() if self.server else float("nan")
        self._requests0 = self.requests() if self.requests else 0
        self._peak = meters.PeakRss().__enter__()
        self._load0 = os.getloadavg()[0]
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self.result

    def __exit__(self, *exc: object) -> None:
        r = self.result
        r.wall = time.perf_counter() - self._wall0
        r.cpu = time.process_time() - self._cpu0
        self._peak.__exit__()
        r.peak_rss = self._peak.peak
        loads = [self._load0, *self._peak.loads, os.getloadavg()[0]]
        r.load = sum(loads) / len(loads)
        if self.server is not None:
            r.server_cpu = self.server.cpu_seconds() - self._server0
        if self.requests is not None:
            r.requests = self.requests() - self._requests0


def emit(result: dict[str, Any]) -> None:
    """A child's answer: one JSON line, last on stdout."""
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- pairs


def interleaved(
    pairs: int, first: Callable[[int], Phase], second: Callable[[int], Phase]
) -> Iterator[tuple[Phase, Phase, str]]:
    """Run ``pairs`` pairs, alternating which phase goes first; yields (first's result,
    second's result, the order run) per pair."""
    if pairs < MIN_PAIRS:
        print(f"NOTE: {pairs} pair(s) is fewer than {MIN_PAIRS}: no verdicts will be given")
    for k in range(pairs):
        if k % 2 == 0:
            a = first(k)
            b = second(k)
            yield a, b, "A,B"
        else:
            b = second(k)
            a = first(k)
            yield a, b, "B,A"


@dataclass
class Ratio:
    """Pairwise ratios of one figure: the median, the spread, and a verdict against a
    target when every pair falls on the same side of it."""

    name: str
    values: list[float]
    target: float | None = None
    at_most: bool = True  # the ratio should be <= target (else >= target)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values, default=float("nan"))

    @property
    def high(self) -> float:
        return max(self.values, default=float("nan"))

    def verdict(self) -> str:
        if self.target is None:
            return ""
        if len(self.values) < MIN_PAIRS:
            return f"no verdict (fewer than {MIN_PAIRS} pairs)"
        good = [v <= self.target if self.at_most else v >= self.target for v in self.values]
        if all(good):
            return "MET"
        if not any(good):
            return "MISSED"
        return "no verdict (the pairs straddle the target)"

    def summary(self) -> str:
        sign = "<=" if self.at_most else ">="
        text = (
            f"{self.name} median {self.median:.2f} (pairs {self.low:.2f}-{self.high:.2f}, "
            f"n={len(self.values)})"
        )
        if self.target is not None:
            text += f", target {sign} {self.target}: {self.verdict()}"
        return text


def ratio_rows(ratios: Sequence[Ratio]) -> list[list[str]]:
    return [
        [
            r.name,
            common.fmt(r.median),
            f"{common.fmt(r.low)}-{common.fmt(r.high)}",
            ", ".join(common.fmt(v) for v in r.values),
            "" if r.target is None else ("<= " if r.at_most else ">= ") + str(r.target),
            r.verdict(),
        ]
        for r in ratios
    ]


def print_ratios(title: str, ratios: Sequence[Ratio]) -> None:
    common.print_table(
        title,
        ["ratio (crmsync / raw)", "median", "spread (min-max)", "per pair", "target", "verdict"],
        ratio_rows(ratios),
    )


def load_note(phases: Sequence[Phase]) -> str:
    loads = [p["load"] for p in phases if p.get("load") == p.get("load")]
    if not loads:
        return "load average: not measured"
    return (
        f"1-minute load average while the phases ran: {min(loads):.1f}-{max(loads):.1f} "
        f"(median {statistics.median(loads):.1f}); {os.cpu_count()} CPUs; "
        f"run {time.strftime('%Y-%m-%d %H:%M')}"
    )
