"""HTTP authentication chosen from the server's ``WWW-Authenticate`` challenge.

Most servers want Basic, Baïkal defaults to Digest, some offer both. `ChallengeAuth`
sends Basic up front (as before: no extra round trip, and Radicale delays every
unauthenticated request by a second); when a 401 offers Digest but not Basic it answers
the challenge with Digest and keeps using Digest on that connection. With https, the one
Basic header a Digest server sees is encrypted like any other request.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Generator

import httpx

# A challenge starts with its scheme's name followed by a space or nothing; the pieces of
# its parameter list between commas start with "name=" instead.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9.+_-]*)(?:\s|$)")


def offered_schemes(response: httpx.Response) -> tuple[str, ...]:
    """The authentication schemes a 401 response offers, lower-case, in order."""
    found: list[str] = []
    for header in response.headers.get_list("WWW-Authenticate"):
        # A header may hold several challenges: "Basic realm=x, Digest realm=y, nonce=z".
        for piece in header.split(","):
            match = _SCHEME.match(piece.strip())
            if match and match.group(1).lower() not in found:
                found.append(match.group(1).lower())
    return tuple(found)


class ChallengeAuth(httpx.Auth):
    """Basic or Digest for ``username`` / ``password``, whichever the server asks for.

    ``scheme`` is ``"Digest"`` once the server asked for it, ``"Basic"`` once a 401
    offered Basic, else ``None``; ``offered`` is what the server's last challenge listed.
    """

    requires_request_body = True

    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._digest = httpx.DigestAuth(username, password)
        self._lock = threading.Lock()
        self.scheme: str | None = None
        self.offered: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ChallengeAuth(scheme={self.scheme!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.scheme == "Digest":
            yield from self._digest.auth_flow(request)
            return
        basic = self._basic.auth_flow(request)
        response = yield next(basic)
        if response.status_code != 401:
            return
        offered = offered_schemes(response)
        with self._lock:
            self.offered = offered
            if "digest" not in offered or "basic" in offered:
                # Basic was what the server wanted (or nothing we speak): a wrong password.
                self.scheme = "Basic" if "basic" in offered else None
                return
            self.scheme = "Digest"
        # Hand DigestAuth the challenge already received instead of asking again.
        flow = self._digest.auth_flow(request)
        next(flow)
        try:
            retry = flow.send(response)
        except StopIteration:
            return
        answer = yield retry
        with contextlib.suppress(StopIteration):
            flow.send(answer)
