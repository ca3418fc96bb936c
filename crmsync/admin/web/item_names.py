"""Items as the console names them: the record's subject or name where the CRM can tell
it cheaply, else the readable end of the item's id (a DAV path decoded, not
"%40"-escaped).

Only the built-in CRM is asked (a local query per item); a Salesforce org would spend API
calls on every page view, so its items show their ids.
"""

from __future__ import annotations

from urllib.parse import unquote

from crmsync.crm.builtin import BuiltinCrm, NotFound
from crmsync.domain.records import ItemKind


class ItemNames:
    """Names of a page's items, each looked up once."""

    def __init__(self, crm: object) -> None:
        self._crm = crm if isinstance(crm, BuiltinCrm) else None
        self._known: dict[tuple[ItemKind | None, str], str | None] = {}

    def of(self, kind: ItemKind | None, *ids: str | None) -> str:
        """The first of ``ids`` the CRM names, else the readable form of the first id."""
        given = [i for i in ids if i]
        for item_id in given:
            name = self._crm_name(kind, item_id)
            if name:
                return name
        return readable(given[0]) if given else ""

    def _crm_name(self, kind: ItemKind | None, item_id: str) -> str | None:
        if self._crm is None or kind is None:
            return None
        key = (kind, item_id)
        if key not in self._known:
            try:
                if kind is ItemKind.CONTACT:
                    self._known[key] = self._crm.get_contact(item_id).record.display_name
                else:
                    self._known[key] = self._crm.get_event(item_id).record.subject
            except NotFound:
                self._known[key] = None
        return self._known[key]


def readable(item_id: str) -> str:
    """A path's last segment, decoded (``/rita%40example.com/CRM_Sync/a%20b.vcf`` reads
    ``a b.vcf``); any other id as it is."""
    if "/" not in item_id:
        return unquote(item_id) if "%" in item_id else item_id
    return unquote(item_id.rstrip("/").rsplit("/", 1)[-1])
