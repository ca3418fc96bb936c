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


class NotSynced(MalformedItem):
    """A well-formed item that is no live contact or event (a group card, a cancelled
    event): left out by a rule, never reported as an error. ``message`` is the rule, in
    words for the audit trail."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule, "")


@dataclass(frozen=True)
class ParsedItem(Generic[R_co]):
    """An item's record, the marker it carries (if crmsync created it) and its UID.

    ``note`` names a repair made while reading ("the vCard has no FN ..."), for the audit
    trail; it is empty for an item read as written."""

    record: R_co
    marker: str | None
    uid: str | None
    note: str = ""


def item_text(data: bytes) -> str:
    """The text of an item as a server sent it (UTF-8, which CalDAV and CardDAV require).

    Raises `MalformedItem` naming the line of the first byte that is not UTF-8: text with
    replacement characters would reach the CRM and every other mailbox as if it were the
    name or note a person wrote.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MalformedItem(
            f"the item is not UTF-8 text: byte 0x{data[exc.start]:02X} on line {line} "
            "(probably Latin-1 or Windows-1252 text)",
            "Re-save the item in a client that writes UTF-8, or re-import it with its "
            "character set stated.",
        ) from None


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

    def reads_back(self, record: Record) -> bool:
        """Whether the text `render_new` makes of ``record`` parses as ``record`` itself
        (see `read_back`), so a create need not parse it back."""
        ...
