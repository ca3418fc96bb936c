"""What a rep's Graph contacts folder and calendar share as ``ItemSide``s (`GraphItems`).

Ids are Graph item ids, versions the items' ``@odata.etag`` (their change key), cursors
delta links (https://learn.microsoft.com/graph/delta-query-overview):
- contacts: ``/contactFolders/{id}/contacts/delta`` (contact: delta);
- events: ``/calendarView/delta`` over a window (event: delta; v1.0 has no unbounded
  events delta), whose occurrence and exception rows are folded into their series master.
A rejected delta link (410 Gone, ``SyncStateNotFound`` / ``resyncRequired``) falls back
to a full listing compared with ``known`` by etag. Changed items are downloaded with
JSON batches of GETs (20 a request), with crmsync's extended properties expanded.
Writes use ``If-Match`` so a concurrent edit is never overwritten.

Known limits: a cancelled occurrence reaches calendarView delta as the removal of an
occurrence id that does not name its series, so it is noticed when the series next
changes or on a full listing; an event that left the window is not reported as deleted
(crmsync checks that it still exists); cancelling can not be undone through Graph, so an
exdate removed in the CRM is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from crmsync.domain.mail_text import without_control_characters
from crmsync.domain.records import Record
from crmsync.domain.sync import (
    Changes,
    RejectedWrite,
    Seen,
    ServerUnavailable,
    VersionConflict,
    Written,
)
from crmsync.groupware.graph import properties as props
from crmsync.groupware.graph.connection import (
    READ_PREFER,
    BatchItem,
    GraphConnection,
    error_code,
    error_message,
)
from crmsync.groupware.graph.recurrence import Unsupported
from crmsync.groupware.recent_items import RecentItems

log = logging.getLogger(__name__)

_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


class _CursorRejected(Exception):
    pass


class GraphItems:
    """What contacts and events share: delta, batch downloads, If-Match writes."""

    CACHE_SIZE = 5000
    items_segment = ""

    def __init__(self, connection: GraphConnection, email: str) -> None:
        self.connection = connection
        self.email = email
        self.user = f"/users/{quote(email, safe='@')}"
        self._cache: RecentItems[dict[str, Any]] = RecentItems(self.CACHE_SIZE)

    # ------------------------------------------------------------ to be provided
    collection = ""
    expanded: tuple[str, ...] = ()

    def _delta_start(self) -> str:
        raise NotImplementedError

    def _read(self, json: Mapping[str, Any], extra: Any = None) -> tuple[Record, str | None]:
        raise NotImplementedError

    def _slots(self, record: Record) -> dict[str, Any]:
        raise NotImplementedError

    def _body(self, slots: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    def _listing(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
        """Delta rows (not removed) as id → etag; ``None``: version unknown, download."""
        return {str(r["id"]): etag_of(r) for r in rows}

    # ------------------------------------------------------------ reading

    def item_path(self, item_id: str) -> str:
        return f"{self.user}/{self.items_segment}/{quote(item_id, safe='')}"

    def _expand_query(self) -> str:
        return urlencode({"$expand": props.expand(self.expanded)}, safe="$()'=/ ,{}")

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """See ``ItemSide.changes``; one delta request per page plus batch downloads."""
        if cursor:
            try:
                rows, link = self._delta(cursor)
            except _CursorRejected:
                log.info("delta link of %s rejected; listing everything", self.collection)
            else:
                changed = self._listing([r for r in rows if "@removed" not in r])
                removed = [str(r["id"]) for r in rows if "@removed" in r]
                wanted = [i for i, e in changed.items() if e is None or known.get(i) != e]
                got = self._download(wanted)
                vanished = {i for i in wanted if i in known} - {s.id for s in got}
                items = [s for s in got if known.get(s.id) != s.version]
                gone = self._confirm_gone([i for i in removed if i in known and i not in changed])
                deleted = sorted(set(gone) | vanished)
                return Changes(tuple(items), tuple(deleted), link, full=False)
        rows, link = self._delta(self._delta_start())
        listing = self._listing([r for r in rows if "@removed" not in r])
        wanted = [i for i, e in listing.items() if e is None or known.get(i) != e]
        got = self._download(wanted)
        vanished = {i for i in wanted if i in known} - {s.id for s in got}
        items = [s for s in got if known.get(s.id) != s.version]
        unlisted = [i for i in known if i not in listing]
        deleted = sorted(set(self._confirm_gone(unlisted)) | vanished)
        return Changes(tuple(items), tuple(deleted), link, full=True)

    def _confirm_gone(self, ids: Sequence[str]) -> list[str]:
        """Of ``ids``, those that no longer exist (delta also reports items that left
        the view)."""
        return list(ids)

    def _delta(self, url: str) -> tuple[list[dict[str, Any]], str]:
        rows: list[dict[str, Any]] = []
        while True:
            response = self.connection.request("GET", url, headers={"Prefer": READ_PREFER})
            if response.status_code == 410 or (
                response.status_code in (400, 404) and error_code(response).lower() in _RESYNC_CODES
            ):
                raise _CursorRejected
            if response.status_code != 200:
                self._unexpected(response, "list changes")
            page = response.json()
            rows.extend(page.get("value") or ())
            if page.get("@odata.deltaLink"):
                return rows, str(page["@odata.deltaLink"])
            if not page.get("@odata.nextLink"):
                raise ServerUnavailable(
                    f"Microsoft Graph ended a delta round of {self.collection} without a link",
                    "Retried next cycle.",
                )
            url = str(page["@odata.nextLink"])

    def _download(self, ids: Sequence[str]) -> list[Seen]:
        """The items of ``ids`` (batched GETs); ids gone meanwhile are left out."""
        if not ids:
            return []
        query = self._expand_query()
        answers = self.connection.batch(
            [
                BatchItem("GET", f"{self.item_path(i)}?{query}", headers={"Prefer": READ_PREFER})
                for i in ids
            ]
        )
        found: dict[str, dict[str, Any]] = {}
        for item_id, answer in zip(ids, answers, strict=True):
            if answer.status in (404, 410):
                continue
            if answer.status != 200 or not isinstance(answer.body, dict):
                raise ServerUnavailable(
                    f"could not read {item_id} from {self.collection}: HTTP {answer.status}",
                    "Retried next cycle.",
                )
            found[item_id] = answer.body
        extras = self._extras(found)
        return [self._seen(i, found[i], extras.get(i)) for i in ids if i in found]

    def _extras(self, items: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        return {}

    def _seen(self, item_id: str, json: dict[str, Any], extra: Any = None) -> Seen:
        self._remember(item_id, json)
        version = etag_of(json) or ""
        try:
            record, marker = self._read(json, extra)
        except (ValueError, KeyError, TypeError) as exc:
            return Seen.malformed(
                item_id,
                version,
                f"the item cannot be read: {exc}",
                "Open the item in Outlook and correct it; it syncs once it changes.",
            )
        return Seen(item_id, version, record, marker)

    def _remember(self, item_id: str, json: dict[str, Any]) -> None:
        self._cache.remember(item_id, json)

    def fetch(self, item_id: str) -> Seen | None:
        found = self._download([item_id])
        return found[0] if found else None

    # ------------------------------------------------------------ writing

    def _find_marker(self, marker: str) -> Seen | None:
        params = {"$filter": props.marker_filter(marker), "$expand": props.expand(self.expanded)}
        response = self.connection.request(
            "GET", self.collection, params=params, headers={"Prefer": READ_PREFER}
        )
        if response.status_code != 200:
            self._unexpected(response, "look up an item by crmsync's marker")
        for json in response.json().get("value") or ():
            if props.value(props.read(json), props.MARKER) == marker:
                item_id = str(json["id"])
                extra = self._extras({item_id: json}).get(item_id)
                return self._seen(item_id, json, extra)
        return None

    def create(self, record: Record, marker: str) -> Written:
        """POST the item stamped with ``marker``; an item already carrying it is returned."""
        record = without_control_characters(record)
        existing = self._find_marker(marker)
        if existing is not None and existing.record is not None:
            return Written(existing.id, existing.version, existing.record)
        self._guard_create(record, marker)
        slots = self._checked_slots(record, "create")
        body = self._body(slots, None)
        body.setdefault("singleValueExtendedProperties", []).append(
            {"id": props.MARKER, "value": marker}
        )
        response = self.connection.request(
            "POST", self.collection, json=body, headers={"Prefer": READ_PREFER}
        )
        if response.status_code not in (200, 201):
            self._reject(response, "create")
        json = _with_ext(response.json(), body, None)
        return self._after_write(str(json["id"]), json, record, None)

    def planned_id(self, marker: str) -> None:
        """The server assigns item ids: none is known before the create."""
        return None

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """PATCH the changed slots with ``If-Match: version``; `VersionConflict` when stale."""
        record = without_control_characters(record)
        current = self._current(item_id, version)
        seen = self._seen(item_id, current, self._extras({item_id: current}).get(item_id))
        if seen.record is None:
            raise RejectedWrite(
                f"cannot update {item_id}: {seen.problem.message if seen.problem else ''}",
                "Correct the item in Outlook first.",
            )
        new_slots = self._checked_slots(record, "update")
        old_slots = self._slots(seen.record)
        changed = {k: v for k, v in new_slots.items() if old_slots.get(k) != v}
        self._guard(item_id, current, changed, seen.record, record)
        json = current
        if changed:
            body = self._body(changed, current)
            response = self.connection.request(
                "PATCH",
                self.item_path(item_id),
                json=body,
                headers={"If-Match": version, "Prefer": READ_PREFER},
            )
            if response.status_code in (404, 409, 412):
                self._cache.pop(item_id, None)
                raise VersionConflict(
                    f"{item_id} changed in Microsoft 365 since version {version}",
                    "Nothing to do: the newer version is synced next cycle.",
                )
            if response.status_code != 200:
                self._reject(response, "update")
            json = _with_ext(response.json(), body, current)
        elif not self._extra_changes(seen.record, record):
            return Written(item_id, version, seen.record)
        return self._after_write(item_id, json, record, seen.record)

    def delete(self, item_id: str, version: str) -> None:
        """DELETE with ``If-Match``; gone already is fine, changed is a conflict."""
        self._guard_delete(item_id, version)
        response = self.connection.request(
            "DELETE", self.item_path(item_id), headers={"If-Match": version}
        )
        self._cache.pop(item_id, None)
        if response.status_code in (200, 204, 404, 410):
            return
        if response.status_code == 412:
            raise VersionConflict(
                f"{item_id} changed in Microsoft 365 since version {version}; not deleted",
                "Nothing to do: the newer version is synced next cycle.",
            )
        self._reject(response, "delete")

    def _current(self, item_id: str, version: str) -> dict[str, Any]:
        cached = self._cache.get(item_id)
        if cached is not None and etag_of(cached) == version:
            return cached
        response = self.connection.request(
            "GET",
            f"{self.item_path(item_id)}?{self._expand_query()}",
            headers={"Prefer": READ_PREFER},
        )
        if response.status_code in (404, 410):
            raise VersionConflict(
                f"{item_id} no longer exists in Microsoft 365",
                "Nothing to do: the deletion is picked up next cycle.",
            )
        if response.status_code != 200:
            self._unexpected(response, "read an item")
        json = response.json()
        if etag_of(json) != version:
            raise VersionConflict(
                f"{item_id} changed in Microsoft 365 (version {etag_of(json)}, expected {version})",
                "Nothing to do: the newer version is synced next cycle.",
            )
        self._remember(item_id, json)
        return json

    def _checked_slots(self, record: Record, what: str) -> dict[str, Any]:
        try:
            return self._slots(record)
        except Unsupported as exc:
            raise RejectedWrite(
                f"cannot {what} the item in Microsoft 365: {exc}",
                "Use a simpler repeat pattern in the CRM (Outlook's daily, weekly, "
                "monthly or yearly patterns).",
            ) from exc

    def _guard(
        self,
        item_id: str,
        current: Mapping[str, Any],
        changed: Mapping[str, Any],
        old: Record,
        new: Record,
    ) -> None:
        pass

    def _guard_delete(self, item_id: str, version: str) -> None:
        pass

    def _guard_create(self, record: Record, marker: str) -> None:
        pass

    def _extra_changes(self, old: Record, new: Record) -> bool:
        return False

    def _after_write(
        self, item_id: str, json: dict[str, Any], record: Record, old: Record | None
    ) -> Written:
        seen = self._seen(item_id, json, self._extras({item_id: json}).get(item_id))
        if seen.record is None:
            raise RejectedWrite(
                f"crmsync wrote {item_id} but cannot read it back",
                "Report this as a crmsync bug, with the item attached.",
            )
        return Written(item_id, seen.version, seen.record)

    # ------------------------------------------------------------ errors

    def _reject(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 403:
            suggestion = (
                "Grant the app Calendars.ReadWrite and Contacts.ReadWrite (application) with "
                "admin consent, and check any application access policy covers this mailbox."
            )
        else:
            suggestion = (
                "Microsoft 365 refused the item's content; check the record's fields (very "
                "long text, unusual characters)."
            )
        raise RejectedWrite(
            f"Microsoft 365 refused to {what} an item in {self.collection}: HTTP "
            f"{response.status_code} {error_message(response)}".rstrip(),
            suggestion,
        )

    def _unexpected(self, response: httpx.Response, what: str) -> None:
        raise ServerUnavailable(
            f"could not {what} in {self.collection}: HTTP {response.status_code} "
            f"{error_message(response)}".rstrip(),
            "Check that the folder still exists; retried next cycle.",
        )


def etag_of(json: Mapping[str, Any]) -> str | None:
    etag = json.get("@odata.etag")
    if etag:
        return str(etag)
    key = json.get("changeKey")
    return f'W/"{key}"' if key else None


def _with_ext(
    json: dict[str, Any], sent: Mapping[str, Any], current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A write's response with the extended properties it now holds (Graph answers
    without them): those of ``current`` updated by those ``sent``."""
    if "singleValueExtendedProperties" in json:
        return json
    values = {
        str(p["id"]): p.get("value")
        for p in (current or {}).get("singleValueExtendedProperties") or ()
    }
    lowered = {k.lower(): k for k in values}
    for p in sent.get("singleValueExtendedProperties") or ():
        key = lowered.get(str(p["id"]).lower(), str(p["id"]))
        values[key] = p["value"]
    return {
        **json,
        "singleValueExtendedProperties": [{"id": k, "value": v} for k, v in values.items()],
    }
