"""Content hashes of mapped fields: how the engine tells a real change from a new etag."""

from __future__ import annotations

import functools
import hashlib
import json

from crmsync.domain.records import Record, to_plain


@functools.lru_cache(maxsize=4096)
def content_hash(record: Record) -> str:
    """A stable digest of the record's mapped fields; equal records hash equal on any side.

    Records are frozen values, so the digest is cached: planning and executing one item
    ask for the same record's hash several times.
    """
    text = json.dumps(to_plain(record), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
