"""sObject Collections: create, update and delete up to 200 records per call.

Create: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm
Update: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm
Delete: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_delete.htm
With ``allOrNone=false`` a well-formed call answers 200 and one SaveResult per record, in
order. Records that failed with ``UNABLE_TO_LOCK_ROW`` are sent again (alone, after the
connection's jittered back-off); every other failure is returned as that record's error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.errors import UnexpectedAnswer, error_code, to_sync_error
from crmsync.domain.sync import SyncError

MAX_RECORDS = 200


@dataclass(frozen=True)
class SaveResult:
    """One record's outcome: its id on success, else the mapped error."""

    id: str | None
    error: SyncError | None = None
    created: bool = False
    code: str = ""

    @property
    def success(self) -> bool:
        return self.error is None


def chunks(items: Sequence[Any], size: int = MAX_RECORDS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_results(body: Any, count: int, what: str) -> list[SaveResult]:
    if not isinstance(body, list) or len(body) != count:
        raise UnexpectedAnswer(f"Salesforce answered {what} without one result per record", "")
    results = []
    for item in body:
        item = item if isinstance(item, dict) else {}
        errors = item.get("errors") or []
        if item.get("success"):
            results.append(SaveResult(item.get("id"), None, bool(item.get("created"))))
        else:
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            results.append(
                SaveResult(item.get("id"), to_sync_error(first, what), code=error_code(first))
            )
    return results


def with_lock_retries(
    conn: SalesforceConnection,
    records: Sequence[Any],
    send: Any,
) -> list[SaveResult]:
    """``send(batch)`` for each chunk; locked records are re-sent up to the policy's limit."""
    results: list[SaveResult] = []
    for batch in chunks(records):
        batch_results = send(batch)
        for attempt in range(1, conn.retry.max_attempts):
            locked = [i for i, r in enumerate(batch_results) if r.code == "UNABLE_TO_LOCK_ROW"]
            if not locked:
                break
            conn.retry.wait(attempt)
            again = send([batch[i] for i in locked])
            for i, result in zip(locked, again, strict=True):
                batch_results[i] = result
        results += batch_results
    return results


def _typed(sobject: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": {"type": sobject}, **record}


def create(
    conn: SalesforceConnection, sobject: str, records: Sequence[dict[str, Any]]
) -> list[SaveResult]:
    """Create ``records`` (field values, no Id); one result per record, in order."""

    def send(batch: Sequence[dict[str, Any]]) -> list[SaveResult]:
        what = f"creating {len(batch)} {sobject} record(s)"
        body = {"allOrNone": False, "records": [_typed(sobject, r) for r in batch]}
        answer = conn.request("POST", "composite/sobjects", json_body=body, write=True, what=what)
        return parse_results(answer.body, len(batch), what)

    return with_lock_retries(conn, records, send)


def update(
    conn: SalesforceConnection, sobject: str, records: Sequence[dict[str, Any]]
) -> list[SaveResult]:
    """Update ``records`` (each with ``Id`` and the fields to set); ``None`` clears a field."""

    def send(batch: Sequence[dict[str, Any]]) -> list[SaveResult]:
        what = f"updating {len(batch)} {sobject} record(s)"
        body = {"allOrNone": False, "records": [_typed(sobject, r) for r in batch]}
        answer = conn.request("PATCH", "composite/sobjects", json_body=body, write=True, what=what)
        return parse_results(answer.body, len(batch), what)

    return with_lock_retries(conn, records, send)


def delete(conn: SalesforceConnection, ids: Sequence[str]) -> list[SaveResult]:
    """Delete records by id (any object types); a record already gone comes back with
    ``ENTITY_IS_DELETED`` (an `EntityIsDeleted` error), which callers may treat as done."""

    def send(batch: Sequence[str]) -> list[SaveResult]:
        what = f"deleting {len(batch)} record(s)"
        params = {"ids": ",".join(batch), "allOrNone": "false"}
        answer = conn.request("DELETE", "composite/sobjects", params=params, write=True, what=what)
        return parse_results(answer.body, len(batch), what)

    return with_lock_retries(conn, ids, send)
