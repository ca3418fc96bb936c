"""From an admin's configuration to the engine's per-kind policy."""

from __future__ import annotations

from crmsync.domain.records import Event, ItemKind, Record
from crmsync.domain.settings import Direction, EventSettings, SyncConfig
from crmsync.domain.sync import Side
from crmsync.engine.planner import Policy


def direction_of(config: SyncConfig, kind: ItemKind) -> Direction:
    return config.contacts.direction if kind is ItemKind.CONTACT else config.events.direction


def policy_for(config: SyncConfig, kind: ItemKind) -> Policy:
    """The engine policy for one kind under ``config``."""
    if kind is ItemKind.CONTACT:
        contacts = config.contacts
        return Policy(contacts.direction, contacts.conflict, contacts.propagate_deletions)
    events = config.events
    return Policy(
        events.direction,
        events.conflict,
        events.delete_synced_events,
        out_of_scope=_EventScope(events),
    )


class _EventScope:
    """Why an event stays out of sync under the event settings (``None``: it syncs)."""

    def __init__(self, settings: EventSettings) -> None:
        self.settings = settings

    def __call__(self, side: Side, record: Record) -> str | None:
        if not isinstance(record, Event):
            return None
        if record.is_private and not self.settings.sync_private:
            return "private, not synced"
        if record.recurrence is not None and not self.settings.sync_series:
            return "event series, not synced"
        return None
