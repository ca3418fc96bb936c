"""`FakeClock`: the clock the HTTP backends' throttling is given in tests, so a back-off is
recorded and time moves on without anyone waiting."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """The injected clock: ``sleep`` records the wait and moves time on, never blocks."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now
