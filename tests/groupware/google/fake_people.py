"""`FakePeople`: each user's contacts and contact groups as People v1 serves them.

Refuses what Google refuses: a sync token older than 7 days (400 ``FAILED_PRECONDITION``
with ``EXPIRED_SYNC_TOKEN``) or never issued (400 ``INVALID_ARGUMENT``), a list without
``personFields`` (400), an update without ``updatePersonFields`` or without the person's
etag (400), with a stale etag (400 ``failedPrecondition``), with two values of a singleton
field (400), a membership in a group that does not exist (400), a second user group of
the same name (409), a batch get of more than 200 names (400), and a mutate request for a
user while another of theirs is in flight (409 ``ABORTED``: Google asks for them one at a
time).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.groupware.google.fake_google import FakeGoogle

SINGLETONS = ("names", "birthdays", "biographies", "genders")
SYNC_TOKEN_DAYS = 7


def _err(status: int, code: str, message: str, reason: str = "") -> tuple:
    from tests.groupware.google.fake_google import rpc_error

    return status, {}, rpc_error(status, code, message, reason)


@dataclass
class Book:
    owner: str
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    sync_tokens: dict[str, tuple[int, dt.datetime]] = field(default_factory=dict)


class FakePeople:
    def __init__(self, google: FakeGoogle, page_size: int) -> None:
        self.google = google
        self.page_size = page_size
        self.books: dict[str, Book] = {}
        self.pages: dict[str, tuple[list[dict[str, Any]], int, tuple | None]] = {}
        self.ids = 1000
        self.in_flight: dict[str, int] = {}
        self.in_flight_lock = threading.Lock()
        self.write_delay: Any = None  # a callable run inside each write (concurrency tests)

    def book(self, user: str) -> Book:
        if user not in self.books:
            book = self.books[user] = Book(user)
            for system in ("myContacts", "starred"):
                book.groups[f"contactGroups/{system}"] = {
                    "resourceName": f"contactGroups/{system}",
                    "name": system,
                    "formattedName": system,
                    "groupType": "SYSTEM_CONTACT_GROUP",
                }
        return self.books[user]

    def _touch(self, book: Book, person: dict[str, Any]) -> None:
        etag = "%" + base64.b64encode(secrets.token_bytes(18)).decode()
        person["etag"] = etag
        sources = person.setdefault("metadata", {}).setdefault("sources", [{"type": "CONTACT"}])
        sources[0].update(etag=etag, id=person["resourceName"].split("/")[1])
        book.log.append((self.google.next_seq(), person["resourceName"]))

    # ---------------------------------------------------------------- foreign clients

    def foreign_update(self, user: str, name: str, changes: dict[str, Any]) -> None:
        """The rep edits the contact in Google Contacts."""
        with self.google.lock:
            book = self.book(user.lower())
            book.people[name].update(copy.deepcopy(changes))
            self._touch(book, book.people[name])

    def foreign_delete(self, user: str, name: str) -> None:
        with self.google.lock:
            book = self.book(user.lower())
            book.people[name]["metadata"]["deleted"] = True
            self._touch(book, book.people[name])

    def group_named(self, user: str, name: str) -> dict[str, Any] | None:
        for group in self.book(user.lower()).groups.values():
            if group["name"] == name:
                return group
        return None

    # ---------------------------------------------------------------- routing

    def route(
        self, user: str, method: str, path: str, query: dict, headers: dict, body: Any
    ) -> tuple:
        book = self.book(user)
        path = path.removeprefix("/v1")
        q = {k: v[-1] for k, v in query.items()}
        if path == "/people/me/connections" and method == "GET":
            return self._connections(book, q)
        if path == "/people:batchGet" and method == "GET":
            return self._batch_get(book, query)
        if path == "/contactGroups" and method == "GET":
            return (
                200,
                {},
                {
                    "contactGroups": [copy.deepcopy(g) for g in book.groups.values()],
                    "totalItems": len(book.groups),
                },
            )
        if path.startswith("/contactGroups/") and method == "GET":
            return self._group(book, path[1:], q)
        writes = {
            ("POST", "/people:createContact"),
            ("POST", "/contactGroups"),
        }
        is_write = (method, path) in writes or path.endswith((":updateContact", ":deleteContact"))
        if not is_write:
            if path.startswith("/people/") and method == "GET":
                person = book.people.get(path[1:])
                if person is None or person["metadata"].get("deleted"):
                    return _err(404, "NOT_FOUND", "Requested entity was not found.")
                return 200, {}, copy.deepcopy(person)
            return _err(400, "INVALID_ARGUMENT", f"Unsupported {method} {path}")
        return self._write(book, method, path, q, body)

    def _write(self, book: Book, method: str, path: str, q: dict, body: Any) -> tuple:
        # "Mutate requests for the same user should be sent sequentially" (people.updateContact).
        with self.in_flight_lock:
            if self.in_flight.get(book.owner):
                return _err(409, "ABORTED", "The operation was aborted.")
            self.in_flight[book.owner] = 1
        try:
            if self.write_delay is not None:
                self.google.lock.release()
                try:
                    self.write_delay()
                finally:
                    self.google.lock.acquire()
            if path == "/people:createContact":
                return self._create(book, body)
            if path == "/contactGroups":
                return self._create_group(book, body)
            if path.endswith(":updateContact"):
                return self._update(book, path[1:].removesuffix(":updateContact"), q, body)
            return self._delete(book, path[1:].removesuffix(":deleteContact"))
        finally:
            with self.in_flight_lock:
                self.in_flight[book.owner] = 0

    # https://developers.google.com/people/api/rest/v1/people.connections/list (pages of
    # pageSize ≤ 1000, nextSyncToken on the last page with requestSyncToken, tokens
    # expiring 7 days after their full sync with EXPIRED_SYNC_TOKEN, deleted contacts as
    # persons with metadata.deleted).
    def _connections(self, book: Book, q: dict[str, str]) -> tuple:
        if not q.get("personFields"):
            return _err(
                400,
                "INVALID_ARGUMENT",
                "personFields mask is required. Please specify one or more valid paths.",
            )
        if "pageToken" in q:
            page = self.pages.get(q["pageToken"])
            if page is None:
                return _err(400, "INVALID_ARGUMENT", "Page token is invalid.")
            rows, offset, sync = page
        else:
            token = q.get("syncToken")
            if token:
                state = book.sync_tokens.get(token)
                if state is None:
                    return _err(400, "INVALID_ARGUMENT", "Sync token is invalid.")
                since, full_sync_at = state
                if self.google.now - full_sync_at > dt.timedelta(days=SYNC_TOKEN_DAYS):
                    return _err(
                        400,
                        "FAILED_PRECONDITION",
                        "Sync token is expired. Clear local cache and retry call without the sync "
                        "token.",
                        "EXPIRED_SYNC_TOKEN",
                    )
                changed = dict.fromkeys(n for s, n in book.log if s > since)
                rows = [self._delta_row(book.people[n]) for n in changed]
            else:
                full_sync_at = self.google.now
                rows = [
                    copy.deepcopy(p)
                    for p in book.people.values()
                    if not p["metadata"].get("deleted")
                ]
            sync = (
                (book.log[-1][0] if book.log else 0, full_sync_at)
                if q.get("requestSyncToken") == "true"
                else None
            )
            offset = 0
        size = min(int(q.get("pageSize") or 100), 1000, self.page_size)
        page_rows, rest = rows[offset : offset + size], rows[offset + size :]
        answer: dict[str, Any] = {"connections": page_rows, "totalItems": len(rows)}
        if rest:
            token = secrets.token_urlsafe(12)
            self.pages[token] = (rows, offset + size, sync)
            answer["nextPageToken"] = token
        elif sync is not None:
            token = secrets.token_urlsafe(16)
            book.sync_tokens[token] = sync
            answer["nextSyncToken"] = token
        return 200, {}, answer

    def _delta_row(self, person: dict[str, Any]) -> dict[str, Any]:
        if person["metadata"].get("deleted"):
            return {
                "resourceName": person["resourceName"],
                "etag": person["etag"],
                "metadata": {"deleted": True},
            }
        return copy.deepcopy(person)

    # https://developers.google.com/people/api/rest/v1/people/getBatchGet (≤ 200 names)
    def _batch_get(self, book: Book, query: dict[str, list[str]]) -> tuple:
        names = query.get("resourceNames") or []
        if len(names) > 200:
            return _err(400, "INVALID_ARGUMENT", "Too many resourceNames: at most 200.")
        responses = []
        for name in names:
            person = book.people.get(name)
            if person is None or person["metadata"].get("deleted"):
                responses.append(
                    {"requestedResourceName": name, "status": {"code": 5, "message": "Not found"}}
                )
            else:
                responses.append(
                    {"requestedResourceName": name, "person": copy.deepcopy(person), "status": {}}
                )
        return 200, {}, {"responses": responses}

    def _check(self, book: Book, person: dict[str, Any]) -> tuple | None:
        for key in SINGLETONS:
            if len(person.get(key) or ()) > 1:
                return _err(400, "INVALID_ARGUMENT", f"Only one field is allowed for {key}.")
        for membership in person.get("memberships") or ():
            group = (membership.get("contactGroupMembership") or {}).get("contactGroupResourceName")
            if group not in book.groups:
                return _err(400, "INVALID_ARGUMENT", f"Contact group {group} does not exist.")
        return None

    # https://developers.google.com/people/api/rest/v1/people/createContact
    def _create(self, book: Book, body: dict[str, Any]) -> tuple:
        person = copy.deepcopy(body)
        problem = self._check(book, person)
        if problem:
            return problem
        self.ids += 1
        person["resourceName"] = f"people/c{self.ids}"
        person["metadata"] = {"sources": [{"type": "CONTACT"}], "objectType": "PERSON"}
        memberships = person.setdefault("memberships", [])
        memberships.append(
            {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}
        )
        book.people[person["resourceName"]] = person
        self._touch(book, person)
        return 200, {}, copy.deepcopy(person)

    # https://developers.google.com/people/api/rest/v1/people/updateContact (fields in
    # updatePersonFields replaced whole; etag required; a stale one: 400 failedPrecondition)
    def _update(self, book: Book, name: str, q: dict[str, str], body: dict[str, Any]) -> tuple:
        person = book.people.get(name)
        if person is None or person["metadata"].get("deleted"):
            return _err(404, "NOT_FOUND", "Requested entity was not found.")
        fields = [f for f in (q.get("updatePersonFields") or "").split(",") if f]
        if not fields:
            return _err(
                400,
                "INVALID_ARGUMENT",
                "updatePersonFields mask is required. Please specify one or more valid paths.",
            )
        etags = [body.get("etag")] + [
            s.get("etag") for s in (body.get("metadata") or {}).get("sources") or ()
        ]
        etags = [e for e in etags if e]
        if not etags:
            return _err(
                400,
                "INVALID_ARGUMENT",
                "Request must set person.etag or person.metadata.sources.etag for the source "
                "that is being updated.",
            )
        if any(e != person["etag"] for e in etags):
            return _err(
                400,
                "FAILED_PRECONDITION",
                "Request person.etag is different than the current person.etag. Clear local "
                "cache and get the latest person.",
                "failedPrecondition",
            )
        if "memberships" in fields and not body.get("memberships"):
            return _err(
                400,
                "INVALID_ARGUMENT",
                "A contact must have at least one contact group membership.",
            )
        changed = dict(person)
        for key in fields:
            if body.get(key):
                changed[key] = copy.deepcopy(body[key])
            else:
                changed.pop(key, None)
        problem = self._check(book, changed)
        if problem:
            return problem
        person.clear()
        person.update(changed)
        self._touch(book, person)
        return 200, {}, copy.deepcopy(person)

    # https://developers.google.com/people/api/rest/v1/people/deleteContact
    def _delete(self, book: Book, name: str) -> tuple:
        person = book.people.get(name)
        if person is None or person["metadata"].get("deleted"):
            return _err(404, "NOT_FOUND", "Requested entity was not found.")
        person["metadata"]["deleted"] = True
        self._touch(book, person)
        return 200, {}, {}

    # https://developers.google.com/people/api/rest/v1/contactGroups/create (a duplicate
    # name answers 409) and contactGroups/get (maxMembers: memberResourceNames).
    def _create_group(self, book: Book, body: dict[str, Any]) -> tuple:
        group = copy.deepcopy((body or {}).get("contactGroup") or {})
        if not group.get("name"):
            return _err(400, "INVALID_ARGUMENT", "Contact group name is required.")
        if any(g["name"] == group["name"] for g in book.groups.values()):
            return _err(409, "ALREADY_EXISTS", "Contact group name already exists.")
        self.ids += 1
        group.update(
            resourceName=f"contactGroups/{self.ids:x}",
            groupType="USER_CONTACT_GROUP",
            formattedName=group["name"],
            etag=secrets.token_urlsafe(8),
        )
        book.groups[group["resourceName"]] = group
        return 200, {}, copy.deepcopy(group)

    def _group(self, book: Book, name: str, q: dict[str, str]) -> tuple:
        group = book.groups.get(name)
        if group is None:
            return _err(404, "NOT_FOUND", "Requested entity was not found.")
        members = [
            p["resourceName"]
            for p in book.people.values()
            if not p["metadata"].get("deleted")
            and any(
                (m.get("contactGroupMembership") or {}).get("contactGroupResourceName") == name
                for m in p.get("memberships") or ()
            )
        ]
        answer = {**copy.deepcopy(group), "memberCount": len(members)}
        at_most = int(q.get("maxMembers") or 0)
        if at_most:
            answer["memberResourceNames"] = members[:at_most]
        return 200, {}, answer
