"""`EwsFolder`: a rep's Exchange calendar or contacts folder as an ``ItemSide`` of the engine.

Ids are EWS ItemIds, versions ChangeKeys, cursors SyncFolderItems sync states. Reading costs
one SyncFolderItems per page of changes (ids and change keys only) plus one GetItem per
batch of items whose change key differs from what the links know. Series keep their
deleted occurrences (exdates) and modified occurrences (overrides), addressed by instance
index. Writes go through ``save(update_fields=...)`` with only the changed fields and
ConflictResolution=NeverOverwrite, so a concurrent edit is a `VersionConflict`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from exchangelib import CalendarItem
from exchangelib import Contact as EwsContact
from exchangelib import errors as ews_errors
from exchangelib.items import ID_ONLY, NEVER_OVERWRITE, SEND_TO_NONE
from exchangelib.properties import ItemId
from exchangelib.services import SyncFolderItems

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.mail_text import without_control_characters
from crmsync.domain.records import Contact, Event, EventTiming, Occurrence, Record, Recurrence
from crmsync.domain.sync import (
    Changes,
    ErrorType,
    ItemProblem,
    RejectedWrite,
    Seen,
    VersionConflict,
    Written,
)
from crmsync.groupware.ews import recurrence as rr
from crmsync.groupware.ews.connection import EwsConnection
from crmsync.groupware.ews.contacts import apply_contact, to_contact, written_contact
from crmsync.groupware.ews.events import (
    apply_event,
    set_timing,
    timing_of,
    to_event,
    written_event,
)
from crmsync.groupware.ews.properties import MARKER_FIELD
from crmsync.groupware.ews.text import body_text

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE_SIZE = 512
GET_BATCH = 100


# Errors GetItem reports per item that concern the whole request, not the item.
_RAISED = (
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorImpersonateUserDenied,
    ews_errors.ErrorNonExistentMailbox,
    ews_errors.ErrorAccessDenied,
)


class _StateRejected(Exception):
    """The server no longer accepts the sync state (ErrorInvalidSyncStateData)."""


class EwsFolder:
    """One folder of one rep's mailbox; ``model`` is exchangelib's `Contact` or `CalendarItem`.

    ``max_pages`` bounds one incremental read: with more changes pending, `changes` returns
    the state after that many pages (a checkpoint) and the next cycle continues from it.
    """

    def __init__(
        self,
        connection: EwsConnection,
        account: Any,
        folder: Any,
        model: type,
        email: str,
        contact_fields: ContactFieldMap,
        max_pages: int = 20,
    ) -> None:
        self.connection = connection
        self.account = account
        self.folder = folder
        self.model = model
        self.email = email
        self.contact_fields = contact_fields
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"EwsFolder({self.email!r}, {self.model.__name__})"

    @property
    def is_calendar(self) -> bool:
        return self.model is CalendarItem

    def _run(self, operation: Callable[[], T], what: str) -> T:
        return self.connection.run(operation, what, self.email)

    # ------------------------------------------------------------------ reading

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        if cursor:
            try:
                listing, deleted, state, _ = self._sync(cursor, self.max_pages)
            except _StateRejected:
                log.info("sync state for %r rejected; listing everything", self)
            else:
                wanted = [i for i, ck in listing.items() if known.get(i) != ck]
                return Changes(self._download(wanted), tuple(deleted), state, full=False)
        listing, _, state, _ = self._sync(None, None)
        wanted = [i for i, ck in listing.items() if known.get(i) != ck]
        items = self._download(wanted)
        got = {s.id for s in items}
        gone = {i for i in wanted if i not in got}
        deleted = tuple(sorted(i for i in known if i not in listing or i in gone))
        return Changes(items, deleted, state, full=True)

    def _sync(
        self, state: str | None, max_pages: int | None
    ) -> tuple[dict[str, str], list[str], str | None, bool]:
        """Changed ids → change keys, deleted ids, the new state and whether all was read."""
        changed: dict[str, str] = {}
        deleted: list[str] = []
        pages = 0
        while True:

            def page(state: str | None = state) -> tuple[list[Any], str | None, bool]:
                svc = SyncFolderItems(account=self.account)
                try:
                    got = list(
                        svc.call(
                            folder=self.folder,
                            shape=ID_ONLY,
                            additional_fields=set(),
                            sync_state=state,
                            ignore=None,
                            max_changes_returned=PAGE_SIZE,
                            sync_scope=None,
                        )
                    )
                except ews_errors.ErrorInvalidSyncStateData as exc:
                    raise _StateRejected from exc
                return got, svc.sync_state, bool(svc.includes_last_item_in_range)

            got, new_state, last = self._run(page, "list changes")
            for change, item in got:
                if change == SyncFolderItems.DELETE:
                    changed.pop(item.id, None)
                    deleted.append(item.id)
                elif change in (SyncFolderItems.CREATE, SyncFolderItems.UPDATE):
                    changed[item.id] = item.changekey
                    if item.id in deleted:
                        deleted.remove(item.id)
            pages += 1
            if last or not new_state or new_state == state:
                return changed, deleted, new_state, True
            state = new_state
            if max_pages is not None and pages >= max_pages:
                return changed, deleted, state, False

    def _get(self, ids: Sequence[str], only: Sequence[str] | None = None) -> list[Any]:
        """The items of ``ids`` still there (others are left out), in batches."""
        found: list[Any] = []
        for start in range(0, len(ids), GET_BATCH):
            batch = [ItemId(id=i) for i in ids[start : start + GET_BATCH]]

            def get(batch: list[ItemId] = batch) -> list[Any]:
                kwargs = {"only_fields": list(only)} if only else {}
                return list(self.account.fetch(ids=batch, **kwargs))

            for result in self._run(get, "read items"):
                if isinstance(result, ews_errors.ErrorItemNotFound):
                    continue
                if isinstance(result, _RAISED):
                    raise result  # the retry policy or the rep's status deals with these
                if isinstance(result, Exception):
                    log.warning("reading an item of %r failed: %s", self, result)
                    continue
                found.append(result)
        return found

    def _download(self, ids: Sequence[str]) -> tuple[Seen, ...]:
        return tuple(self._seen(item) for item in self._get(sorted(ids)))

    def _seen(self, item: Any) -> Seen:
        marker = getattr(item, MARKER_FIELD, None)
        try:
            record, note = self._record(item)
        except Exception as exc:  # any unmappable item is reported, never raised
            return Seen(
                item.id,
                item.changekey,
                None,
                marker,
                ItemProblem(
                    ErrorType.MALFORMED_ITEM,
                    f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc),
                    "Open the item in Outlook, correct it and save it again.",
                ),
            )
        return Seen(item.id, item.changekey, record, marker, note=note)

    def _record(self, item: Any) -> tuple[Record, str]:
        """The item's record, and what was changed to read it (for the audit trail)."""
        if not self.is_calendar:
            if not isinstance(item, EwsContact):
                raise ValueError(f"a {type(item).__name__} is not a contact")
            return to_contact(item, self.contact_fields), ""
        if not isinstance(item, CalendarItem):
            raise ValueError(f"a {type(item).__name__} is not a calendar item")
        event, note = to_event(item)
        if event.recurrence is not None:
            event = dataclasses.replace(event, recurrence=self._exceptions(item, event))
        return event, note or ""

    def _exceptions(self, master: CalendarItem, event: Event) -> Recurrence:
        assert event.recurrence is not None
        zone = master._start_timezone
        all_day = event.timing.all_day

        def original(value: Any) -> dt.datetime | dt.date:
            instant = dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)
            if all_day:
                return value.astimezone(zone).date() if zone else instant.date()
            return instant

        exdates = sorted(original(d.start) for d in master.deleted_occurrences or ())
        modified = {o.id: original(o.original_start) for o in master.modified_occurrences or ()}
        overrides = []
        for occ in self._get(list(modified)) if modified else []:
            timing: EventTiming = timing_of(occ)
            overrides.append(
                Occurrence(
                    modified[occ.id],
                    timing,
                    occ.subject or "",
                    occ.location or "",
                    body_text(occ.body),
                )
            )
        overrides.sort(key=lambda o: o.recurrence_id)  # type: ignore[arg-type, return-value]
        return Recurrence(event.recurrence.rule, tuple(exdates), tuple(overrides))

    def fetch(self, item_id: str) -> Seen | None:
        items = self._download([item_id])
        return items[0] if items else None

    # ------------------------------------------------------------------ writing

    def _find_marker(self, marker: str) -> Seen | None:
        def find() -> list[Any]:
            query = self.folder.filter(**{MARKER_FIELD: marker}).only("id", "changekey")
            return list(query)

        hits = self._run(find, "look up the marker")
        if not hits:
            return None
        if len(hits) > 1:
            log.warning("%d items of %r carry marker %r", len(hits), self, marker)
        return self.fetch(sorted(h.id for h in hits)[0])

    def _written(self, record: Record) -> Record:
        if isinstance(record, Contact):
            return written_contact(record, self.contact_fields)
        event = written_event(record, self.email)
        if event.recurrence is not None:
            rec = event.recurrence
            event = dataclasses.replace(
                event,
                recurrence=dataclasses.replace(
                    rec,
                    exdates=tuple(sorted(rec.exdates)),  # type: ignore[type-var]
                    overrides=tuple(sorted(rec.overrides, key=lambda o: o.recurrence_id)),  # type: ignore[arg-type, return-value]
                ),
            )
        return event

    def _check_kind(self, record: Record) -> None:
        if isinstance(record, Event) != self.is_calendar:
            raise RejectedWrite(f"a {type(record).__name__} cannot go into {self!r}", "")

    def create(self, record: Record, marker: str) -> Written:
        record = without_control_characters(record)
        self._check_kind(record)
        existing = self._find_marker(marker)
        if existing is not None and existing.record is not None:
            return Written(existing.id, existing.version, existing.record)
        item = self.model(account=self.account, folder=self.folder)
        setattr(item, MARKER_FIELD, marker)
        self._apply(item, None, record)

        def save() -> Any:
            if self.is_calendar:
                return item.save(send_meeting_invitations=SEND_TO_NONE)
            return item.save()

        self._run(save, "create an item")
        version = item.changekey
        if isinstance(record, Event) and record.recurrence is not None:
            version = self._write_exceptions(item.id, record, None) or version
        return Written(item.id, version, self._written(record))

    def _apply(self, item: Any, old: Record | None, new: Record) -> list[str]:
        try:
            if isinstance(new, Contact):
                assert old is None or isinstance(old, Contact)
                return apply_contact(item, old, new, self.contact_fields)
            assert old is None or isinstance(old, Event)
            return apply_event(item, old, new, self.account.default_timezone)
        except rr.Inexpressible as exc:
            raise RejectedWrite(
                f"Exchange cannot hold this recurrence: {exc}",
                "Use a daily, weekly, monthly or yearly pattern in the CRM.",
            ) from exc

    def planned_id(self, marker: str) -> None:
        """The server assigns item ids: none is known before the create."""
        return None

    def update(self, item_id: str, version: str, record: Record) -> Written:
        record = without_control_characters(record)
        self._check_kind(record)
        items = self._get([item_id])
        if not items:
            raise VersionConflict("The item was deleted in Exchange meanwhile.", "")
        item = items[0]
        if item.changekey != version:
            raise VersionConflict("The item changed in Exchange meanwhile.", "")
        current = self._seen(item).record
        old_exceptions: Recurrence | None = None
        if isinstance(current, Event) and isinstance(record, Event):
            old_exceptions = current.recurrence
        fields = self._apply(item, current, record)
        reset = False
        if isinstance(record, Event) and record.recurrence and old_exceptions is not None:
            keep = set(record.recurrence.exdates) | {
                o.recurrence_id for o in record.recurrence.overrides
            }
            lost = [d for d in old_exceptions.exdates if d not in record.recurrence.exdates] + [
                o.recurrence_id for o in old_exceptions.overrides if o.recurrence_id not in keep
            ]
            if lost and "recurrence" not in fields:
                # Exchange cannot restore an occurrence: rewriting the pattern drops every
                # exception, and the wanted ones are written again below.
                fields.append("recurrence")
            reset = "recurrence" in fields or "start" in fields
        new_version = version
        if fields:

            def save() -> Any:
                kwargs: dict[str, Any] = {"conflict_resolution": NEVER_OVERWRITE}
                if self.is_calendar:
                    kwargs["send_meeting_invitations"] = SEND_TO_NONE
                return item.save(update_fields=fields, **kwargs)

            self._run(save, "update an item")
            new_version = item.changekey
        if isinstance(record, Event) and record.recurrence is not None:
            previous = None if reset else old_exceptions
            new_version = self._write_exceptions(item_id, record, previous) or new_version
        return Written(item_id, new_version, self._written(record))

    def _write_exceptions(self, master_id: str, event: Event, old: Recurrence | None) -> str | None:
        """Delete and modify occurrences so the series has ``event``'s exdates and overrides;
        the master's new change key when anything was written."""
        rec = event.recurrence
        assert rec is not None
        current_ex = set(old.exdates) if old else set()
        current_ov = {o.recurrence_id: o for o in old.overrides} if old else {}
        wrote = False
        start, tzid = event.timing.start, event.timing.tzid
        master = CalendarItem(account=self.account, folder=self.folder, id=master_id)

        def index(original: dt.datetime | dt.date) -> int:
            n = rr.instance_index(rec.rule, start, tzid, original)
            if n is None:
                raise RejectedWrite(
                    f"{original} is not an occurrence of the series {event.subject!r}",
                    "Check the series' exceptions in the CRM.",
                )
            return n

        for exdate in rec.exdates:
            if exdate in current_ex:
                continue
            occurrence = master.occurrence(index(exdate))
            occurrence._id.changekey = None
            self._run(
                lambda o=occurrence: o.delete(send_meeting_cancellations=SEND_TO_NONE),
                "delete an occurrence",
            )
            wrote = True
        for override in rec.overrides:
            if current_ov.get(override.recurrence_id) == override:
                continue
            occurrence = master.occurrence(index(override.recurrence_id))
            occurrence._id.changekey = None

            def modify(o: CalendarItem = occurrence, ov: Occurrence = override) -> None:
                o.refresh()
                set_timing(o, ov.timing, self.account.default_timezone)
                o.subject = ov.subject or None
                o.location = ov.location or None
                o.body = ov.description or None
                o.save(
                    update_fields=["subject", "location", "body", "start", "end"],
                    send_meeting_invitations=SEND_TO_NONE,
                )

            self._run(modify, "change an occurrence")
            wrote = True
        if not wrote:
            return None
        fresh = self._get([master_id], only=["changekey"])
        return fresh[0].changekey if fresh else None

    def delete(self, item_id: str, version: str) -> None:
        items = self._get([item_id], only=["changekey"])
        if not items:
            return
        if items[0].changekey != version:
            raise VersionConflict("The item changed in Exchange meanwhile.", "")
        item = self.model(account=self.account, folder=self.folder, id=item_id, changekey=version)

        def delete() -> None:
            kwargs: dict[str, Any] = {}
            if self.is_calendar:
                kwargs["send_meeting_cancellations"] = SEND_TO_NONE
            with contextlib.suppress(ews_errors.ErrorItemNotFound):
                # Deleted Items, so the rep can still recover what a sync removed.
                item.move_to_trash(**kwargs)

        self._run(delete, "delete an item")
