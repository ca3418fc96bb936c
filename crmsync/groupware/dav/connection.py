"""The HTTP layer of the DAV backend: one httpx client (its requests sent by `DirectSender`),
one retry policy, a request count.

Transient failures (timeouts, connection errors and resets, 5xx, 429) are retried by
`RetryPolicy`; once its attempts are spent the caller gets `ServerUnavailable`. Every
other response is handed back as is, for the caller to interpret in DAV terms.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import httpx

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable, SyncError
from crmsync.groupware.dav.auth import ChallengeAuth, offered_schemes
from crmsync.transport.bounded import read_response
from crmsync.transport.direct_send import DirectSender
from crmsync.transport.throttling import retry_after_seconds

log = logging.getLogger(__name__)

XML_CONTENT_TYPE = "application/xml; charset=utf-8"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request that failed transiently.

    Attempt ``n`` (1-based) that fails waits ``base_delay * 2**(n-1)`` seconds, capped at
    ``max_delay`` and scaled by a random factor in ``[1 - jitter, 1]``; a ``Retry-After``
    header on 429/503 replaces that wait (capped at ``max_retry_after``). After
    ``max_attempts`` attempts the request fails with `ServerUnavailable`.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if response is not None and response.status_code in (429, 503):
            after = retry_after_seconds(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.max_retry_after)
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return backoff * (1 - self.jitter * random.random())


@dataclass(frozen=True)
class ResponseLimits:
    """How much of a DAV server's answer crmsync reads before refusing it (untrusted input
    is bounded before it is parsed).

    ``item_bytes``: one vCard or iCalendar object (a GET, or its data in a multiget); a
    card with a large photo or an event with an inline attachment stays below it.
    ``listing_bytes``: a whole listing (a sync-collection or a Depth 1 PROPFIND of every
    ETag), read as it arrives; at about 250 bytes an item, room for a million items.
    ``listing_response_bytes``: one ``<response>`` of a listing (an href and an ETag).
    ``answer_bytes``: any other answer (discovery PROPFINDs, a multiget of a batch, error
    bodies); a multiget over it is read item by item instead.
    """

    item_bytes: int = 8 * 1024 * 1024
    listing_bytes: int = 256 * 1024 * 1024
    listing_response_bytes: int = 64 * 1024
    answer_bytes: int = 32 * 1024 * 1024


def canonical_path(href: str) -> str:
    """The server-absolute path of ``href`` in one spelling (percent-encoded once).

    Servers spell the same path differently (``@`` or ``%40``); ids compare equal only
    after this.
    """
    if _PLAIN_PATH.fullmatch(href) and not href.startswith("//"):
        return href  # nothing to split off, decode or encode (most hrefs, cheaply)
    return quote(unquote(urlsplit(href).path), safe="/")


# Paths that `quote` leaves alone and `urlsplit` takes whole: a fast path of canonical_path.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_.~/-]*")


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})


class SignInRefused(AuthenticationFailed):
    """The server answered 401: the login or password (or the scheme) is refused."""


class WouldWrite(SyncError):
    """A read-only connection was asked to change the server."""


class DavConnection:
    """A session with one DAV server as one account (Basic or Digest auth, whichever the
    server asks for; see `ChallengeAuth`).

    ``requests_made`` counts every HTTP request sent, retries included. The password is
    never logged nor shown in ``repr``. ``who`` names the account in error messages (the
    service account, or a rep's own login) and ``fix`` is the suggestion when the server
    refuses it.
    """

    def __init__(
        self,
        server_url: str,
        username: str = "",
        password: str = "",
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        read_only: bool = False,
        limits: ResponseLimits | None = None,
        who: str = "",
        fix: str = "Check the service account's user name and password in the org settings.",
    ) -> None:
        parts = urlsplit(server_url)
        # A read-only connection refuses every method that could change the server
        # (for previews): `WouldWrite` is raised instead of sending it.
        self.read_only = read_only
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path.rstrip("/")
        self.username = username
        self.who = who or f"the service account {username!r}"
        self.fix = fix
        self.retry = retry or RetryPolicy()
        self.limits = limits or ResponseLimits()
        self.requests_made = 0
        # The schemes the server's last 401 offered (lower-case), for error messages.
        self.challenge: tuple[str, ...] = ()
        self.auth = ChallengeAuth(username, password) if username else None
        self._client, self._sender = DirectSender.for_client(
            auth=self.auth, timeout=timeout, transport=transport, headers={"User-Agent": "crmsync"}
        )

    def __repr__(self) -> str:
        return f"DavConnection({self.origin}{self.base_path!s}, user={self.username!r})"

    @property
    def auth_scheme(self) -> str | None:
        """``"Basic"`` or ``"Digest"`` once the server asked for a sign-in, else ``None``."""
        return self.auth.scheme if self.auth is not None else None

    def url(self, path: str) -> str:
        """The absolute URL of a server-absolute ``path``."""
        return self.origin + path

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        xml: bool = False,
        read_timeout: float | None = None,
        limit: int | None = None,
    ) -> httpx.Response:
        """Send one request, retrying transient failures; any other status is returned,
        its body read up to ``limit`` bytes (``limits.answer_bytes`` by default).

        ``xml`` sets the XML content type PROPFIND/REPORT bodies need; ``read_timeout``
        replaces the connection's for an answer the server may take long to compose
        (the first listing of a big collection). Raises
        `ServerUnavailable` when every attempt timed out, failed to connect or got
        5xx/429, `ResponseTooLarge` (a `ServerUnavailable`) when the body passes ``limit``,
        and `AuthenticationFailed` on HTTP 401.
        """
        return self._send(
            method, path, body, headers, xml, read_timeout, limit or self.limits.answer_bytes
        )

    @contextmanager
    def streamed(
        self,
        method: str,
        path: str,
        *,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        xml: bool = False,
        read_timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """As `request`, but the body is left unread for the caller to read as it arrives
        (with `bounded_chunks`); the response is closed when the block ends."""
        response = self._send(method, path, body, headers, xml, read_timeout, None)
        try:
            yield response
        finally:
            response.close()

    def _send(
        self,
        method: str,
        path: str,
        body: str | bytes | None,
        headers: Mapping[str, str] | None,
        xml: bool,
        read_timeout: float | None,
        limit: int | None,
    ) -> httpx.Response:
        """The response of the first attempt that got neither a transient failure nor a
        401 (see `request`): its body read up to ``limit`` bytes, or unread (streamed)
        when ``limit`` is ``None``."""
        if self.read_only and method.upper() not in _READ_METHODS:
            raise WouldWrite(f"{method} {path}", "Nothing to do: a preview writes nothing.")
        send_headers = dict(headers or {})
        if xml:
            send_headers["Content-Type"] = XML_CONTENT_TYPE
        content = body.encode("utf-8") if isinstance(body, str) else body
        url = self.url(path)
        timeout = self._client.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(
                connect=timeout.connect, read=read_timeout, write=timeout.write, pool=timeout.pool
            )
        last_problem = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self.requests_made += 1
            response: httpx.Response | None = None
            try:
                response = self._sender.send(
                    method, url, content=content, headers=send_headers, timeout=timeout
                )
                if limit is not None and response.status_code not in _RETRY_STATUSES:
                    response = read_response(response, limit, f"{method} {path} on {self.origin}")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                log.debug("%s %s -> %s", method, path, response.status_code)
                if response.status_code == 401 or response.status_code in _RETRY_STATUSES:
                    response.close()  # its body is never read
                if response.status_code == 401:
                    self.challenge = offered_schemes(response)
                    raise SignInRefused(
                        f"{self.origin} refused {self.who} ({self._scheme_said()}HTTP 401 "
                        f"on {method} {path})",
                        self.fix,
                    )
                if response.status_code not in _RETRY_STATUSES:
                    return response
                last_problem = f"HTTP {response.status_code} {response.reason_phrase}"
            if attempt < self.retry.max_attempts:
                wait = self.retry.delay(attempt, response)
                log.info(
                    "%s %s failed (%s), retry %d in %.2f s",
                    method,
                    path,
                    last_problem,
                    attempt,
                    wait,
                )
                self.retry.sleep(wait)
        raise ServerUnavailable(
            f"{method} {path} on {self.origin} failed {self.retry.max_attempts} times; "
            f"last: {last_problem}",
            "Check that the mail server is running and reachable from crmsync; "
            "the item will be tried again next cycle.",
        )

    def _scheme_said(self) -> str:
        if self.auth is not None and self.auth.scheme is not None:
            return f"{self.auth.scheme} authentication; "
        if self.challenge:
            return f"the server asks for {' or '.join(self.challenge)} authentication; "
        return ""
