"""`RecentItems`: the items a groupware side read last, kept so that a write can start from
what the server holds (a whole-item update, an If-Match check) without reading it again;
bounded, the least recently read forgotten first."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

V = TypeVar("V")


class RecentItems(OrderedDict[str, V]):
    """At most ``limit`` items by id, the most recently remembered last."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, item_id: str, item: V) -> None:
        self[item_id] = item
        self.move_to_end(item_id)
        if len(self) > self.limit:
            self.popitem(last=False)
