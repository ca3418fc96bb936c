"""The raw HTTP baseline: a bare httpx client creating collections and PUTting items,
with none of crmsync's work in between."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import common  # noqa: F401  (puts the repository root on sys.path before crmsync imports)
import httpx
from bench_servers import Server

from crmsync.groupware.dav.multistatus import mkcalendar_body, mkcol_addressbook_body


def raw_client(server: Server) -> httpx.Client:
    return httpx.Client(
        auth=httpx.BasicAuth(server.username, server.password),
        timeout=60.0,
        headers={"User-Agent": "crmsync-bench"},
    )


def make_collection(client: httpx.Client, server: Server, name: str, kind: str) -> str:
    """Create an empty address book (``kind="contacts"``) or calendar; its path."""
    path = server.raw_home() + name + "/"
    client.request("DELETE", server.url + path)
    xml = {"Content-Type": "application/xml; charset=utf-8"}
    if kind == "contacts":
        response = client.request(
            "MKCOL", server.url + path, headers=xml, content=mkcol_addressbook_body(name).encode()
        )
    else:
        response = client.request(
            "MKCALENDAR", server.url + path, headers=xml, content=mkcalendar_body(name).encode()
        )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"cannot create {path}: HTTP {response.status_code} {response.text}")
    return path


def put_items(
    client: httpx.Client,
    server: Server,
    path: str,
    items: Iterator[tuple[str, str]] | Sequence[tuple[str, str]],
    content_type: str,
) -> int:
    """PUT each (name, text) into ``path`` sequentially, If-None-Match: *; the request count."""
    count = 0
    headers = {"Content-Type": content_type, "If-None-Match": "*"}
    for name, text in items:
        response = client.put(
            server.url + path + name, content=text.encode("utf-8"), headers=headers
        )
        count += 1
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"PUT {name}: HTTP {response.status_code} {response.text[:300]}")
    return count


VCARD_TYPE = "text/vcard; charset=utf-8"
ICAL_TYPE = "text/calendar; charset=utf-8"
