"""What a DAV collection needs from an item format (vCard, iCalendar), and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from crmsync.domain.records import Record

# The X- property stamping an item crmsync created with the CRM id it came from.
MARKER_PROPERTY = "X-CRMSYNC-CRM-ID"

R_co = TypeVar("R_co", bound=Record, covariant=True)


class MalformedItem(ValueError):
    """An item's text cannot be mapped; ``message`` says what is wrong, precisely."""

    def __init__(self, message: str, suggestion: str) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


@dataclass(frozen=True)
class ParsedItem(Generic[R_co]):
    """An item's record, the marker it carries (if crmsync created it) and its UID."""

    record: R_co
    marker: str | None
    uid: str | None


class ItemFormat(Protocol):
    """One wire format: how items of a collection are read, created and updated."""

    content_type: str
    extension: str
    # Clark names of the multiget REPORT and of the property carrying the item's text.
    multiget_report: str
    data_property: str

    def parse(self, text: str) -> ParsedItem[Record]:
        """Map an item's text; raises `MalformedItem` when it cannot."""
        ...

    def render_new(self, record: Record, marker: str, uid: str) -> str:
        """The text of a new item holding ``record``, stamped with ``marker``."""
        ...

    def render_update(self, text: str, record: Record) -> str:
        """``text`` with the mapped properties changed to ``record``'s values, everything
        else kept line for line; raises `MalformedItem` when ``text`` cannot be read."""
        ...
