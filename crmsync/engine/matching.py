"""Content matching: the third layer against duplicates, for first syncs and lost state.

Contacts match by email, then by first + last name; events by subject + start + end (the
key the incumbents use). A key shared by several items on one side proposes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from crmsync.domain.records import Contact, Event, Record
from crmsync.domain.sync import Seen

NaturalKey = tuple[str, ...]


def natural_keys(record: Record) -> list[NaturalKey]:
    """The keys a record can be matched by, strongest first."""
    if isinstance(record, Contact):
        keys: list[NaturalKey] = []
        if record.email:
            keys.append(("email", record.email.strip().casefold()))
        if record.first_name or record.last_name:
            keys.append(
                ("name", record.first_name.strip().casefold(), record.last_name.strip().casefold())
            )
        return keys
    if isinstance(record, Event):
        timing = record.timing
        return [("event", record.subject.strip(), timing.start.isoformat(), timing.end.isoformat())]
    return []


def match_by_content(
    crm_items: Iterable[Seen], mail_items: Iterable[Seen]
) -> list[tuple[Seen, Seen]]:
    """Pairs of unlinked items whose natural key is unique on both sides, strongest key first."""
    crm_left = {item.id: item for item in crm_items if item.record is not None}
    mail_left = {item.id: item for item in mail_items if item.record is not None}
    pairs: list[tuple[Seen, Seen]] = []
    for tag in _KEY_TAGS:
        crm_by_key = _index(crm_left.values(), tag)
        mail_by_key = _index(mail_left.values(), tag)
        for key in sorted(crm_by_key.keys() & mail_by_key.keys()):
            crm_ids, mail_ids = crm_by_key[key], mail_by_key[key]
            if len(crm_ids) == 1 and len(mail_ids) == 1:
                pairs.append((crm_left.pop(crm_ids[0]), mail_left.pop(mail_ids[0])))
    return pairs


_KEY_TAGS = ("email", "name", "event")


def _index(items: Iterable[Seen], tag: str) -> dict[NaturalKey, list[str]]:
    index: dict[NaturalKey, list[str]] = defaultdict(list)
    for item in items:
        assert item.record is not None
        for key in natural_keys(item.record):
            if key[0] == tag:
                index[key].append(item.id)
    return index
