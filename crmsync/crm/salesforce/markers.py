"""crmsync's marker on Salesforce records: the partner item's id, scoped to the rep.

The marker field (``CrmSync_Key__c`` by default: Text(255), External ID, Unique and
case-sensitive on Contact and Account; a plain text field on Event, where external ids
and upsert are not dependable for synced events) holds ``<rep id>:<partner id>``. Two
reps' mailboxes may use the same item ids (a DAV href, say), the rep id keeps them apart.
A partner id too long for the field is stored hashed; such a marker still makes creates
idempotent, but cannot be read back as the partner's id.
"""

from __future__ import annotations

import hashlib

MAX_LENGTH = 255
_HASHED = "#sha256:"


def marker_value(rep_id: str, marker: str) -> str:
    value = f"{rep_id}:{marker}"
    if len(value) <= MAX_LENGTH:
        return value
    digest = hashlib.sha256(marker.encode()).hexdigest()
    return f"{rep_id}:{_HASHED}{digest}"


def marker_of(rep_id: str, value: object) -> str | None:
    """The partner id a stored value names for ``rep_id`` (``None``: another rep's, a
    hashed one, or none)."""
    if not isinstance(value, str) or not value.startswith(f"{rep_id}:"):
        return None
    marker = value[len(rep_id) + 1 :]
    return None if marker.startswith(_HASHED) else marker
