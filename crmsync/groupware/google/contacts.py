"""`GoogleContacts`: the members of a rep's contacts group as an ``ItemSide``.

Ids are resource names (``people/c…``), versions the person's etag, cursors People sync
tokens. ``connections.list`` cannot filter by group, so a listing reads the rep's
contacts and keeps the group's members (``memberships``); a contact taken out of the
group, or deleted (``metadata.deleted``), is reported deleted if it was known. An expired
(7 days) or unknown token falls back to a full listing compared by etag.

There is no server-side lookup by clientData, so `create` finds an earlier create of the
same marker through an index of markers: complete after a full listing, otherwise made
complete once per cycle from the group's member list (reading only members neither
listed nor linked). Updates send the etag they were read with (a stale one answers 400
``failedPrecondition``: `VersionConflict`); deletion has no precondition in the API, so
the etag is checked by a read just before.

Known limit: People's incremental sync may lag writes by minutes ("not intended for
read-after-write"), so a contact changed in Google right after crmsync wrote it may be
seen a cycle later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crmsync.domain.contact_fields import ContactFieldMap
from crmsync.domain.mail_text import without_control_characters
from crmsync.domain.records import Contact, Record
from crmsync.domain.sync import (
    Changes,
    RejectedWrite,
    Seen,
    VersionConflict,
    Written,
)
from crmsync.groupware.google import markers
from crmsync.groupware.google import people_api as people
from crmsync.groupware.google.connection import Answer, GoogleConnection
from crmsync.groupware.google.contact_map import contact_slots, person_body, read_contact
from crmsync.groupware.recent_items import RecentItems

log = logging.getLogger(__name__)

MAX_MEMBERS = 30000  # more than an account may hold (about 25,000 contacts)


def member_of(person: Mapping[str, Any], group: str) -> bool:
    for membership in person.get("memberships") or ():
        inner = (membership or {}).get("contactGroupMembership") or {}
        if inner.get("contactGroupResourceName") == group:
            return True
    return False


def _deleted(person: Mapping[str, Any]) -> bool:
    return bool((person.get("metadata") or {}).get("deleted"))


class GoogleContacts:
    """The rep's contacts group."""

    CACHE_SIZE = 5000

    def __init__(
        self, connection: GoogleConnection, email: str, group: str, fields: ContactFieldMap
    ) -> None:
        self.connection = connection
        self.email = email
        self.group = group
        self.fields = fields
        self._cache: RecentItems[dict[str, Any]] = RecentItems(self.CACHE_SIZE)
        self._markers: dict[str, str] = {}  # marker → resource name
        self._indexed: set[str] = set()  # resource names whose marker is known
        self._linked: set[str] = set()
        self._complete = False

    def __repr__(self) -> str:
        return f"GoogleContacts({self.email!r})"

    # ------------------------------------------------------------------ reading

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """See ``ItemSide.changes``."""
        self._linked = set(known)
        if cursor:
            try:
                rows, token = people.list_connections(self.connection, self.email, cursor)
            except people.SyncTokenExpired:
                log.info("contacts sync token of %s expired; listing everything", self.email)
            else:
                items, deleted = [], set()
                for person in rows:
                    name = str(person["resourceName"])
                    for old in (person.get("metadata") or {}).get("previousResourceNames") or ():
                        if old in known:
                            deleted.add(str(old))  # linked or unlinked profiles renamed it
                    if _deleted(person) or not member_of(person, self.group):
                        if name in known:
                            deleted.add(name)
                        continue
                    if known.get(name) != person.get("etag"):
                        items.append(self._seen(person))
                    else:
                        self._index(person)
                return Changes(tuple(items), tuple(sorted(deleted)), token, full=False)
        rows, token = people.list_connections(self.connection, self.email)
        members = [p for p in rows if not _deleted(p) and member_of(p, self.group)]
        for person in members:
            self._index(person)
        self._complete = True
        items = [self._seen(p) for p in members if known.get(p["resourceName"]) != p.get("etag")]
        listed = {p["resourceName"] for p in members}
        deleted = sorted(n for n in known if n not in listed)
        return Changes(tuple(items), tuple(deleted), token, full=True)

    def _index(self, person: Mapping[str, Any]) -> None:
        name = str(person["resourceName"])
        self._indexed.add(name)
        marker = markers.client_data(person).get(markers.MARKER)
        if marker:
            self._markers[marker] = name

    def _seen(self, person: dict[str, Any]) -> Seen:
        name = str(person["resourceName"])
        self._index(person)
        self._remember(person)
        version = str(person.get("etag") or "")
        try:
            record, marker = read_contact(person, self.fields)
        except (ValueError, KeyError, TypeError) as exc:
            return Seen.malformed(
                name,
                version,
                f"the contact cannot be read: {exc}",
                "Open the contact in Google Contacts and correct it; it syncs once it changes.",
            )
        return Seen(name, version, record, marker)

    def _remember(self, person: dict[str, Any]) -> None:
        name = str(person["resourceName"])
        self._cache.remember(name, person)

    def _live(self, name: str) -> dict[str, Any] | None:
        person = people.get_person(self.connection, self.email, name)
        if person is None or _deleted(person) or not member_of(person, self.group):
            self._cache.pop(name, None)
            return None
        return person

    def fetch(self, item_id: str) -> Seen | None:
        person = self._live(item_id)
        return None if person is None else self._seen(person)

    # ------------------------------------------------------------------ writing

    def planned_id(self, marker: str) -> None:
        """Google assigns resource names: none is known before the create."""
        return None

    def _find_marker(self, marker: str) -> Seen | None:
        if marker not in self._markers and not self._complete:
            self._complete_index()
        name = self._markers.get(marker)
        if name is None:
            return None
        seen = self.fetch(name)
        if seen is None or seen.marker != marker:
            self._markers.pop(marker, None)
            return None
        return seen

    def _complete_index(self) -> None:
        """Learn the marker of every group member not listed or linked this cycle."""
        members = people.group_members(self.connection, self.email, self.group, MAX_MEMBERS)
        unknown = [n for n in members if n not in self._indexed and n not in self._linked]
        for person in people.get_people(self.connection, self.email, unknown):
            self._index(person)
        self._complete = True

    def create(self, record: Record, marker: str) -> Written:
        """createContact in the group, stamped with ``marker``; a contact already carrying
        it is returned unchanged."""
        record = without_control_characters(record)
        assert isinstance(record, Contact)
        existing = self._find_marker(marker)
        if existing is not None and existing.record is not None:
            return Written(existing.id, existing.version, existing.record)
        slots = contact_slots(self.fields.blank_unsynced(record), self.fields)
        body, _ = person_body({k: v for k, v in slots.items() if _set(v)}, None)
        body["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": self.group}}]
        stamp = {"key": markers.MARKER, "value": marker}
        body["clientData"] = [*(body.get("clientData") or ()), stamp]
        answer = people.create_contact(self.connection, self.email, body)
        if not answer.ok or not isinstance(answer.body, dict):
            raise self._refused(answer, "create a contact")
        self._markers[marker] = str(answer.body["resourceName"])
        return self._written(answer.body)

    def update(self, item_id: str, version: str, record: Record) -> Written:
        """updateContact of the changed fields with the etag; `VersionConflict` when stale."""
        record = without_control_characters(record)
        assert isinstance(record, Contact)
        current = self._current(item_id, version)
        old, _ = read_contact(current, self.fields)
        new_slots = contact_slots(self.fields.blank_unsynced(record), self.fields)
        old_slots = contact_slots(old, self.fields)
        changed = {k: v for k, v in new_slots.items() if old_slots.get(k) != v}
        if not changed:
            return Written(item_id, version, old)
        body, fields = person_body(changed, current)
        body["etag"] = version
        answer = people.update_contact(self.connection, self.email, item_id, body, fields)
        if answer.status in (404, 412) or (
            answer.status == 400 and answer.reasons & {"failedprecondition", "failed_precondition"}
        ):
            self._cache.pop(item_id, None)
            raise VersionConflict(
                f"{item_id} changed in Google Contacts since version {version}",
                "Nothing to do: the newer version is synced next cycle.",
            )
        if not answer.ok or not isinstance(answer.body, dict):
            raise self._refused(answer, "change a contact")
        return self._written(answer.body)

    def delete(self, item_id: str, version: str) -> None:
        """deleteContact after checking the etag; gone already is fine."""
        person = people.get_person(self.connection, self.email, item_id)
        if person is None or _deleted(person):
            return
        if person.get("etag") != version:
            raise VersionConflict(
                f"{item_id} changed in Google Contacts since version {version}; not deleted",
                "Nothing to do: the newer version is synced next cycle.",
            )
        answer = people.delete_contact(self.connection, self.email, item_id)
        self._cache.pop(item_id, None)
        if answer.ok or answer.status in (404, 410):
            return
        raise self._refused(answer, "delete a contact")

    def _current(self, item_id: str, version: str) -> dict[str, Any]:
        cached = self._cache.get(item_id)
        if cached is not None and cached.get("etag") == version:
            return cached
        person = self._live(item_id)
        if person is None:
            raise VersionConflict(
                f"{item_id} is no longer in the rep's contacts group",
                "Nothing to do: the deletion is picked up next cycle.",
            )
        if person.get("etag") != version:
            raise VersionConflict(
                f"{item_id} changed in Google Contacts since version {version}",
                "Nothing to do: the newer version is synced next cycle.",
            )
        self._remember(person)
        return person

    def _written(self, person: dict[str, Any]) -> Written:
        seen = self._seen(person)
        if seen.record is None:
            raise RejectedWrite(
                f"crmsync wrote {seen.id} but cannot read it back",
                "Report this as a crmsync bug, with the contact attached.",
            )
        return Written(seen.id, seen.version, seen.record)

    def _refused(self, answer: Answer, what: str) -> Exception:
        return self.connection.problem(answer, people.API, self.email, what)


def _set(value: Any) -> bool:
    """Whether a slot value holds anything (a new contact gets no empty entries)."""
    if hasattr(value, "is_empty"):
        return not value.is_empty()
    return bool(value)
