"""SOQL through ``/query`` and ``/queryAll``, following ``nextRecordsUrl`` page by page.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
(a page holds up to 2,000 records; ``done`` is false while a ``nextRecordsUrl`` remains).
``/queryAll`` also returns soft-deleted and merged records (``IsDeleted = true``) until the
Recycle Bin is emptied:
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm
Literals are built with `quote` / `datetime_literal`, never by pasting text into SOQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from crmsync.crm.salesforce.connection import SalesforceConnection
from crmsync.crm.salesforce.errors import UnexpectedAnswer

# The longest SOQL statement Salesforce accepts (100,000 characters); we stay well below.
MAX_SOQL = 20_000


def quote(text: str) -> str:
    """A SOQL string literal (backslash-escaped, as the SOQL reference requires)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace('"', '\\"')
    )
    return f"'{escaped}'"


def quote_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


def in_groups(values: Sequence[str], room: int = MAX_SOQL // 2) -> Iterator[list[str]]:
    """``values`` in groups whose `quote_list` fits in ``room`` characters, for the
    ``IN`` lists of statements that look up a batch of records."""
    group: list[str] = []
    used = 2
    for value in values:
        size = len(quote(value)) + 2
        if group and used + size > room:
            yield group
            group, used = [], 2
        group.append(value)
        used += size
    if group:
        yield group


def datetime_literal(value: dt.datetime) -> str:
    """A SOQL dateTime literal in UTC (unquoted), e.g. ``2026-01-05T14:00:00Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def query(
    conn: SalesforceConnection, soql: str, *, include_deleted: bool = False
) -> Iterator[dict[str, Any]]:
    """Every record the statement selects, fetching the next page only when needed.

    ``include_deleted`` uses ``/queryAll`` (deleted and archived rows too).
    """
    if len(soql) > MAX_SOQL:
        raise ValueError("SOQL statement too long; query in smaller batches")
    resource = "queryAll" if include_deleted else "query"
    answer = conn.get(f"{resource}/", params={"q": soql}, what=f"the {resource} of {_object(soql)}")
    while True:
        page = answer.body
        if not isinstance(page, dict) or not isinstance(page.get("records"), list):
            raise UnexpectedAnswer(f"a {resource} page without records", "")
        yield from page["records"]
        next_url = page.get("nextRecordsUrl")
        if page.get("done", True) or not next_url:
            return
        if not str(next_url).startswith("/services/data/"):
            raise UnexpectedAnswer("a nextRecordsUrl outside the API", "")
        answer = conn.get(str(next_url), what=f"the next {resource} page of {_object(soql)}")


def query_all(conn: SalesforceConnection, soql: str) -> Iterator[dict[str, Any]]:
    return query(conn, soql, include_deleted=True)


def _object(soql: str) -> str:
    words = soql.split()
    upper = [w.upper() for w in words]
    return words[upper.index("FROM") + 1] if "FROM" in upper[:-1] else "records"


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its ``attributes`` envelope (nested relationship records too)."""
    return {
        key: plain(value) if isinstance(value, dict) else value
        for key, value in record.items()
        if key != "attributes"
    }
