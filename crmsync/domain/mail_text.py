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
from functools import cache
from typing import Any, TypeVar

from crmsync.domain.records import Record
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
    cleaned = _cleaned(record)
    return record if cleaned is None else cleaned


def held_by(side: Side, record: Record) -> Record:
    """``record`` as ``side`` holds it once written: the mail side without control
    characters, the CRM side as it is."""
    return without_control_characters(record) if side is Side.MAIL else record


def _cleaned(value: Any) -> Any:
    """The cleaned value, or ``None`` when ``value`` needs no change."""
    if isinstance(value, str):
        text = printable_text(value)
        return None if text == value else text
    if isinstance(value, tuple):
        parts = [_cleaned(v) for v in value]
        if all(p is None for p in parts):
            return None
        return tuple(v if p is None else p for v, p in zip(value, parts, strict=True))
    names = _field_names(type(value))
    if not names:
        return None
    changes = {}
    for name in names:
        cleaned = _cleaned(getattr(value, name))
        if cleaned is not None:
            changes[name] = cleaned
    return dataclasses.replace(value, **changes) if changes else None


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    # Looked up once per type: every write goes through here, most with nothing to clean.
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else ()
