"""Upsert by external id: create the records carrying a key, or update those that do.

Collection (one object type, up to 200 records, API v46+):
``PATCH /composite/sobjects/{SObject}/{ExtIdField}``; each record's result says whether it
was created, and a key several records carry is a per-record DUPLICATE_EXTERNAL_ID.
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
crmsync writes only this way (the sides batch their writes), never one record per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.sobject_collections import (
    SaveResult,
    parse_results,
    with_lock_retries,
)


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
