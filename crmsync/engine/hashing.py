"""Content hashes of mapped fields: how the engine tells a real change from a new etag."""

from __future__ import annotations

import hashlib
import json

from crmsync.domain.records import Record, to_plain


def content_hash(record: Record) -> str:
    """A stable digest of the record's mapped fields; equal records hash equal on any side."""
    text = json.dumps(to_plain(record), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
