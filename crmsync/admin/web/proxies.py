"""The client's real address behind a reverse proxy (`crmsync serve --forwarded-allow-ips`).

Sign-in throttling counts failures per client address, so the address must be one a
client cannot choose. ``X-Forwarded-For`` is written by whoever sends the request: it is
believed only when the connection comes from a proxy the admin named, and then only the
part that trusted proxies appended (a client can prepend anything it likes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed."""

    networks: tuple[Network, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From a comma-separated list of addresses and networks (``127.0.0.1``,
        ``10.0.0.0/8``, ``::1``), or ``*`` for every peer (only when nothing but the proxy
        can reach the port, e.g. a Unix socket). Empty: trust no one. Raises `ValueError`
        naming an entry that is neither."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if "*" in entries:
            return cls(everyone=True)
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (names are not resolved: "
                    "give the proxy's address, e.g. 127.0.0.1 or 10.0.0.0/8)"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: str | None) -> bool:
        if self.everyone:
            return True
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """Who sent the request: ``peer`` itself unless it is a trusted proxy; then the
    right-most ``forwarded_for`` entry that is not a trusted proxy (each proxy appends the
    address it saw; entries left of that were written by the client)."""
    if not forwarded_for or not trusted.trusts(peer):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted.trusts(hop):
            return hop
    # Only proxies on the way: the first one is as close to the client as we can tell.
    return hops[0] if hops else peer


class ForwardedHeaders:
    """ASGI middleware: sets the scope's client address (and scheme) from the forwarded
    headers of trusted proxies; for any other peer, leaves them as the connection has
    them."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else ""
            if self.trusted.trusts(peer):
                headers = Headers(scope=scope)
                # Several X-Forwarded-For lines read as one list, in order.
                forwarded = ",".join(headers.getlist("x-forwarded-for"))
                address = client_address(peer, forwarded, self.trusted)
                scope = dict(scope, client=(address, client[1] if client else 0))
                proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scheme = proto if scope["type"] == "http" else proto.replace("http", "ws")
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
