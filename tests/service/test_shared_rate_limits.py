"""Rate limits shared by worker processes through a real Redis (`shared_rate_limits`)."""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from crmsync.service.shared_rate_limits import Rate, RedisLimiter, SharedRateLimits, configure
from crmsync.transport import throttling
from tests.redis_server import RedisServer, redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

BURST = 40
# One token an hour: no token comes back while the test runs, so every grant is counted.
NO_REFILL = Rate(per_second=1 / 3600, burst=BURST)


def _draw(url: str, attempts: int, granted: multiprocessing.Queue) -> None:
    shared = SharedRateLimits(url, rates=lambda scope: NO_REFILL)
    limiter = shared.limiter("google:project-a")
    got = sum(1 for _ in range(attempts) if limiter.try_take() == 0.0)
    granted.put(got)
    shared.close()


def test_processes_drawing_from_one_bucket_never_get_more_than_it_holds(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    granted: multiprocessing.Queue = context.Queue()
    workers = [context.Process(target=_draw, args=(redis_url, 25, granted)) for _ in range(4)]
    for worker in workers:
        worker.start()
    counts = [granted.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    # 100 attempts against a bucket of 40: exactly the bucket's tokens, whoever got them.
    assert sum(counts) == BURST
    # Another scope has its own bucket.
    other = SharedRateLimits(redis_url, rates=lambda scope: NO_REFILL).limiter("google:project-b")
    assert other.try_take() == 0.0


def test_an_empty_bucket_names_the_wait_until_its_next_token(redis_url: str) -> None:
    limiter = SharedRateLimits(redis_url, rates=lambda scope: Rate(0.5, 1)).limiter("google:p")
    assert limiter.try_take() == 0.0
    wait = limiter.try_take()
    assert wait is not None and 0 < wait <= 2.0


def test_a_wait_one_process_is_told_holds_back_the_others(redis_url: str) -> None:
    told = SharedRateLimits(redis_url).limiter("tenant-1")
    other = SharedRateLimits(redis_url).limiter("tenant-1")
    told.block(0.4, time.monotonic)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    other.wait(time.monotonic, sleep)
    assert slept and 0 < slept[0] <= 0.4
    # Waits never shrink: a shorter announcement leaves the longer one in place.
    told.block(30, time.monotonic)
    told.block(1, time.monotonic)
    assert (other.try_take() or 0) > 25
    # A tenant without a bucket is not held back by another tenant's wait.
    assert SharedRateLimits(redis_url).limiter("tenant-2").try_take() == 0.0


def test_redis_going_away_falls_back_to_the_local_limiter(
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = SharedRateLimits(redis_server.url).limiter("google:p:rep@example.com")
    assert limiter.try_take() == 0.0
    redis_server.stop()
    now = [1000.0]
    slept: list[float] = []
    with caplog.at_level(logging.WARNING):
        limiter.block(5, lambda: now[0])
        assert limiter.try_take() is None
        assert limiter.wait(lambda: now[0], slept.append) == 5
    assert slept == [5]
    assert "Redis at 127.0.0.1" in caplog.text and "cannot be reached" in caplog.text
    # One line for the outage, not one per request.
    assert caplog.text.count("cannot be reached") == 1


def test_configure_makes_the_backends_limiters_shared(redis_url: str) -> None:
    try:
        configure(redis_url)
        limiter = throttling.limiter_for("Contoso-Tenant")
        assert isinstance(limiter, RedisLimiter)
        assert throttling.limiter_for("contoso-tenant") is limiter
    finally:
        configure(None)
    assert type(throttling.limiter_for("contoso-tenant")) is throttling.TenantLimiter
