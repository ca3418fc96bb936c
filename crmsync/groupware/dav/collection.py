"""`DavCollection`: one calendar or address book as an ``ItemSide`` of the engine.

Ids are the items' server-absolute paths (percent-encoded once, see `canonical_path`),
versions their ETags exactly as the server sent them, cursors RFC 6578 sync-tokens,
followed by the hrefs crmsync wrote after the token was read (`cursor_after_writes`).
Reading costs one sync-collection REPORT per cycle (plus one multiget per 100 changed
items); writes use If-None-Match / If-Match so a concurrent edit is never overwritten.

A collection without sync-collection (SabreDAV 1.8, some DAViCal setups) gets a
``listing:`` cursor holding its CalendarServer ctag: a cycle asks for the ctag (one
request) and lists the ETags only when it moved, never trying the refused REPORT again.

A meeting carrying a crmsync marker at another href than the one crmsync creates for that
marker is a copy (a scheduling server delivered a meeting another rep syncs): it is left
out with a note, never imported as a second CRM event.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping

import httpx

from crmsync.domain.mail_text import without_control_characters
from crmsync.domain.records import Event, Record
from crmsync.domain.sync import (
    AlreadyExists,
    Changes,
    ErrorType,
    ItemProblem,
    RejectedWrite,
    Seen,
    ServerUnavailable,
    VersionConflict,
    Written,
)
from crmsync.groupware.dav.answers import (
    MOVED_OR_GONE,
    multistatus_of,
    refused,
    unavailable,
)
from crmsync.groupware.dav.connection import DavConnection, canonical_path
from crmsync.groupware.dav.formats import (
    ItemFormat,
    MalformedItem,
    NotSynced,
    ParsedItem,
    item_text,
)
from crmsync.groupware.dav.ical import OutOfScope
from crmsync.groupware.dav.listing import (
    GETETAG,
    CollectionListing,
    OversizedItem,
    TokenRejected,
)
from crmsync.groupware.dav.multistatus import (
    MultistatusError,
    multiget_body,
    parse_multistatus,
    propfind_body,
)
from crmsync.groupware.dav.scheduling import without_server_scheduling
from crmsync.transport.bounded import ResponseTooLarge

log = logging.getLogger(__name__)

MULTIGET_BATCH = 100
LISTING_CURSOR = "listing:"
# Between a cursor's sync-token and the hrefs written after it: no URI holds a line break.
WRITTEN_AFTER = "\n"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def item_name(marker: str) -> str:
    """The resource name (and UID) crmsync chooses for the item stamped ``marker``.

    Deterministic, so a create retried after a crash targets the same href; markers with
    characters unsafe in a URL or a UID are replaced by their SHA-256.
    """
    if _SAFE_NAME.fullmatch(marker):
        return f"crmsync-{marker}"
    return "crmsync-" + hashlib.sha256(marker.encode("utf-8")).hexdigest()[:40]


class DavCollection:
    """One DAV collection of items in ``item_format``, at server-absolute ``path``.

    Raw texts read by `changes` / `fetch` are kept per id and ETag, so an update right
    after costs no extra GET; only the newest `BODY_CACHE_SIZE` are kept, so a first
    listing of a huge collection does not hold every item's text at once.
    """

    BODY_CACHE_SIZE = 5000

    def __init__(
        self,
        connection: DavConnection,
        path: str,
        item_format: ItemFormat,
        *,
        client_scheduling: bool = False,
        on_gone: Callable[[], None] | None = None,
    ) -> None:
        """``client_scheduling``: write ``SCHEDULE-AGENT=CLIENT`` on the organizer and
        attendees of every meeting, so a scheduling server (RFC 6638) delivers nothing to
        them. ``on_gone`` is called when the collection answers as moved or deleted."""
        self.connection = connection
        self.path = canonical_path(path if path.endswith("/") else path + "/")
        self.format = item_format
        probe = self.path + item_name("x") + item_format.extension
        self._plain_names = canonical_path(probe) == probe
        self.client_scheduling = client_scheduling
        self._on_gone = on_gone
        self._bodies: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._listing = CollectionListing(connection, self.path, self._unexpected)
        # Items an update may follow, read along with the next changes (`read_along`).
        self._along: Mapping[str, str] = {}

    def __repr__(self) -> str:
        return f"DavCollection({self.path!r}, {type(self.format).__name__})"

    # ------------------------------------------------------------------ reading

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """Items changed since ``cursor`` (see the ``ItemSide`` contract).

        Incremental: one sync-collection REPORT, plus multigets for changed items whose
        ETag differs from ``known``. Without a cursor, or when the server rejects it: a
        full listing (``full=True``) that downloads only new or changed items and lists
        the known ids that are gone in ``deleted``.
        """
        along, self._along = self._along, {}
        if cursor and cursor.startswith(LISTING_CURSOR):
            return self._listed_changes(cursor[len(LISTING_CURSOR) :], known, along)
        if cursor:
            token, *written = cursor.split(WRITTEN_AFTER)
            try:
                listing, deleted, token_now = self._listing.sync(token)
            except TokenRejected:
                log.info("sync-token for %s rejected; listing everything", self.path)
            else:
                wanted = {h: e for h, e in listing.items() if known.get(h) != e}
                # An item written after the token that the listing does not name is back
                # at its state at the token (Xandikos' tokens name a content state):
                # deleted after we created it, or put back as it was before our update.
                # Read it to see which.
                unnamed = [h for h in written if h not in listing and h not in deleted]
                wanted.update((h, "") for h in unnamed)
                items = self._download(wanted, along)
                if unnamed:
                    downloaded = {s.id for s in items}
                    deleted += [h for h in unnamed if h not in downloaded and h in known]
                return Changes(items, tuple(deleted), token_now, full=False)
        listing, token = self._full_listing()
        return self._compared(listing, known, token, along)

    def cursor_after_writes(self, cursor: str | None, written: Collection[str]) -> str | None:
        """``cursor`` answering for the hrefs crmsync ``written`` (or linked) after
        reading it (`CarriesWrites`): the next `changes` reads those the listing does not
        name."""
        if not cursor:
            return cursor  # the next cycle lists every ETag and compares it with the links
        if cursor.startswith(LISTING_CURSOR):
            # Without the ctag read before the writes: a ctag that is a hash of the
            # content would come back to it when an item is put back as it was.
            return LISTING_CURSOR
        # A cycle cut short carries more on the cursor it read from, which may carry some.
        token, *carried = cursor.split(WRITTEN_AFTER)
        return WRITTEN_AFTER.join([token, *sorted({*carried, *written})])

    def read_along(self, versions: Mapping[str, str]) -> None:
        """Items an update may follow this cycle (href → ETag last synced): the next
        `changes` puts them into the room its last multiget has, so the update finds
        their text without a GET (`ReadsAlong`). A cycle without a multiget sends none
        for them: an edit of fields that do not sync writes nothing."""
        self._along = versions

    def _listed_changes(
        self, ctag: str, known: Mapping[str, str], along: Mapping[str, str]
    ) -> Changes:
        """Changes of a collection without sync-collection: nothing when its ctag is the
        one in the cursor, else every ETag compared with ``known``."""
        if ctag and self._listing.ctag() == ctag:
            return Changes((), (), LISTING_CURSOR + ctag, full=False)
        listing, ctag_now = self._listing.etags()
        return self._compared(listing, known, LISTING_CURSOR + (ctag_now or ""), along)

    def _compared(
        self,
        listing: Mapping[str, str],
        known: Mapping[str, str],
        cursor: str | None,
        along: Mapping[str, str],
    ) -> Changes:
        wanted = {h: e for h, e in listing.items() if known.get(h) != e}
        items = self._download(wanted, along)
        downloaded = {s.id for s in items}  # built once: inside the loop it was O(n^2)
        gone = {h for h in wanted if h not in downloaded}
        deleted = tuple(sorted(h for h in known if h not in listing or h in gone))
        return Changes(items, deleted, cursor, full=True)

    def _full_listing(self) -> tuple[dict[str, str], str | None]:
        """Every item's ETag and the cursor for the next cycle: a sync-token, or a
        ``listing:`` cursor when the server refuses sync-collection."""
        try:
            changed, _, token = self._listing.sync("")
            return changed, token
        except TokenRejected:
            pass
        listing, ctag = self._listing.etags()
        return listing, LISTING_CURSOR + (ctag or "")

    def _download(self, wanted: Mapping[str, str], along: Mapping[str, str]) -> tuple[Seen, ...]:
        """Multiget the texts of ``wanted`` hrefs in batches; items gone meanwhile are left
        out. Hrefs of ``along`` (href → ETag) fill the last batch's room: their texts are
        kept for an update while the ETag is that one, not returned."""
        seen: list[Seen] = []
        hrefs = sorted(wanted)
        if hrefs and along:
            room = -len(hrefs) % MULTIGET_BATCH
            hrefs += sorted(h for h in along if h not in wanted)[:room]
        for start in range(0, len(hrefs), MULTIGET_BATCH):
            batch = hrefs[start : start + MULTIGET_BATCH]
            # One item a server stored but cannot serve can fail a whole multiget: Xandikos
            # answers 500 once it holds text that is not UTF-8, a server keeping the bytes
            # it was sent puts them into unreadable XML. Then the batch is read item by
            # item, so only that item is reported (a server that is down fails the GETs).
            try:
                response = self.connection.request(
                    "REPORT",
                    self.path,
                    body=multiget_body(
                        self.format.multiget_report, self.format.data_property, batch
                    ),
                    headers={"Depth": "1"},
                    xml=True,
                )
            except ServerUnavailable:
                seen.extend(self._download_one_by_one([h for h in batch if h in wanted]))
                continue
            if response.status_code != 207:
                self._unexpected(response, "download items")
            try:
                status = parse_multistatus(response.content)
            except MultistatusError:
                seen.extend(self._download_one_by_one([h for h in batch if h in wanted]))
                continue
            # The listing's own href and ETag strings go into the items, not the multiget's
            # equal copies: a first listing held both for every item (10 MB at 50,000).
            listed = {href: href for href in batch}
            for r in status.responses:
                text = r.text(self.format.data_property)
                etag = r.text(GETETAG)
                href = listed.get(r.href)
                if href is None or text is None or not etag:
                    continue
                if href not in wanted:  # read along: an update may need it unchanged
                    small = len(text) <= self.connection.limits.item_bytes
                    if etag == along[href] and small:
                        self._remember(href, along[href], text)
                    continue
                if etag == wanted[href]:
                    etag = wanted[href]
                if len(text) > self.connection.limits.item_bytes:
                    limit = self.connection.limits.item_bytes
                    seen.append(_malformed(href, etag, OversizedItem(href, etag, limit)))
                    continue
                item = self._seen(href, etag, text)
                if item is not None:
                    seen.append(item)
        return tuple(seen)

    def _download_one_by_one(self, hrefs: list[str]) -> list[Seen]:
        seen = []
        for href in hrefs:
            try:
                got = self._get_raw(href)
            except OversizedItem as exc:
                seen.append(_malformed(href, exc.etag, exc))
                continue
            item = None if got is None else self._seen_bytes(href, *got)
            if item is not None:
                seen.append(item)
        return seen

    def _remember(self, href: str, etag: str, text: str) -> None:
        self._bodies[href] = (etag, text)
        self._bodies.move_to_end(href)
        if len(self._bodies) > self.BODY_CACHE_SIZE:
            self._bodies.popitem(last=False)

    def _seen(self, href: str, etag: str, text: str) -> Seen | None:
        self._remember(href, etag, text)
        try:
            parsed = self.format.parse(text)
        except OutOfScope:
            return None
        except NotSynced as exc:
            return Seen(href, etag, None, note=exc.message)
        except MalformedItem as exc:
            return _malformed(href, etag, exc)
        if _is_delivered_copy(href, parsed, self.planned_id):
            return Seen(
                href,
                etag,
                None,
                note=f"a copy of the item crmsync syncs as {parsed.marker} (it carries that "
                "item's crmsync marker), such as a meeting the server delivered from another "
                "rep's calendar: it is already in the CRM",
            )
        return Seen(href, etag, parsed.record, parsed.marker, note=parsed.note)

    def _seen_bytes(self, href: str, etag: str, data: bytes) -> Seen | None:
        try:
            text = item_text(data)
        except MalformedItem as exc:
            return _malformed(href, etag, exc)
        return self._seen(href, etag, text)

    def fetch(self, item_id: str) -> Seen | None:
        """The item as it is now (one GET), or ``None`` if it is gone."""
        try:
            got = self._get_raw(item_id)
        except OversizedItem as exc:
            return _malformed(item_id, exc.etag, exc)
        if got is None:
            return None
        return self._seen_bytes(item_id, *got)

    def _get(self, href: str) -> tuple[str, str] | None:
        """The item's ETag and text; raises `MalformedItem` when its bytes are not UTF-8
        or are too many."""
        got = self._get_raw(href)
        return None if got is None else (got[0], item_text(got[1]))

    def _get_raw(self, href: str) -> tuple[str, bytes] | None:
        """The item's ETag and bytes; raises `OversizedItem` past the connection's cap."""
        limit = self.connection.limits.item_bytes
        try:
            response = self.connection.request("GET", href, limit=limit)
        except ResponseTooLarge as exc:
            raise OversizedItem(href, self._etag(href), limit) from exc
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            self._unexpected(response, "read an item")
        etag = response.headers.get("ETag") or self._etag(href)
        return etag, response.content

    def _etag(self, href: str) -> str:
        response = self.connection.request(
            "PROPFIND", href, body=propfind_body(GETETAG), headers={"Depth": "0"}, xml=True
        )
        if response.status_code == 207:
            for r in multistatus_of(response, self.path).responses:
                if etag := r.text(GETETAG):
                    return etag
        raise ServerUnavailable(
            f"the server gave no ETag for {href}",
            "crmsync needs ETags to avoid overwriting edits; check the server's WebDAV support.",
        )

    # ------------------------------------------------------------------ writing

    def create(self, record: Record, marker: str) -> Written:
        """PUT a new item at the href derived from ``marker`` (If-None-Match: *).

        When that href is taken by an item carrying ``marker`` (a create that went through
        before a crash), that item is returned; by anything else, `AlreadyExists`.
        """
        record = without_control_characters(record)
        name = item_name(marker)
        href = self.planned_id(marker)
        rendered = self.format.render_new(record, marker, name)
        text = self._scheduled(rendered)
        response = self._put(href, text, {"If-None-Match": "*"})
        if response.status_code == 412:
            try:
                got = self._get(href)
            except MalformedItem:
                got = ("", "")  # not crmsync's item: crmsync writes UTF-8
            if got is None:
                raise VersionConflict(
                    f"{href} was reported to exist but cannot be read",
                    "Nothing to do: the create is retried next cycle.",
                )
            etag, existing = got
            parsed = self._parse_own(existing, href)
            if parsed is None or parsed.marker != marker:
                raise AlreadyExists(
                    f"{href} already exists and is not the item crmsync created for {marker}",
                    "Remove or rename that item in the rep's folder, then reset sync.",
                )
            self._remember(href, etag, existing)
            return Written(href, etag, parsed.record)
        # The text as rendered reads back as the record itself (a property of the formats):
        # parsing it back was a seventh of an initial sync's client CPU.
        kept = text == rendered and self.format.reads_back(record)
        return self._written(href, text, response, "create", record if kept else None)

    def planned_id(self, marker: str) -> str:
        """The href `create` writes the item stamped with ``marker`` at."""
        path = self.path + item_name(marker) + self.format.extension
        # item_name and the extension are URL-safe and self.path is canonical already, so
        # quoting changes nothing (asked twice per create, it was a twentieth of its CPU).
        return path if self._plain_names else canonical_path(path)

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """Change the mapped fields of ``item_id`` in place (If-Match: ``version``).

        Raises `VersionConflict` when the item changed since ``version``.
        """
        record = without_control_characters(record)
        cached = self._bodies.get(item_id)
        if cached is not None and cached[0] == version:
            text = cached[1]
        else:
            try:
                got = self._get(item_id)
            except MalformedItem as exc:
                message = f"cannot update {item_id}: {exc.message}"
                raise RejectedWrite(message, exc.suggestion) from exc
            if got is None:
                raise VersionConflict(
                    f"{item_id} no longer exists on the server",
                    "Nothing to do: the deletion is picked up next cycle.",
                )
            etag, text = got
            if etag != version:
                raise VersionConflict(
                    f"{item_id} changed on the server (ETag {etag}, expected {version})",
                    "Nothing to do: the newer version is synced next cycle.",
                )
        try:
            new_text = self._scheduled(self.format.render_update(text, record))
        except MalformedItem as exc:
            raise RejectedWrite(f"cannot update {item_id}: {exc.message}", exc.suggestion) from exc
        if new_text == text:
            parsed = self._parse_own(text, item_id)
            if parsed is not None:
                return Written(item_id, version, parsed.record)
        response = self._put(item_id, new_text, {"If-Match": version})
        if response.status_code in (404, 412):
            raise VersionConflict(
                f"{item_id} changed on the server since version {version}",
                "Nothing to do: the newer version is synced next cycle.",
            )
        return self._written(item_id, new_text, response, "update")

    def delete(self, item_id: str, version: str) -> None:
        """DELETE with If-Match; an item already gone is fine, a changed one a conflict.

        With ``client_scheduling``, a meeting the server would still schedule is first
        rewritten with ``SCHEDULE-AGENT=CLIENT``, so its deletion cancels nothing for the
        attendees."""
        if self.client_scheduling:
            version = self._unscheduled_before_delete(item_id, version)
        response = self.connection.request("DELETE", item_id, headers={"If-Match": version})
        self._bodies.pop(item_id, None)
        if response.status_code in (200, 202, 204, 404, 410):
            return
        if response.status_code == 412:
            # SabreDAV answers a conditional DELETE of a missing item with 412, not 404.
            if self.connection.request("GET", item_id).status_code in (404, 410):
                return
            raise VersionConflict(
                f"{item_id} changed on the server since version {version}; not deleted",
                "Nothing to do: the newer version is synced next cycle.",
            )
        self._reject(response, "delete")

    def _scheduled(self, text: str) -> str:
        return without_server_scheduling(text) if self.client_scheduling else text

    def _unscheduled_before_delete(self, item_id: str, version: str) -> str:
        cached = self._bodies.get(item_id)
        text = cached[1] if cached is not None and cached[0] == version else None
        if text is None:
            try:
                got = self._get(item_id)
            except MalformedItem:
                return version
            if got is None or got[0] != version:
                return version  # gone, or changed: the DELETE answers for itself
            text = got[1]
        quiet = without_server_scheduling(text)
        if quiet == text:
            return version
        response = self._put(item_id, quiet, {"If-Match": version})
        if response.status_code not in (200, 201, 204):
            return version
        return response.headers.get("ETag") or self._etag(item_id)

    def _put(self, href: str, text: str, headers: dict[str, str]) -> httpx.Response:
        return self.connection.request(
            "PUT",
            href,
            body=text,
            headers={"Content-Type": self.format.content_type, **headers},
        )

    def _written(
        self,
        href: str,
        text: str,
        response: httpx.Response,
        what: str,
        record: Record | None = None,
    ) -> Written:
        """The item written: its ETag and ``record``, the record ``text`` reads back as
        (parsed from ``text`` when not given)."""
        if response.status_code not in (200, 201, 204):
            self._reject(response, what)
        etag = response.headers.get("ETag") or self._etag(href)
        self._remember(href, etag, text)
        if record is not None:
            return Written(href, etag, record)
        parsed = self._parse_own(text, href)
        if parsed is None:
            raise RejectedWrite(
                f"crmsync wrote {href} but cannot read it back",
                "Report this as a crmsync bug, with the item attached.",
            )
        return Written(href, etag, parsed.record)

    def _parse_own(self, text: str, href: str) -> ParsedItem[Record] | None:
        try:
            return self.format.parse(text)
        except MalformedItem:
            log.warning("item %s cannot be parsed", href)
            return None

    # ------------------------------------------------------------------ errors

    def _reject(self, response: httpx.Response, what: str) -> None:
        raise refused(response, what, self.path)

    def _unexpected(self, response: httpx.Response, what: str) -> None:
        if response.status_code in MOVED_OR_GONE and self._on_gone is not None:
            self._on_gone()  # the next cycle discovers the rep's folders again
        raise unavailable(response, what, self.path)


def _is_delivered_copy(
    href: str, parsed: ParsedItem[Record], planned_id: Callable[[str], str]
) -> bool:
    """A meeting carrying a crmsync marker away from the href crmsync writes that marker
    at: a scheduling server's copy in an attendee's calendar (only meetings are
    delivered, so other items are left to the marker pairing)."""
    record = parsed.record
    return (
        bool(parsed.marker)
        and isinstance(record, Event)
        and bool(record.attendees)
        and href != planned_id(parsed.marker or "")
    )


def _malformed(href: str, etag: str, exc: MalformedItem) -> Seen:
    return Seen(
        href, etag, None, problem=ItemProblem(ErrorType.MALFORMED_ITEM, exc.message, exc.suggestion)
    )
