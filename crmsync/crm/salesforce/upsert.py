"""Upsert by external id: create the record carrying a key, or update the one that does.

Single record: ``PATCH /sobjects/{SObject}/{ExtIdField}/{value}`` answers 201 (created),
200 (updated; the body says ``created: false``) or 300 (several records carry the value)
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm
Collection (one object type, up to 200 records, API v46+):
``PATCH /composite/sobjects/{SObject}/{ExtIdField}``
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
The key value must not appear in the body of a single upsert; it goes in the URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote as url_quote

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.errors import DuplicateValue, UnexpectedAnswer
from crmsync.crm.salesforce.sobject_collections import (
    SaveResult,
    parse_results,
    with_lock_retries,
)


def upsert_one(
    conn: SalesforceConnection,
    sobject: str,
    key_field: str,
    key: str,
    fields: dict[str, Any],
    *,
    update_only: bool = False,
) -> SaveResult:
    """Create or update the one record whose ``key_field`` is ``key``; raises
    `DuplicateValue` when several records carry it, a mapped error when refused."""
    what = f"upserting a {sobject} by {key_field}"
    path = f"sobjects/{sobject}/{key_field}/{url_quote(key, safe='')}"
    params = {"updateOnly": "true"} if update_only else None
    body = {k: v for k, v in fields.items() if k != key_field}
    answer = conn.request(
        "PATCH", path, params=params, json_body=body, write=True, accept=(300,), what=what
    )
    if answer.status == 300:
        raise DuplicateValue(
            f"several {sobject} records carry the crmsync marker {key!r}",
            f"Delete the duplicates in Salesforce so one {sobject} keeps the marker.",
        )
    if not isinstance(answer.body, dict) or "id" not in answer.body:
        raise UnexpectedAnswer(f"Salesforce answered {what} without the record's id", "")
    return SaveResult(str(answer.body["id"]), None, answer.status == 201)


def upsert_many(
    conn: SalesforceConnection, sobject: str, key_field: str, records: Sequence[dict[str, Any]]
) -> list[SaveResult]:
    """Upsert up to any number of ``records`` (each carrying ``key_field``), 200 per call."""

    def send(batch: Sequence[dict[str, Any]]) -> list[SaveResult]:
        what = f"upserting {len(batch)} {sobject} record(s) by {key_field}"
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": sobject}, **r} for r in batch],
        }
        answer = conn.request(
            "PATCH",
            f"composite/sobjects/{sobject}/{key_field}",
            json_body=body,
            write=True,
            what=what,
        )
        return parse_results(answer.body, len(batch), what)

    return with_lock_retries(conn, records, send)
