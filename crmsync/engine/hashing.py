"""Content hashes of mapped fields: how the engine tells a real change from a new etag."""

from __future__ import annotations

import hashlib
import json

from crmsync.domain.recent import RecentAnswers
from crmsync.domain.records import Record, to_plain

# Planning and executing one write ask for the same record's hash several times, the
# executor for a whole batch (200) before its writes.
_RECENT: RecentAnswers[str] = RecentAnswers(512)


def content_hash(record: Record) -> str:
    """A stable digest of the record's mapped fields; equal records hash equal on any side."""
    known = _RECENT.get(record)
    if known is None:
        text = json.dumps(
            to_plain(record), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        known = hashlib.sha256(text.encode()).hexdigest()
        _RECENT.put(record, known)
    return known
