"""What the Salesforce sides share as writers: they write in collections (`create_many`,
`update_many`, `delete_many`, as in `crmsync.engine.ports.BatchWrites`), and a single write
is a batch of one, so it goes through the same queries and the same marker checks."""

from __future__ import annotations

from collections.abc import Sequence

from crmsync.domain.records import Record
from crmsync.domain.sync import SyncError, Written


class BatchedSide:
    """The single-item writes of ``ItemSide`` over the side's batched writes."""

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        raise NotImplementedError

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        raise NotImplementedError

    def delete_many(self, items: Sequence[tuple[str, str]]) -> list[SyncError | None]:
        raise NotImplementedError

    def planned_id(self, marker: str) -> None:
        """Salesforce assigns record ids: none is known before the create."""
        return None

    def create(self, record: Record, marker: str) -> Written:
        return _one(self.create_many([(record, marker)]))

    def update(self, item_id: str, version: str, record: Record) -> Written:
        return _one(self.update_many([(item_id, version, record)]))

    def delete(self, item_id: str, version: str) -> None:
        (outcome,) = self.delete_many([(item_id, version)])
        if outcome is not None:
            raise outcome


def _one(outcomes: Sequence[Written | SyncError]) -> Written:
    (outcome,) = outcomes
    if isinstance(outcome, SyncError):
        raise outcome
    return outcome
