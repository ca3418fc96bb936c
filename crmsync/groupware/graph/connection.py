"""`GraphConnection`: authenticated, throttling-aware requests to Microsoft Graph.

Every request carries a bearer token from `GraphTokens`; a 401 drops that token and tries
once more with a fresh one, then raises `AuthenticationFailed`. 429/5xx are retried after
``Retry-After`` (or a back-off) through the tenant's shared limiter; once the
attempts are spent the caller gets `ServerUnavailable`. Other responses are returned, their
bodies read up to the config's ``max_response_bytes`` (`ResponseTooLarge` beyond, unparsed).
JSON batching: https://learn.microsoft.com/graph/json-batching (at most 20 requests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable
from crmsync.groupware.graph.config import GraphConfig
from crmsync.groupware.graph.tokens import GraphTokens, token_fix
from crmsync.transport.bounded import read_response
from crmsync.transport.throttling import (
    RETRY_STATUSES,
    RequestLimiter,
    limiter_for,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

MAX_BATCH = 20
# Reads in UTC with plain-text bodies; writes name the event's own zone.
READ_PREFER = 'outlook.timezone="UTC", outlook.body-content-type="text"'


@dataclass
class BatchItem:
    """One request of a JSON batch; ``url`` is relative to the Graph version root."""

    method: str
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchAnswer:
    status: int
    body: Any
    headers: Mapping[str, str]


class GraphConnection:
    """One tenant's Graph endpoint as the app; shareable by every mailbox of the tenant.

    ``requests_made`` counts HTTP requests sent to Graph (retries and batches count one
    each); token requests are not counted.
    """

    def __init__(
        self,
        config: GraphConfig,
        client: httpx.Client | None = None,
        *,
        tokens: GraphTokens | None = None,
        msal_http_client: Any = None,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self.config = config
        self.base = config.graph_url.rstrip("/")
        self.tokens = tokens or GraphTokens(config, msal_http_client)
        self.limiter = limiter or limiter_for(config.tenant_id)
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=60.0, headers={"User-Agent": "crmsync"})
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"GraphConnection({self.base}, tenant={self.config.tenant_id!r})"

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def url(self, path: str) -> str:
        return (
            path
            if path.startswith("https://") or path.startswith("http://")
            else (self.base + path)
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (``path`` relative to the version root, or a full next/delta
        link); see the module docstring for what is retried and raised."""
        retry = self.config.retry
        refreshed = False
        last_problem = ""
        attempt = 0
        while attempt < retry.max_attempts:
            attempt += 1
            self.limiter.wait(retry.clock, retry.sleep)
            token = self.tokens.token()
            send = {"Authorization": f"Bearer {token}", **(headers or {})}
            self.requests_made += 1
            try:
                request = self.client.build_request(
                    method, self.url(path), json=json, params=params, headers=send
                )
                what = f"{method} {_shown(path)} on Microsoft Graph"
                sent = self.client.send(request, stream=True)
                response = read_response(sent, self.config.max_response_bytes, what)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
                response = None
            else:
                log.debug("%s %s -> %s", method, path, response.status_code)
                if response.status_code == 401:
                    self.tokens.invalidate(token)
                    if refreshed:
                        raise self._refused(method, path, response)
                    refreshed = True
                    attempt -= 1  # a token refresh is not a failed attempt
                    continue
                if response.status_code not in RETRY_STATUSES:
                    return response
                last_problem = f"HTTP {response.status_code} {error_code(response)}".rstrip()
            if attempt < retry.max_attempts:
                wait = None
                if response is not None:
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    wait = retry.backoff(attempt)
                wait = min(wait, retry.max_retry_after)
                log.info("%s %s: %s, retry in %.1f s", method, path, last_problem, wait)
                self.limiter.block(wait, retry.clock)
        raise ServerUnavailable(
            f"{method} {_shown(path)} on Microsoft Graph failed {retry.max_attempts} times; "
            f"last: {last_problem}",
            "Microsoft 365 is throttling or unavailable; the item is tried again next cycle.",
        )

    def _refused(self, method: str, path: str, response: httpx.Response) -> AuthenticationFailed:
        message = error_message(response)
        return AuthenticationFailed(
            f"Microsoft Graph refused the app's token twice (HTTP 401 on {method} "
            f"{_shown(path)}): {message}".rstrip(": "),
            token_fix(message)
            + " If the app was registered recently, wait a few minutes for consent to apply.",
        )

    def batch(self, items: Sequence[BatchItem]) -> list[BatchAnswer]:
        """Send ``items`` as JSON batches of at most `MAX_BATCH`; answers in order.

        An answer of 429/503/504 inside a batch is sent again (in a later batch) after the
        largest ``Retry-After``; a 401 inside a batch fails like a plain 401.
        """
        answers: dict[int, BatchAnswer] = {}
        pending = list(range(len(items)))
        rounds = 0
        retry = self.config.retry
        while pending:
            rounds += 1
            again: list[int] = []
            wait = 0.0
            for start in range(0, len(pending), MAX_BATCH):
                chunk = pending[start : start + MAX_BATCH]
                body = {"requests": [_batch_request(str(i), items[i]) for i in chunk]}
                response = self.request("POST", "/$batch", json=body)
                if response.status_code != 200:
                    raise ServerUnavailable(
                        f"Microsoft Graph refused a batch: HTTP {response.status_code} "
                        f"{error_message(response)}".rstrip(),
                        "Retried next cycle; report it if it persists.",
                    )
                for answer in response.json().get("responses", []):
                    index = int(answer["id"])
                    status = int(answer.get("status", 500))
                    headers = answer.get("headers") or {}
                    if status == 401:
                        raise AuthenticationFailed(
                            "Microsoft Graph refused the app's token inside a batch",
                            token_fix(str(answer.get("body"))),
                        )
                    if status in RETRY_STATUSES and rounds < retry.max_attempts:
                        again.append(index)
                        after = retry_after_seconds(headers.get("Retry-After"))
                        wait = max(wait, after if after is not None else retry.backoff(rounds))
                        continue
                    answers[index] = BatchAnswer(status, answer.get("body"), headers)
            if again:
                self.limiter.block(min(wait, retry.max_retry_after), retry.clock)
            pending = sorted(again)
        return [answers[i] for i in range(len(items))]


def _batch_request(request_id: str, item: BatchItem) -> dict[str, Any]:
    request: dict[str, Any] = {"id": request_id, "method": item.method, "url": item.url}
    headers = dict(item.headers)
    if item.body is not None:
        request["body"] = item.body
        headers.setdefault("Content-Type", "application/json")
    if headers:
        request["headers"] = headers
    return request


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return response.text[:200]


def _shown(path: str) -> str:
    return path.split("?")[0]
