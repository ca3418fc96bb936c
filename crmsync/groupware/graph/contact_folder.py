"""`GraphContacts`: the rep's crmsync contacts folder as an ``ItemSide``, on
``/contactFolders/{id}/contacts/delta`` (contact: delta); what it shares with the calendar
is in `item_folder`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.records import Contact, Record
from crmsync.groupware.graph import contacts as contact_map
from crmsync.groupware.graph.connection import GraphConnection
from crmsync.groupware.graph.item_folder import GraphItems


class GraphContacts(GraphItems):
    """The rep's crmsync contacts folder."""

    items_segment = "contacts"
    expanded = contact_map.EXPANDED

    def __init__(
        self,
        connection: GraphConnection,
        email: str,
        folder_id: str,
        fields: ContactFieldMap,
    ) -> None:
        super().__init__(connection, email)
        self.folder_id = folder_id
        self.fields = fields
        self.collection = f"{self.user}/contactFolders/{quote(folder_id, safe='')}/contacts"

    def __repr__(self) -> str:
        return f"GraphContacts({self.email!r})"

    def _delta_start(self) -> str:
        return f"{self.collection}/delta?$select=id,changeKey"

    def _read(self, json: Mapping[str, Any], extra: Any = None) -> tuple[Record, str | None]:
        return contact_map.read_contact(json, self.fields)

    def _slots(self, record: Record) -> dict[str, Any]:
        assert isinstance(record, Contact)
        return contact_map.contact_slots(self.fields.blank_unsynced(record), self.fields)

    def _body(self, slots: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
        return contact_map.contact_body(slots, current, "")
