"""`DavHarness`: the contract's view of one rep's mailbox on a real DAV server."""

from __future__ import annotations

import httpx

from crmsync.domain.records import Record
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy
from crmsync.groupware.dav.mailbox import DavMailbox, open_mailbox
from tests.servers import DavServerInfo


class RecordingTransport(httpx.HTTPTransport):
    """Keeps the body of every PUT, to check what crmsync sent byte for byte."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: dict[str, str] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts[request.url.raw_path.decode()] = request.read().decode("utf-8")
        return super().handle_request(request)


class DavHarness:
    """Opens the rep's mailbox as the service account; a second plain httpx client plays
    the rep's own mail program (raw GET / PUT / DELETE)."""

    def __init__(self, server: DavServerInfo) -> None:
        self.server = server
        self.transport = RecordingTransport()
        self.connection = DavConnection(
            server.url,
            server.username,
            server.password,
            retry=RetryPolicy(max_attempts=2, base_delay=0.01),
            transport=self.transport,
        )
        self.mailbox: DavMailbox = open_mailbox(self.connection, server.settings(), server.email)
        self.contacts: DavCollection = self.mailbox.contacts
        self.events: DavCollection = self.mailbox.events
        self.foreign = httpx.Client(base_url=server.url, auth=server.rep_auth, timeout=10)

    def close(self) -> None:
        self.foreign.close()
        self.connection.close()

    def request_count(self) -> int:
        return self.connection.requests_made

    def raw_get(self, item_id: str) -> str:
        response = self.foreign.get(item_id)
        response.raise_for_status()
        return response.text

    def raw_put(self, item_id: str, text: str, content_type: str) -> None:
        response = self.foreign.put(
            item_id, content=text.encode("utf-8"), headers={"Content-Type": content_type}
        )
        assert response.status_code in (201, 204), (response.status_code, response.text)

    def raw_put_into(self, side: ItemSide, name: str, text: str) -> str:
        assert isinstance(side, DavCollection)
        item_id = side.path + name
        self.raw_put(item_id, text, side.format.content_type)
        return item_id

    def foreign_edit(self, side: ItemSide, item_id: str, record: Record) -> None:
        assert isinstance(side, DavCollection)
        text = side.format.render_update(self.raw_get(item_id), record)
        self.raw_put(item_id, text, side.format.content_type)

    def foreign_delete(self, side: ItemSide, item_id: str) -> None:
        assert self.foreign.delete(item_id).status_code in (200, 204)

    def invalid_cursor(self, side: ItemSide) -> str:
        real = side.changes(None, {}).cursor or ""
        return real[:-8] + "00000000"
