"""The People v1 requests crmsync sends for a rep's contacts, one function each.

https://developers.google.com/people/api/rest/v1/people: ``connections.list`` (paged,
``requestSyncToken`` / ``syncToken``; a token expires 7 days after its full sync, answered
with ``ErrorInfo.reason`` ``EXPIRED_SYNC_TOKEN``; deleted contacts come back with
``metadata.deleted``), ``get``, ``getBatchGet`` (at most 200 names), ``createContact``,
``updateContact`` (``updatePersonFields``; the person's etag is required and a stale one
answers 400 ``failedPrecondition``), ``deleteContact``; and contact groups
(https://developers.google.com/people/api/rest/v1/contactGroups): ``list``, ``create``,
``get`` with ``maxMembers``. Writes for one rep go one at a time
(`GoogleConnection.writes`), as every mutate method asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable
from crmsync.groupware.google.connection import Answer, GoogleConnection

API = "people"
PERSON_FIELDS = (
    "names,emailAddresses,phoneNumbers,organizations,addresses,birthdays,biographies,"
    "memberships,clientData,metadata"
)
PAGE_SIZE = 1000
BATCH_GET = 200
_EXPIRED = frozenset({"expired_sync_token"})


class SyncTokenExpired(Exception):
    """The sync token expired (or was never issued): list everything again."""


def read_failure(conn: GoogleConnection, answer: Answer, rep: str, what: str) -> Exception:
    problem = conn.problem(answer, API, rep, what)
    if isinstance(problem, AuthenticationFailed):
        return problem
    return ServerUnavailable(problem.message, "Retried next cycle.")


def _token_refused(answer: Answer) -> bool:
    if answer.reasons & _EXPIRED:
        return True
    text = str((answer.body or {}).get("error", {}).get("message", "")).lower()
    return answer.status == 400 and "sync token" in text


def list_connections(
    conn: GoogleConnection, rep: str, sync_token: str | None = None, page_size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str]:
    """Every contact of the rep (changed ones since ``sync_token``), and the next token."""
    params = {
        "personFields": PERSON_FIELDS,
        "pageSize": str(page_size),
        "requestSyncToken": "true",
    }
    if sync_token:
        params["syncToken"] = sync_token
    rows: list[dict[str, Any]] = []
    while True:
        answer = conn.request(
            API, rep, "GET", "/people/me/connections", params=params, what="list contacts"
        )
        if answer.status in (400, 410) and sync_token and _token_refused(answer):
            raise SyncTokenExpired
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            raise read_failure(conn, answer, rep, "list contacts")
        rows += [
            p
            for p in answer.body.get("connections") or ()
            if isinstance(p, dict) and p.get("resourceName")
        ]
        if answer.body.get("nextPageToken"):
            params["pageToken"] = str(answer.body["nextPageToken"])
            continue
        if not answer.body.get("nextSyncToken"):
            raise ServerUnavailable(
                "Google ended a contact listing without a sync token", "Retried next cycle."
            )
        return rows, str(answer.body["nextSyncToken"])


def get_person(conn: GoogleConnection, rep: str, name: str) -> dict[str, Any] | None:
    answer = conn.request(
        API, rep, "GET", f"/{name}", params={"personFields": PERSON_FIELDS}, what="read a contact"
    )
    if answer.status in (404, 410):
        return None
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise read_failure(conn, answer, rep, "read a contact")
    return answer.body


def get_people(conn: GoogleConnection, rep: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """The contacts of ``names`` that exist, in batches of `BATCH_GET`."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(names), BATCH_GET):
        params = [("personFields", PERSON_FIELDS)] + [
            ("resourceNames", n) for n in names[start : start + BATCH_GET]
        ]
        answer = conn.request(
            API,
            rep,
            "GET",
            "/people:batchGet",
            params=params,
            what="read contacts",  # type: ignore[arg-type]
        )
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            raise read_failure(conn, answer, rep, "read contacts")
        for item in answer.body.get("responses") or ():
            person = item.get("person") if isinstance(item, Mapping) else None
            if isinstance(person, dict) and person.get("resourceName"):
                found.append(person)
    return found


def create_contact(conn: GoogleConnection, rep: str, body: dict[str, Any]) -> Answer:
    with conn.writes(rep):
        return conn.request(
            API,
            rep,
            "POST",
            "/people:createContact",
            params={"personFields": PERSON_FIELDS},
            json_body=body,
            what="create a contact",
        )


def update_contact(
    conn: GoogleConnection, rep: str, name: str, body: dict[str, Any], fields: Sequence[str]
) -> Answer:
    with conn.writes(rep):
        return conn.request(
            API,
            rep,
            "PATCH",
            f"/{name}:updateContact",
            params={"updatePersonFields": ",".join(fields), "personFields": PERSON_FIELDS},
            json_body=body,
            what="change a contact",
        )


def delete_contact(conn: GoogleConnection, rep: str, name: str) -> Answer:
    with conn.writes(rep):
        return conn.request(API, rep, "DELETE", f"/{name}:deleteContact", what="delete a contact")


def list_groups(conn: GoogleConnection, rep: str) -> list[dict[str, Any]]:
    params = {"pageSize": "1000", "groupFields": "name,groupType,clientData"}
    groups: list[dict[str, Any]] = []
    while True:
        answer = conn.request(API, rep, "GET", "/contactGroups", params=params, what="list groups")
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            raise read_failure(conn, answer, rep, "list contact groups")
        groups += [g for g in answer.body.get("contactGroups") or () if isinstance(g, dict)]
        if not answer.body.get("nextPageToken"):
            return groups
        params["pageToken"] = str(answer.body["nextPageToken"])


def create_group(conn: GoogleConnection, rep: str, group: dict[str, Any]) -> Answer:
    with conn.writes(rep):
        return conn.request(
            API,
            rep,
            "POST",
            "/contactGroups",
            json_body={"contactGroup": group},
            what="create a group",
        )


def group_members(conn: GoogleConnection, rep: str, group: str, at_most: int) -> list[str]:
    """The resource names of the group's members (up to ``at_most``)."""
    answer = conn.request(
        API, rep, "GET", f"/{group}", params={"maxMembers": str(at_most)}, what="list members"
    )
    if answer.status != 200 or not isinstance(answer.body, Mapping):
        raise read_failure(conn, answer, rep, "list the group's members")
    return [str(n) for n in answer.body.get("memberResourceNames") or ()]
