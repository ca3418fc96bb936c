"""Text a mail server's item can hold: no control characters.

XML 1.0 (EWS) cannot carry most C0 control characters at all, the TEXT of iCalendar and
vCard (RFC 5545 3.3.11, RFC 6350 3.3) has none but the tab, and a Xandikos collection
that stored one answers every later listing with XML no reader accepts, so one bad value
stopped a rep's whole calendar. A CRM value can hold them all the same (a NUL from an old
import, a vertical tab from a spreadsheet cell, an escape pasted from a terminal), so every
backend writes records through `without_control_characters`; tabs and line breaks stay.
The engine hashes and compares what it writes to the mail side as `held_by` it, so a
cleaned value is neither written a second time nor, after a crash, taken for a person's
edit.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

from crmsync.domain.recent import RecentAnswers
from crmsync.domain.records import Record, record_fields
from crmsync.domain.sync import Side

# C0 controls but tab, LF and CR; DEL; lone surrogates (no UTF-8 encoding) and the two
# noncharacters XML forbids.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

R = TypeVar("R")


def printable_text(value: str) -> str:
    """``value`` without the characters no mail item can hold (itself when it has none)."""
    if value.isprintable():  # most values: no character to look at
        return value
    return _UNWRITABLE.sub("", value)


def without_control_characters(record: R) -> R:
    """``record`` with every text in it (addresses, attendees, occurrences included) made
    `printable_text`; the record itself when nothing changes, as for most."""
    # A write asks three times for the same record (the engine's intent, made for a
    # whole batch before its writes, then the write and the backend's own call).
    known = _RECENT.get(record)
    if known is not None:
        return known  # type: ignore[no-any-return]
    cleaned = _cleaned(record)
    result = record if cleaned is None else cleaned
    _RECENT.put(record, result)
    _RECENT.put(result, result)
    return result


def held_by(side: Side, record: Record) -> Record:
    """``record`` as ``side`` holds it once written: the mail side without control
    characters, the CRM side as it is."""
    return without_control_characters(record) if side is Side.MAIL else record


# Two entries per record: an engine batch's records (200) and their cleaned copies.
_RECENT: RecentAnswers[Any] = RecentAnswers(512)


def _cleaned(value: Any) -> Any:
    """The cleaned value, or ``None`` when ``value`` needs no change."""
    kind = type(value)
    if kind is str:  # an enum's text (a str subclass) is the code's own: nothing to clean
        text = printable_text(value)
        return None if text == value else text
    if kind is tuple:
        parts = [_cleaned(v) for v in value]
        if all(p is None for p in parts):
            return None
        return tuple(v if p is None else p for v, p in zip(value, parts, strict=True))
    fields = record_fields(kind)
    if not fields:
        return None
    changes = {}
    for name, _, _ in fields:
        cleaned = _cleaned(getattr(value, name))
        if cleaned is not None:
            changes[name] = cleaned
    return dataclasses.replace(value, **changes) if changes else None
