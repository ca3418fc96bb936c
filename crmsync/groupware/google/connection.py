"""`GoogleConnection`: authenticated, bounded, throttling-aware requests to Google's APIs.

Every request carries the rep's own token for the API (`GoogleTokens`). A 401 drops that
token and tries once more with a fresh one, then raises `AuthenticationFailed`.
Rate limits (403 ``rateLimitExceeded`` / ``userRateLimitExceeded``, 429) and 5xx are
retried with exponential back-off and jitter (``Retry-After`` when given) through the
shared limiters of `crmsync.transport.throttling`: the rep's own (Google counts per user
and per calendar) or, for a quota Google says is the project's, the project's, which
every rep of the service account shares. Once the attempts are spent the caller gets
`ServerUnavailable`. 403 ``quotaExceeded`` (the calendar went read-only) is not retried:
the rep is parked for `GoogleConfig.usage_limit_pause` and every request for it raises
`UsageLimitExceeded` until then. Bodies are read up to ``max_response_bytes`` before
being parsed; other answers are returned for the caller to judge (`problem`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from crmsync.domain.sync import AuthenticationFailed, RejectedWrite, ServerUnavailable, SyncError
from crmsync.groupware.google.config import SCOPES, GoogleConfig
from crmsync.groupware.google.errors import (
    RATE_LIMIT_REASONS,
    USAGE_LIMIT_REASONS,
    UsageLimitExceeded,
    message,
    reasons,
)
from crmsync.groupware.google.tokens import DelegationMissing, GoogleTokens, delegation_fix
from crmsync.transport.bounded import read_bounded
from crmsync.transport.throttling import (
    RETRY_STATUSES,
    RequestLimiter,
    limiter_for,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

API_NAMES = {"calendar": "Google Calendar API", "people": "People API"}
_NOT_ENABLED = frozenset({"accessnotconfigured", "service_disabled"})
_SCOPE_MISSING = frozenset({"insufficientpermissions", "access_token_scope_insufficient"})


@dataclass(frozen=True)
class Answer:
    """A response's status, parsed JSON body (``None`` when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def reasons(self) -> frozenset[str]:
        return reasons(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class GoogleConnection:
    """One Workspace's Calendar and People APIs as its service account; shareable by
    every rep (it holds the token cache, the limiters and the parked reps).

    ``requests_made`` counts API requests (retries count each; token requests do not).
    ``limiters`` maps a scope name to its limiter (default: the process-wide ones).
    """

    def __init__(
        self,
        config: GoogleConfig,
        client: httpx.Client | None = None,
        *,
        tokens: GoogleTokens | None = None,
        limiters: Callable[[str], RequestLimiter] = limiter_for,
    ) -> None:
        self.config = config
        self.key = config.key
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=60.0, headers={"User-Agent": "crmsync"})
        self.tokens = tokens or GoogleTokens(config, self.client)
        self.scope_name = f"google:{self.key.project_id or self.key.client_email}"
        self._limiters = limiters
        self._lock = threading.Lock()
        self._parked: dict[str, float] = {}
        self._write_locks: dict[str, threading.Lock] = {}
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"GoogleConnection({self.key.client_email!r})"

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def url(self, api: str, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        base = self.config.calendar_url if api == "calendar" else self.config.people_url
        return base.rstrip("/") + path

    def project_limiter(self) -> RequestLimiter:
        return self._limiters(self.scope_name)

    def user_limiter(self, subject: str) -> RequestLimiter:
        return self._limiters(f"{self.scope_name}:{subject.lower()}")

    def writes(self, subject: str) -> threading.Lock:
        """The lock serialising one rep's People writes ("mutate requests for the same
        user should be sent sequentially", people.updateContact)."""
        with self._lock:
            return self._write_locks.setdefault(subject.lower(), threading.Lock())

    # ---------------------------------------------------------------- parking

    def parked_for(self, subject: str) -> float:
        """Seconds the rep is still parked after a usage-limit refusal (0: not parked)."""
        with self._lock:
            until = self._parked.get(subject.lower(), 0.0)
        return max(0.0, until - self.config.retry.clock())

    def _park(self, subject: str) -> float:
        pause = self.config.usage_limit_pause
        with self._lock:
            self._parked[subject.lower()] = self.config.retry.clock() + pause
        return pause

    def _parked_error(self, subject: str, seconds: float) -> UsageLimitExceeded:
        hours = seconds / 3600
        return UsageLimitExceeded(
            f"Google made {subject}'s calendar read-only (Calendar usage limits exceeded); "
            f"crmsync leaves this rep alone for {hours:.1f} more hour(s)",
            "Google lifts the limit by itself after some hours. If it recurs, look for "
            "another app writing many events or invitations to this calendar "
            "(https://support.google.com/a/answer/2905486).",
            seconds,
        )

    # ---------------------------------------------------------------- requests

    def request(
        self,
        api: str,
        subject: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str = "the request",
    ) -> Answer:
        """Send one request as ``subject`` on ``api``; see the module docstring."""
        retry = self.config.retry
        parked = self.parked_for(subject)
        if parked:
            raise self._parked_error(subject, parked)
        refreshed = False
        last = ""
        attempt = 0
        while attempt < retry.max_attempts:
            attempt += 1
            user = self.user_limiter(subject)
            self.project_limiter().wait(retry.clock, retry.sleep)
            user.wait(retry.clock, retry.sleep)
            token = self.tokens.token(subject, api)
            send = {"Authorization": f"Bearer {token}", **(headers or {})}
            answer: Answer | None = None
            with self._lock:
                self.requests_made += 1
            try:
                answer = self._send(method, self.url(api, path), params, json_body, send, what)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = type(exc).__name__
                limiter = user
            else:
                log.debug("%s %s -> %s", method, path.split("?")[0], answer.status)
                why = answer.reasons
                if answer.status == 401:
                    self.tokens.invalidate(subject, api)
                    if refreshed:
                        raise AuthenticationFailed(
                            f"Google refused {subject}'s fresh token twice (HTTP 401 on "
                            f"{method} {path.split('?')[0]})",
                            delegation_fix(self.key.client_id),
                        )
                    refreshed = True
                    attempt -= 1  # a token refresh is not a failed attempt
                    continue
                if answer.status == 403 and why & USAGE_LIMIT_REASONS:
                    log.warning("Google usage limit for %s; the rep is parked", subject)
                    raise self._parked_error(subject, self._park(subject))
                throttled = answer.status == 429 or (
                    answer.status == 403 and bool(why & RATE_LIMIT_REASONS)
                )
                if not throttled and answer.status not in RETRY_STATUSES:
                    return answer
                last = message(answer.body, answer.status)
                limiter = self.project_limiter() if _project_wide(answer) else user
            if attempt < retry.max_attempts:
                wait = None
                if answer is not None:
                    wait = retry_after_seconds(answer.headers.get("Retry-After"))
                if wait is None:
                    wait = retry.backoff(attempt)
                wait = min(wait, retry.max_retry_after)
                log.info("%s %s: %s, retry in %.1f s", method, path.split("?")[0], last, wait)
                limiter.block(wait, retry.clock)
        raise ServerUnavailable(
            f"{what} failed {retry.max_attempts} times on Google ({API_NAMES[api]}); last: {last}",
            "Google is throttling or unavailable; the item is tried again next cycle.",
        )

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: dict[str, str],
        what: str,
    ) -> Answer:
        content = None
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = self.client.build_request(
            method, url, params=params, content=content, headers=headers
        )
        response = self.client.send(request, stream=True)
        raw = read_bounded(response, self.config.max_response_bytes, what)
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                if response.status_code < 400:
                    raise ServerUnavailable(
                        f"{what}: Google answered with a body that is not JSON",
                        "Retried next cycle; report it if it persists.",
                    ) from None
        return Answer(response.status_code, body, response.headers)

    # ---------------------------------------------------------------- errors

    def problem(self, answer: Answer, api: str, subject: str, what: str) -> SyncError:
        """The `SyncError` for an answer the caller did not expect."""
        why = answer.reasons
        text = f"Google refused to {what} for {subject}: {message(answer.body, answer.status)}"
        if answer.status == 403 and why & _NOT_ENABLED:
            return AuthenticationFailed(
                text,
                f"Enable the {API_NAMES[api]} in the service account's Cloud project "
                f"{self.key.project_id or ''} (Cloud console → APIs & Services → Library).",
            )
        if answer.status == 403 and why & _SCOPE_MISSING:
            return DelegationMissing(text, delegation_fix(self.key.client_id), SCOPES[api])
        if answer.status in (400, 403, 404, 409, 412):
            return RejectedWrite(
                text,
                "Google refused the item's content or the change; check the record's fields "
                "(very long text, unusual values) and the item in Google.",
            )
        return ServerUnavailable(text, "Retried next cycle.")


def _project_wide(answer: Answer) -> bool:
    """Whether a throttling answer names a quota of the whole Cloud project (People's
    ``RESOURCE_EXHAUSTED`` messages name the metric; per-user ones say "per user")."""
    text = (
        str((answer.body or {}).get("error", {}).get("message", ""))
        if isinstance(answer.body, Mapping)
        else ""
    )
    return "quota metric" in text.lower() and "per user" not in text.lower()
