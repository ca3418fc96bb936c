"""An HTTP reverse proxy on 127.0.0.1 that answers chosen requests itself.

Unlike the TCP-level ``tests/groupware/dav/flaky_proxy.py`` it sees each request (with
keep-alive, many share one connection), so a test can fail "the 20th request", "every
request from now on" or "the PUT whose body holds X". ``rule(request)`` returns ``None``
to pass the request to the upstream server, or a status code to answer with instead.
``rewrite(request, body)`` returns the body to send instead of the upstream server's (an
item inflated past crmsync's cap, say). `KillProxy` SIGKILLs the client process at a
chosen request instead, before forwarding it, after the server applied it, or after the
reply.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class Request:
    number: int  # 1-based, in arrival order
    method: str
    path: str
    body: bytes
    # Whether the client sent credentials (an Authorization header).
    signed_in: bool = False


# A status to answer with, or (status, extra headers[, body]), e.g. a 401 with
# WWW-Authenticate.
Rule = Callable[
    [Request], int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes] | None
]
Counting = Callable[[Request], object]
Rewrite = Callable[[Request, bytes], bytes]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_METHODS = (
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "REPORT",
    "MKCOL",
    "MKCALENDAR",
    "MOVE",
    "COPY",
)


class _QuietServer(ThreadingHTTPServer):
    """A client that went away (killed, or timed out) is no error of the proxy's."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class RuleProxy:
    """Forwards to ``upstream`` (``http://127.0.0.1:PORT``) unless ``rule`` answers.

    ``answered`` lists the requests the proxy answered itself, with the status sent.
    """

    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule: Rule = rule or (lambda request: None)
        self.rewrite: Rewrite = lambda request, body: body
        self.requests = 0
        self.answered: list[tuple[Request, int]] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._handle(self)

        for method in _METHODS:
            setattr(Handler, f"do_{method}", Handler._handle)
        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests += 1
            request = Request(
                self.requests,
                handler.command,
                handler.path,
                body,
                bool(handler.headers.get("Authorization")),
            )
            answer = self.rule(request)
            status, extra, content = (
                (*answer, b"")[:3] if isinstance(answer, tuple) else (answer, {}, b"")
            )
            if status is not None:
                self.answered.append((request, status))
        if status is not None:
            payload = content or f"answered {status} by the test proxy".encode()
            handler.send_response(status)
            for key, value in extra.items():
                handler.send_header(key, value)
            if status in (429, 503):
                handler.send_header("Retry-After", "0")
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        upstream = self._forward(handler, body)
        self._reply(handler, upstream, self.rewrite(request, upstream.content))

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> httpx.Response:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        return self._client.request(
            handler.command, self.upstream + handler.path, content=body, headers=headers
        )

    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        upstream: httpx.Response,
        content: bytes | None = None,
    ) -> None:
        content = upstream.content if content is None else content
        handler.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-encoding":
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


class KillMoment(StrEnum):
    """Where, around one request, the client process dies."""

    BEFORE_FORWARDING = "before forwarding"  # the server never sees the request
    APPLIED_UNANSWERED = "applied, unanswered"  # the server applied it; no reply came back
    AFTER_REPLY = "after the reply"  # the client had the reply, then died


@dataclass(frozen=True)
class Kill:
    request: Request
    moment: KillMoment


class KillProxy(RuleProxy):
    """Forwards every request; once `arm`-ed, SIGKILLs a process at its n-th request.

    ``kills`` lists every kill made, with the request it was made at.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.kills: list[Kill] = []
        # pid, requests that count still to come, moment, which requests count
        self._armed: tuple[int, int, KillMoment, Counting] | None = None

    def arm(
        self,
        pid: int,
        at_request: int,
        moment: KillMoment,
        counting: Counting | None = None,
    ) -> None:
        """Kill ``pid`` at the ``at_request``-th request from now (1-based); with
        ``counting``, at the ``at_request``-th request it is true for (say, writes only)."""
        with self._lock:
            self._armed = (pid, at_request, moment, counting or (lambda request: True))

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests += 1
            request = Request(self.requests, handler.command, handler.path, body)
            armed = self._armed
            hit = False
            if armed is not None and armed[3](request):
                left = armed[1] - 1
                hit = left == 0
                self._armed = None if hit else (armed[0], left, armed[2], armed[3])
        if not hit or armed is None:
            self._reply(handler, self._forward(handler, body))
            return
        pid, _, moment, _ = armed
        self.kills.append(Kill(request, moment))
        if moment is KillMoment.BEFORE_FORWARDING:
            _kill(pid)
            handler.close_connection = True
            return
        upstream = self._forward(handler, body)
        if moment is KillMoment.APPLIED_UNANSWERED:
            _kill(pid)
            handler.close_connection = True
            return
        self._reply(handler, upstream)
        handler.wfile.flush()
        _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
