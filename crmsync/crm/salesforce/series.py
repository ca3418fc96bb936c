"""Lightning event series: occurrence rows grouped into one crmsync series and back.

Salesforce keeps a series as one Event row per occurrence (``IsRecurrence2``) carrying the
pattern (``Recurrence2PatternText``, an RRULE; ``Recurrence2PatternStartDate``;
``Recurrence2PatternTimeZone``); an occurrence edited on its own is flagged
``IsRecurrence2Exception``; a cancelled one is simply deleted
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_event_series_delete.htm).
A pattern change deletes and re-creates every row, with new ids, so a series' item id is
not a row id but a key built from its owner and pattern (`series_key`), and occurrences
are told apart by their original start (their slot in the pattern), never by row id.

The API names no occurrence's original start: a row on a slot of the pattern is that
slot's; an exception row off every free slot is taken as the nearest free slot's (a
moved occurrence), and free slots left over are cancelled occurrences [verify against a
real org's moved occurrences].
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from crmsync.crm.salesforce.event_map import content_fields, row_event, row_timing, timing_fields
from crmsync.crm.salesforce.versions import parse_instant
from crmsync.domain.records import Event, EventTiming, Occurrence, Recurrence

SERIES_PREFIX = "series:"
INSTANT_FIELDS = frozenset({"StartDateTime", "EndDateTime"})
# Expansion stops here for an open-ended pattern (Salesforce's own series are bounded).
MAX_SLOTS = 1000
Instant = dt.datetime | dt.date


def pattern_rule(row: Mapping[str, Any]) -> str:
    text = str(row.get("Recurrence2PatternText") or "").strip()
    return text.removeprefix("RRULE:")


def series_key(row: Mapping[str, Any]) -> str | None:
    """The item id of the series a row belongs to, ``None`` for a single event."""
    if not row.get("IsRecurrence2"):
        return None
    pattern = f"{pattern_rule(row)}|{row.get('Recurrence2PatternTimeZone') or ''}"
    digest = hashlib.sha1(pattern.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{SERIES_PREFIX}{row.get('OwnerId')}:{row.get('Recurrence2PatternStartDate')}:{digest}"


def parse_series_key(key: str) -> tuple[str, str] | None:
    """``(owner id, pattern start)`` of a series key, or ``None`` for a row id."""
    if not key.startswith(SERIES_PREFIX):
        return None
    owner, _, rest = key.removeprefix(SERIES_PREFIX).partition(":")
    start, _, _digest = rest.rpartition(":")
    return (owner, start) if owner and start else None


def _slot_key(value: Instant) -> str:
    return value.isoformat()


@dataclass(frozen=True)
class SeriesView:
    """A series as read: the crmsync event, and the row holding each slot (by original
    start), plus what the pattern looks like for writes."""

    event: Event
    rows_by_slot: dict[str, Mapping[str, Any]]
    slots: tuple[Instant, ...]
    duration: dt.timedelta
    tzid: str


def _dtstart(rows: Sequence[Mapping[str, Any]], tzid: str, all_day: bool) -> Instant:
    raw = str(rows[0].get("Recurrence2PatternStartDate") or "")
    if all_day:
        return dt.date.fromisoformat(raw[:10]) if raw else row_timing(rows[0], None).start
    if "T" in raw:
        value = parse_instant(raw)
        assert value is not None
        return value
    # A date only: the first slot's time of day is the plain occurrences' local time.
    first = min(rows, key=lambda r: str(r.get("StartDateTime")))
    start = parse_instant(first.get("StartDateTime"))
    assert start is not None
    local = start.astimezone(ZoneInfo(tzid))
    day = dt.date.fromisoformat(raw) if raw else local.date()
    return dt.datetime.combine(day, local.time(), ZoneInfo(tzid)).astimezone(dt.UTC)


def expand(rule: str, dtstart: Instant, tzid: str, horizon: Instant | None) -> list[Instant]:
    """The pattern's slots from ``dtstart`` (UTC instants, or dates for all-day), up to
    ``horizon`` for an open-ended rule."""
    bounded = "COUNT=" in rule.upper() or "UNTIL=" in rule.upper()
    if isinstance(dtstart, dt.datetime):
        zone = ZoneInfo(tzid)
        local = dtstart.astimezone(zone).replace(tzinfo=None)
        generator = rrulestr(rule, dtstart=local)
        slots: list[Instant] = []
        for when in generator:
            instant = when.replace(tzinfo=zone).astimezone(dt.UTC)
            if len(slots) >= MAX_SLOTS or (
                not bounded and horizon is not None and instant > horizon
            ):
                break
            slots.append(instant)
        return slots
    generator = rrulestr(rule, dtstart=dt.datetime.combine(dtstart, dt.time()))
    days: list[Instant] = []
    for when in generator:
        if len(days) >= MAX_SLOTS or (
            not bounded and horizon is not None and when.date() > horizon
        ):
            break
        days.append(when.date())
    return days


def series_view(rows: Sequence[Mapping[str, Any]], default_tz: str) -> SeriesView:
    """The series the rows (all of one series, at least one) make; raises `ValueError`
    for rows that do not form a series."""
    rows = sorted(rows, key=lambda r: (str(r.get("StartDateTime")), str(r.get("Id"))))
    tzid = str(rows[0].get("Recurrence2PatternTimeZone") or default_tz)
    all_day = bool(rows[0].get("IsAllDayEvent"))
    rule = pattern_rule(rows[0])
    if not rule:
        raise ValueError("an event series without its pattern text")
    plain = [r for r in rows if not r.get("IsRecurrence2Exception")] or rows
    model = plain[0]
    model_timing = row_timing(model, None if all_day else tzid)
    duration = model_timing.end - model_timing.start
    dtstart = _dtstart(rows, tzid, all_day)
    last = max(row_timing(r, None).start for r in rows)
    slots = expand(rule, dtstart, tzid, last)
    by_key = {_slot_key(s): s for s in slots}
    assigned: dict[str, Mapping[str, Any]] = {}
    movers = []
    for row in rows:
        key = _slot_key(row_timing(row, None).start)
        if key in by_key and key not in assigned:
            assigned[key] = row
        else:
            movers.append(row)
    for row in movers:
        start = row_timing(row, None).start
        free = [s for s in slots if _slot_key(s) not in assigned]
        if not free:
            raise ValueError(f"occurrence {row.get('Id')} fits no slot of its series pattern")
        nearest = min(free, key=lambda s: abs(_distance(s, start)))
        assigned[_slot_key(nearest)] = row
    master = row_event(model, None if all_day else tzid)
    timing = EventTiming(dtstart, dtstart + duration, None if all_day else tzid)
    overrides = []
    for slot in slots:
        row = assigned.get(_slot_key(slot))
        if row is None:
            continue
        occurrence = Occurrence(
            slot,
            row_timing(row, None if all_day else tzid),
            str(row.get("Subject") or ""),
            str(row.get("Location") or ""),
            str(row.get("Description") or ""),
        )
        expected = Occurrence(
            slot,
            EventTiming(slot, slot + duration, None if all_day else tzid),
            master.subject,
            master.location,
            master.description,
        )
        if occurrence != expected:
            overrides.append(occurrence)
    exdates = tuple(s for s in slots if _slot_key(s) not in assigned)
    event = Event(
        subject=master.subject,
        timing=timing,
        location=master.location,
        description=master.description,
        is_private=master.is_private,
        show_as=master.show_as,
        recurrence=Recurrence(rule, exdates, tuple(overrides)),
    )
    return SeriesView(event, assigned, tuple(slots), duration, tzid)


def _distance(a: Instant, b: Instant) -> float:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return (a - b).total_seconds()
    return float((_as_date(a) - _as_date(b)).days)


def _as_date(value: Instant) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def same_pattern(view: SeriesView, event: Event) -> bool:
    """Whether ``event`` keeps the series' pattern, so its rows can be edited in place;
    otherwise the series is deleted and created again (Salesforce regenerates it anyway)."""
    rec = event.recurrence
    old = view.event.recurrence
    if rec is None or old is None or rec.rdates:
        return False
    restored = set(map(_slot_key, old.exdates)) - set(map(_slot_key, rec.exdates))
    return (
        rec.rule == old.rule
        and event.timing.start == view.event.timing.start
        and event.timing.all_day == view.event.timing.all_day
        and not restored
    )


def row_updates(view: SeriesView, event: Event) -> tuple[list[dict[str, Any]], list[str]]:
    """The row updates (with ``Id``) and row deletions that turn ``view`` into ``event``
    (same pattern, see `same_pattern`)."""
    rec = event.recurrence
    assert rec is not None
    duration = event.timing.end - event.timing.start
    tzid = None if event.timing.all_day else view.tzid
    cancelled = set(map(_slot_key, rec.exdates))
    overrides = {_slot_key(o.recurrence_id): o for o in rec.overrides}
    master = content_fields(event)
    updates, deletions = [], []
    for slot in view.slots:
        key = _slot_key(slot)
        row = view.rows_by_slot.get(key)
        if row is None:
            continue
        if key in cancelled:
            deletions.append(str(row["Id"]))
            continue
        override = overrides.get(key)
        if override is None:
            wanted = {**master, **timing_fields(EventTiming(slot, slot + duration, tzid))}
        else:
            wanted = {
                **master,
                "Subject": override.subject or None,
                "Location": override.location or None,
                "Description": override.description or None,
                **timing_fields(override.timing),
            }
        changed = {k: v for k, v in wanted.items() if not same_value(k, row.get(k), v)}
        if changed:
            updates.append({"Id": row["Id"], **changed})
    return updates, deletions


def same_value(field: str, have: Any, want: Any) -> bool:
    """Whether a row's ``field`` already holds what a write would set (null and empty
    text are one value; instants compare as instants, whatever their text)."""
    if have in (None, "") and want in (None, ""):
        return True
    if field in INSTANT_FIELDS and isinstance(have, str) and isinstance(want, str):
        return parse_instant(have) == parse_instant(want)
    return bool(have == want)
