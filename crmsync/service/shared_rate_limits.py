"""Rate limits every worker process shares: one token bucket per throttling scope in Redis.

The in-process `TenantLimiter` holds back one process's requests; N workers on several
machines each holding their own would together send N times a tenant's share and make N
separate guesses after a ``Retry-After``. `RedisLimiter` keeps the same interface with the
state in Redis: a wait a server announced for the scope (``block``) holds back every
worker, and each request first takes a token from the scope's bucket, refilled at the
scope's `Rate`. One Lua script per operation reads Redis' own clock and updates the keys
atomically, so processes on machines with differing clocks agree.

When Redis cannot be reached, each limiter falls back to its in-process behaviour (waits
announced to this process only, no bucket) with one warning line, and tries Redis again
after `RECONNECT_AFTER` seconds: a sync is never stopped by Redis being down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmsync.transport.throttling import TenantLimiter, use_limiters

log = logging.getLogger(__name__)

RECONNECT_AFTER = 30.0
# A dead Redis must not hold a request up for long: it costs this much, once per
# RECONNECT_AFTER, before the process limits on its own.
REDIS_TIMEOUT = 0.5
KEY_PREFIX = "crmsync:rate:"

# KEYS: the scope's blocked-until key, its bucket. ARGV: tokens per second (0: no bucket),
# burst, the bucket's idle lifetime in ms. Returns the seconds to wait before asking
# again as a string (Lua numbers become integers on the way out); "0": a token was taken.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then return tostring(blocked - now) end
local rate = tonumber(ARGV[1])
if rate <= 0 then return '0' end
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return tostring(wait)
"""

# KEYS: the scope's blocked-until key. ARGV: seconds from now. Never shortens a wait.
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


@dataclass(frozen=True)
class Rate:
    """``per_second`` requests on average, up to ``burst`` at once after a quiet spell."""

    per_second: float
    burst: float


def default_rate(scope: str) -> Rate | None:
    """The bucket of a scope as the backends name them (`crmsync.transport.throttling`).

    Google Calendar allows 10,000 requests a minute per Cloud project and 600 per user
    per project (https://developers.google.com/workspace/calendar/api/guides/quota):
    ``google:<project>`` gets 150/s, leaving headroom, and ``google:<project>:<user>``
    10/s. A Microsoft 365 tenant (its id) gets no bucket: Graph publishes its Outlook
    limits per mailbox, not per tenant (https://learn.microsoft.com/graph/throttling-limits),
    so its workers share only the waits Graph announces. A Salesforce org
    (``salesforce:<My Domain host>``) gets none either: Salesforce publishes a 24-hour
    allocation, not a rate; its workers share the holds a refusal starts.
    """
    if scope.startswith("google:"):
        return Rate(10.0, 10.0) if scope.count(":") >= 2 else Rate(150.0, 150.0)
    return None


class SharedRateLimits:
    """The limiters of one Redis (``redis://host:port/db``), one per scope; hand `limiter`
    to `crmsync.transport.throttling.use_limiters`, or call `configure`."""

    def __init__(self, redis_url: str, rates: Callable[[str], Rate | None] = default_rate) -> None:
        try:
            import redis
        except ImportError:
            raise ValueError(
                "CRMSYNC_REDIS_URL is set but the redis package is missing: "
                "pip install 'crmsync[scaleout]'"
            ) from None
        self.rates = rates
        self.client = redis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        # Where the limits live, without the URL's password (logs must not hold it).
        pool = self.client.connection_pool.connection_kwargs
        self.where = f"{pool.get('host', '?')}:{pool.get('port', '?')}"
        self._take = self.client.register_script(_TAKE)
        self._block = self.client.register_script(_BLOCK)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._lock = threading.Lock()
        self._down_until = 0.0

    def limiter(self, scope: str) -> RedisLimiter:
        return RedisLimiter(scope, self)

    def close(self) -> None:
        self.client.close()

    def run(self, script: str, keys: list[str], args: list[Any]) -> str | None:
        """Run ``script`` ("take" or "block"); ``None`` while Redis is unreachable."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return None
        try:
            answer = (self._take if script == "take" else self._block)(keys=keys, args=args)
        except self._errors as exc:
            with self._lock:
                self._down_until = time.monotonic() + RECONNECT_AFTER
            log.warning(
                "shared rate limits: Redis at %s cannot be reached (%s); this process "
                "limits its requests on its own and tries Redis again in %.0f s",
                self.where,
                type(exc).__name__,
                RECONNECT_AFTER,
            )
            return None
        with self._lock:
            if self._down_until:
                self._down_until = 0.0
                log.info("shared rate limits: Redis at %s is back", self.where)
        return answer.decode() if isinstance(answer, bytes) else str(answer)


class RedisLimiter(TenantLimiter):
    """One scope's limiter whose waits and bucket every process shares through Redis."""

    def __init__(self, tenant_id: str, shared: SharedRateLimits) -> None:
        super().__init__(tenant_id)
        self.shared = shared
        self.rate = shared.rates(tenant_id)
        key = KEY_PREFIX + tenant_id.lower()
        self._keys = [key + ":blocked", key + ":bucket"]

    def try_take(self) -> float | None:
        """Take a token if the scope may be called now: 0.0; else the seconds to wait
        before asking again (nothing taken). ``None``: Redis cannot be reached."""
        rate = self.rate or Rate(0.0, 0.0)
        # An idle bucket is full again after burst / rate seconds; keep it that long.
        idle_ms = int(1000 * (rate.burst / rate.per_second + 60)) if rate.per_second else 60000
        answer = self.shared.run("take", self._keys, [rate.per_second, rate.burst, idle_ms])
        return None if answer is None else max(0.0, float(answer))

    def wait(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        slept = 0.0
        while (delay := self.try_take()) is not None:
            if delay <= 0:
                return slept
            sleep(delay)
            slept += delay
        return slept + super().wait(clock, sleep)

    def block(self, seconds: float, clock: Callable[[], float]) -> None:
        # Kept here too, so the wait still holds if Redis goes away before it ends.
        super().block(seconds, clock)
        self.shared.run("block", self._keys[:1], [max(0.0, seconds)])


def configure(redis_url: str | None) -> SharedRateLimits | None:
    """Make this process's limiters share their state through ``redis_url``; ``None``:
    in-process limiters (the default). Call once at process start."""
    if not redis_url:
        use_limiters(None)
        return None
    shared = SharedRateLimits(redis_url)
    use_limiters(shared.limiter)
    log.info("shared rate limits in Redis at %s", shared.where)
    return shared
