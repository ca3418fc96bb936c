"""Retries and the shared limiter every HTTP backend, CRM or mail, throttles through.

Servers throttle per scope larger than one request: Graph per app and tenant (a 429 or 503
carries ``Retry-After``, https://learn.microsoft.com/graph/throttling), Google per Cloud
project and per user (403 ``rateLimitExceeded`` / ``userRateLimitExceeded`` or 429, with
exponential back-off and jitter, https://developers.google.com/workspace/calendar/api/guides/errors),
Salesforce per org (``REQUEST_LIMIT_EXCEEDED``). Every mailbox or rep of one such scope
shares a limiter, so when one of them is told to wait, the others wait too instead of
hammering the server and lengthening the penalty. It lives here, below the backends, so
that the CRM and the mail backends share one interface (`RequestLimiter`) and one
process-wide factory (`use_limiters`) that the service layer can point at Redis.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt ``n`` that fails waits ``base_delay * 2**(n-1)`` (capped, jittered) unless the
    server names a ``Retry-After`` (capped at ``max_retry_after``); after ``max_attempts``
    the request fails with ``ServerUnavailable``. ``sleep`` and ``clock`` are injectable."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return delay * (1 - self.jitter * random.random())


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RequestLimiter(Protocol):
    """What a connection calls: `wait` before each request, `block` when the server says
    to hold off the whole scope for ``seconds``."""

    tenant_id: str

    def wait(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float: ...

    def block(self, seconds: float, clock: Callable[[], float]) -> None: ...


class TenantLimiter:
    """Holds back every request of one throttling scope (a Microsoft 365 tenant, a Google
    Cloud project, one Google user) until the latest back-off has passed."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._blocked_until = 0.0

    def block(self, seconds: float, clock: Callable[[], float]) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, clock() + seconds)

    def wait(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> float:
        """Sleep until the tenant may be called again; returns the seconds slept."""
        with self._lock:
            remaining = self._blocked_until - clock()
        if remaining > 0:
            sleep(remaining)
            return remaining
        return 0.0


_LIMITERS: dict[str, RequestLimiter] = {}
_LIMITERS_LOCK = threading.Lock()
_make_limiter: Callable[[str], RequestLimiter] = TenantLimiter


def limiter_for(tenant_id: str) -> RequestLimiter:
    """The process-wide limiter of ``tenant_id`` (one object per scope; callers name
    the scope so that different servers never share one: ``google:<project>`` ...)."""
    with _LIMITERS_LOCK:
        key = tenant_id.lower()
        if key not in _LIMITERS:
            _LIMITERS[key] = _make_limiter(tenant_id)
        return _LIMITERS[key]


def use_limiters(make: Callable[[str], RequestLimiter] | None) -> None:
    """Make the process's limiters with ``make`` from now on, e.g. ones whose state every
    worker process shares (``crmsync.service.shared_rate_limits``); ``None``: in-process
    ones. Call it at process start: limiters handed out before are forgotten here."""
    global _make_limiter
    with _LIMITERS_LOCK:
        _make_limiter = make or TenantLimiter
        _LIMITERS.clear()
