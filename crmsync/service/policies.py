"""From an admin's configuration to the engine's per-kind policy."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.records import Contact, Event, ItemKind, Record
from crmsync.domain.settings import (
    ContactOwnership,
    ContactSettings,
    Direction,
    EventSelection,
    EventSettings,
    EventWindow,
    SyncConfig,
)
from crmsync.domain.sync import Side
from crmsync.engine.planner import DeleteGuard, Policy


def direction_of(config: SyncConfig, kind: ItemKind) -> Direction:
    return config.contacts.direction if kind is ItemKind.CONTACT else config.events.direction


def policy_for(
    config: SyncConfig,
    kind: ItemKind,
    *,
    now: dt.datetime,
    rep_zone: str = "UTC",
    event_category: str = "CRM",
    delete_guard: DeleteGuard | None = None,
    contact_fields: ContactFieldMap = IDENTITY_MAP,
) -> Policy:
    """The engine policy for one kind under ``config``, for a rep in ``rep_zone`` at ``now``;
    ``contact_fields`` is the configuration's contact field map (filters read through it)."""
    if kind is ItemKind.CONTACT:
        contacts = config.contacts
        return Policy(
            contacts.direction,
            contacts.conflict,
            contacts.propagate_deletions,
            delete_guard=delete_guard,
            out_of_scope=ContactScope(contacts, contact_fields),
        )
    events = config.events
    return Policy(
        events.direction,
        events.conflict,
        events.delete_synced_events,
        delete_guard=delete_guard,
        out_of_scope=EventScope(
            events, window_first_day(events, now, rep_zone), rep_zone, event_category
        ),
    )


def window_first_day(settings: EventSettings, now: dt.datetime, rep_zone: str) -> dt.date:
    """The first day (in the rep's zone) an event may end on and still sync."""
    today = now.astimezone(ZoneInfo(rep_zone)).date()
    if settings.window is EventWindow.TODAY:
        return today
    if settings.window is EventWindow.LAST_MONTH:
        return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return today - dt.timedelta(days=settings.window_days)


class ContactScope:
    """Why a CRM contact stays out of the CRM → mail sync (``None``: it syncs).

    The spec's contact filters: the ownership choice and the field filters, AND-ed. They
    never apply to contacts coming from the mail server.
    """

    def __init__(self, settings: ContactSettings, field_map: ContactFieldMap) -> None:
        self.settings = settings
        self.field_map = field_map

    def __call__(self, side: Side, record: Record) -> str | None:
        if side is not Side.CRM or not isinstance(record, Contact):
            return None
        if self.settings.ownership is ContactOwnership.SELECTED_NONE:
            return "Selected contacts without User's records: no CRM contact is selected"
        for condition in self.settings.filters:
            if not condition.matches(record, self.field_map):
                return f"outside filter: {condition.label}"
        return None


class EventScope:
    """Why an event stays out of sync under the event settings (``None``: it syncs).

    Out of scope means "not synced now", never "deleted": the planner skips the item and
    keeps any link it has.
    """

    def __init__(
        self, settings: EventSettings, first_day: dt.date, rep_zone: str, category: str
    ) -> None:
        self.settings = settings
        self.first_day = first_day
        # Timed events must end at or after midnight of the first day in the rep's zone.
        self.window_start = dt.datetime.combine(first_day, dt.time(), ZoneInfo(rep_zone))
        self.category = category

    def __call__(self, side: Side, record: Record) -> str | None:
        if not isinstance(record, Event):
            return None
        if record.is_private and not self.settings.sync_private:
            return "private, not synced"
        if record.recurrence is not None and not self.settings.sync_series:
            return "event series, not synced"
        if (
            side is Side.MAIL
            and self.settings.selection is EventSelection.USER_SELECTED
            and self.category.casefold() not in {c.casefold() for c in record.categories}
        ):
            return f"not selected: no {self.category} category"
        if record.recurrence is None and self._ended_before_window(record):
            return f"outside {self.settings.window_label}"
        return None

    def _ended_before_window(self, event: Event) -> bool:
        end = event.timing.end
        if isinstance(end, dt.datetime):
            return end < self.window_start
        # All-day: the end date is exclusive; the event's last day must be in the window.
        last_day = end - dt.timedelta(days=1) if end > event.timing.start else end
        return last_day < self.first_day
