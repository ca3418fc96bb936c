"""Item versions and watermark cursors.

A version is the record's ``SystemModstamp`` plus a short hash of the fields we read:
SystemModstamp has one-second resolution in practice, so two edits within a second
would otherwise look like one. A series' version covers all its occurrence rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

CURSOR_PREFIX = "sfwm:"


def row_version(row: Mapping[str, Any]) -> str:
    content = json.dumps(
        {k: v for k, v in row.items() if k not in ("attributes", "SystemModstamp")},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{row.get('SystemModstamp', '')}~{digest}"


def older_than(row: Mapping[str, Any], known: str | None) -> bool:
    """Whether ``row`` predates ``known``, a version of the same record we read later:
    the feed's copy from a poll before our own write, which is no change."""
    if not known or "~" not in known:
        return False
    ours = parse_instant(known.partition("~")[0])
    theirs = parse_instant(row.get("SystemModstamp"))
    return ours is not None and theirs is not None and theirs < ours


def rows_version(rows: Iterable[Mapping[str, Any]]) -> str:
    parts = sorted(f"{row.get('Id')}={row_version(row)}" for row in rows)
    return (
        "series~" + hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]
    )


def parse_instant(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def wire_instant(value: dt.datetime) -> str:
    """A Salesforce dateTime value (UTC, milliseconds)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def cursor_text(watermark: dt.datetime) -> str:
    return CURSOR_PREFIX + watermark.astimezone(dt.UTC).isoformat()


def cursor_watermark(cursor: str | None) -> dt.datetime | None:
    """The watermark a cursor names, or ``None`` for no cursor or one we never issued."""
    if not cursor or not cursor.startswith(CURSOR_PREFIX):
        return None
    try:
        value = dt.datetime.fromisoformat(cursor.removeprefix(CURSOR_PREFIX))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
