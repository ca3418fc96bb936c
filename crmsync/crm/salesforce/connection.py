"""`SalesforceConnection`: authenticated, bounded, metered requests to one org's REST API.

Every response's ``Sforce-Limit-Info: api-usage=N/M`` header updates `usage`
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
``INVALID_SESSION_ID`` drops the token and tries once more with a new one; timeouts, 5xx
and ``UNABLE_TO_LOCK_ROW`` are retried after a jittered back-off (`RetryPolicy`);
``REQUEST_LIMIT_EXCEEDED`` is never retried: it stops writes (`writes_stopped`) until a
later response shows usage below the allocation again. Bodies are read up to
``max_response_bytes`` and refused beyond, before parsing.

Every request first waits on the org's limiter (`crmsync.transport.throttling`, scope
``salesforce:<My Domain host>``); a ``REQUEST_LIMIT_EXCEEDED`` or a ``Retry-After`` holds
back every rep of the org, and every worker process when the limiters live in Redis, so
N workers meeting a spent allocation send one burst of refused requests, not N.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from crmsync.crm.salesforce.auth import TokenSource
from crmsync.crm.salesforce.config import SalesforceConfig
from crmsync.crm.salesforce.errors import (
    InvalidSession,
    RequestLimitExceeded,
    UnexpectedAnswer,
    error_code,
    first_error,
    to_sync_error,
)
from crmsync.domain.sync import ServerUnavailable
from crmsync.transport import throttling
from crmsync.transport.bounded import read_bounded
from crmsync.transport.throttling import RequestLimiter, limiter_for, retry_after_seconds

log = logging.getLogger(__name__)

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
# Writes resume once the rolling usage is back under this share of the allocation, so a
# stop is not followed by a burst that ends in the same refusal.
RESUME_SHARE = 0.98
# How long a REQUEST_LIMIT_EXCEEDED without Retry-After holds the org's requests back:
# Salesforce names no wait, and the refusal also covers a burst of concurrent long
# requests (ConcurrentPerOrgLongTxn), which passes within seconds.
LIMIT_HOLD = 10.0


@dataclass(frozen=True)
class ApiUsage:
    """The org's rolling 24-hour API calls: ``used`` of ``limit``."""

    used: int
    limit: int

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)

    @classmethod
    def parse(cls, header: str | None) -> ApiUsage | None:
        match = _USAGE.search(header or "")
        return cls(int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class RetryPolicy(throttling.RetryPolicy):
    """The shared policy (attempts, ``Retry-After`` cap, ``sleep`` and ``clock``) with
    Salesforce's numbers and wait.

    The wait doubles from ``base_delay`` up to ``max_delay`` seconds with full jitter, so
    several workers blocked on one locked row do not retry in step. ``limit_hold``: how
    long a ``REQUEST_LIMIT_EXCEEDED`` without ``Retry-After`` holds the org's requests.
    ``random`` is injectable too (tests never wait).
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    limit_hold: float = LIMIT_HOLD
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def wait(self, attempt: int) -> None:
        self.sleep(self.random() * min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class Answer:
    """A response's status, parsed JSON body (``None`` when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class SalesforceConnection:
    """One org's REST API as the integration user; shareable by every rep of the org.

    ``calls_made`` counts API requests sent (each counts against the org's allocation;
    token requests do not).
    """

    def __init__(
        self,
        config: SalesforceConfig,
        client: httpx.Client | None = None,
        *,
        tokens: TokenSource | None = None,
        retry: RetryPolicy | None = None,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self.config = config
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=config.timeout, headers={"User-Agent": "crmsync"}
        )
        self.tokens = tokens or TokenSource(config, self.client)
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or limiter_for(org_scope(config))
        self._lock = threading.Lock()
        self.calls_made = 0
        self.usage: ApiUsage | None = None
        self.writes_stopped = False

    def __repr__(self) -> str:
        return f"SalesforceConnection({self.config.base_url}, v{self.config.api_version})"

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def __enter__(self) -> SalesforceConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """``path`` under the API version root; a path from Salesforce (``/services/...``,
        e.g. a ``nextRecordsUrl``) is taken as it is."""
        if path.startswith("/services/"):
            return self.config.base_url + path
        return f"{self.config.base_url}/services/data/v{self.config.api_version}/{path}"

    # ---------------------------------------------------------------- requests

    def get(self, path: str, params: Mapping[str, str] | None = None, **kw: Any) -> Answer:
        return self.request("GET", path, params=params, **kw)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool = False,
        accept: tuple[int, ...] = (),
        what: str = "the request",
    ) -> Answer:
        """Send one API request; returns 2xx answers and those in ``accept`` (e.g. 404,
        300), raises the mapped `SyncError` for any other error."""
        if write and self.writes_stopped:
            raise RequestLimitExceeded(
                f"crmsync stopped writing to Salesforce: the org's daily API allocation "
                f"was exceeded ({self._usage_text()})",
                "Writes resume once Salesforce reports usage below the allocation.",
            )
        url = self.url(path)
        renewed = False
        attempt = 0
        while True:
            self.limiter.wait(self.retry.clock, self.retry.sleep)
            token = self.tokens.token()
            headers = {"Authorization": f"Bearer {token.value}", "Accept": "application/json"}
            try:
                answer = self._send(method, url, params, json_body, headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                attempt += 1
                if attempt >= self.retry.max_attempts:
                    raise ServerUnavailable(
                        f"Salesforce could not be reached for {what}: {type(exc).__name__}",
                        "Check the network path to Salesforce; retried next cycle.",
                    ) from exc
                self.retry.wait(attempt)
                continue
            if answer.status < 300 or answer.status in accept:
                return answer
            error = first_error(answer.body)
            code = error_code(error)
            if answer.status == 401 or code == "INVALID_SESSION_ID":
                self.tokens.invalidate(token)
                if renewed:
                    raise InvalidSession(
                        f"Salesforce refused a freshly minted token for {what}",
                        "Check the app's OAuth policies and the integration user's access.",
                    )
                renewed = True
                continue
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            if retry_after is not None:
                self.limiter.block(min(retry_after, self.retry.max_retry_after), self.retry.clock)
            if code == "REQUEST_LIMIT_EXCEEDED":
                self.writes_stopped = True
                if retry_after is None:
                    self.limiter.block(self.retry.limit_hold, self.retry.clock)
                log.warning("Salesforce API allocation exceeded; writes stop (%s)", what)
                raise to_sync_error(error, what)
            retryable = answer.status >= 500 or code in ("UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE")
            if retryable:
                attempt += 1
                if attempt < self.retry.max_attempts:
                    if retry_after is None:  # else the limiter holds the next attempt
                        self.retry.wait(attempt)
                    continue
                if not code:
                    raise ServerUnavailable(
                        f"Salesforce answered HTTP {answer.status} to {what}",
                        "Salesforce may be in maintenance; retried next cycle.",
                    )
            raise to_sync_error(error or {"errorCode": f"HTTP_{answer.status}"}, what)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: dict[str, str],
    ) -> Answer:
        content = None
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = self.client.build_request(
            method, url, params=params, content=content, headers=headers
        )
        with self._lock:
            self.calls_made += 1
        response = self.client.send(request, stream=True)
        raw = read_bounded(response, self.config.max_response_bytes, "a Salesforce response")
        self._note_usage(response.headers.get("Sforce-Limit-Info"))
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                if response.status_code < 400:
                    raise UnexpectedAnswer(
                        f"Salesforce answered {method} with a body that is not JSON", ""
                    ) from exc
        return Answer(response.status_code, body, response.headers)

    # ---------------------------------------------------------------- API usage

    def _note_usage(self, header: str | None) -> None:
        usage = ApiUsage.parse(header)
        if usage is None:
            return
        with self._lock:
            self.usage = usage
            if self.writes_stopped and usage.used < usage.limit * RESUME_SHARE:
                self.writes_stopped = False
                log.info("Salesforce API usage is down to %s; writes resume", self._usage_text())

    def _usage_text(self) -> str:
        usage = self.usage
        return "usage unknown" if usage is None else f"{usage.used} of {usage.limit} calls used"


def org_scope(config: SalesforceConfig) -> str:
    """The limiter scope of the org: its My Domain host names one org."""
    return "salesforce:" + urlsplit(config.base_url).netloc.lower()
