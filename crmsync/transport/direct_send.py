"""One request through an httpx client's transport, without the client's per-request layers.

`httpx.Client.send` builds and merges a URL, runs the auth flow, the redirect loop, the
event hooks, wraps the body stream to time it and runs the cookie jar over every answer.
For a DAV client that sends thousands of small PUTs that is about a quarter of its CPU
per request: measured on one Radicale, 300 PUTs per phase in alternated pairs, a
vCard PUT cost 1.44-1.74 ms of client CPU through `Client.put` and 1.05-1.42 ms through
`HTTPTransport.handle_request`, the transport API httpx documents for custom transports.

`DirectSender` keeps what a DAV connection needs of those layers: the client's default
headers and timeout, its `httpx.Auth` flow (Basic up front, Digest's challenge and
answer), and its cookie jar (a server that sets a session cookie, as Nextcloud does,
gets it back), without redirects (the client does not follow them either). Where the
environment names a proxy, the client's own proxy routing applies: `send` then goes
through `Client.send`.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

import httpx


class DirectSender:
    """Sends requests for ``client`` straight to ``transport`` (see the module docstring).

    ``transport`` must be the one ``client`` was made with; ``None`` (the client chose
    its own, e.g. per proxy) sends every request through ``client.send``.
    """

    def __init__(
        self, client: httpx.Client, transport: httpx.BaseTransport | None, auth: httpx.Auth | None
    ) -> None:
        self._client = client
        self._transport = transport
        self._auth = auth
        self._default_headers = dict(client.headers)

    @classmethod
    def for_client(
        cls,
        *,
        auth: httpx.Auth | None,
        timeout: float,
        transport: httpx.BaseTransport | None,
        headers: Mapping[str, str],
    ) -> tuple[httpx.Client, DirectSender]:
        """A client as ``httpx.Client(auth=..., timeout=..., transport=..., headers=...)``
        would make it, and its sender.

        Without ``transport`` and without a proxy in the environment the client gets an
        `httpx.HTTPTransport` made as its default would be, which the sender shares.
        """
        if transport is None and not urllib.request.getproxies():
            transport = httpx.HTTPTransport()
        # Given a transport, a client ignores proxy variables: only made one when there
        # are none, so routing stays the client's wherever a proxy is set.
        client = httpx.Client(auth=auth, timeout=timeout, transport=transport, headers=headers)
        return client, cls(client, transport, auth)

    def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        """The response to ``method url``, its body unread (the caller reads or closes it)."""
        if self._transport is None:
            request = self._client.build_request(
                method, url, content=content, headers=headers, timeout=timeout
            )
            return self._client.send(request, stream=True)
        request = httpx.Request(
            method,
            url,
            content=content,
            headers={**self._default_headers, **headers},
            extensions={"timeout": timeout.as_dict()},
        )
        if self._client.cookies:
            self._client.cookies.set_cookie_header(request)
        if self._auth is None:
            return self._exchange(self._transport, request)
        flow = self._auth.sync_auth_flow(request)
        request = next(flow)
        while True:
            response = self._exchange(self._transport, request)
            if self._auth.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                return response
            response.close()  # a challenge answered by the next request

    def _exchange(self, transport: httpx.BaseTransport, request: httpx.Request) -> httpx.Response:
        response = transport.handle_request(request)
        response.request = request
        if "set-cookie" in response.headers:
            self._client.cookies.extract_cookies(response)
        return response
