"""Who an event is about: its relations to contacts and a lead in the built-in CRM."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, insert, select

from crmsync.crm.builtin import tables
from crmsync.crm.builtin.rows import OwnedKind
from crmsync.crm.builtin.transactions import CrmTransactions


@dataclass(frozen=True)
class EventRelations:
    """Who an event is about: any number of contacts and at most one lead."""

    contact_ids: tuple[str, ...] = ()
    lead_id: str | None = None


class EventRelationsMixin(CrmTransactions):
    """Relating events to contacts and leads, and reading the relations back."""

    def relate_event(
        self, event_id: str, *, contact_id: str | None = None, lead_id: str | None = None
    ) -> None:
        """Relate the event to a contact or (replacing any other) a lead; relating twice is
        a no-op. Raises `NotFound` when the event, contact or lead is missing."""
        if (contact_id is None) == (lead_id is None):
            raise ValueError("give exactly one of contact_id and lead_id")
        with self.writing() as conn:
            self._require(conn, OwnedKind.EVENT, event_id)
            rel = tables.event_relations
            if contact_id is not None:
                self._require(conn, OwnedKind.CONTACT, contact_id)
                have = conn.execute(
                    select(rel.c.id).where(
                        rel.c.event_id == event_id, rel.c.contact_id == contact_id
                    )
                ).first()
                if have is None:
                    conn.execute(insert(rel).values(event_id=event_id, contact_id=contact_id))
            else:
                assert lead_id is not None
                self._require(conn, OwnedKind.LEAD, lead_id)
                conn.execute(
                    delete(rel).where(rel.c.event_id == event_id, rel.c.lead_id.is_not(None))
                )
                conn.execute(insert(rel).values(event_id=event_id, lead_id=lead_id))

    def unrelate_event(
        self, event_id: str, *, contact_id: str | None = None, lead_id: str | None = None
    ) -> None:
        """Remove one relation; removing one that is not there is a no-op."""
        if (contact_id is None) == (lead_id is None):
            raise ValueError("give exactly one of contact_id and lead_id")
        rel = tables.event_relations
        target = (
            rel.c.contact_id == contact_id if contact_id is not None else rel.c.lead_id == lead_id
        )
        with self.writing() as conn:
            conn.execute(delete(rel).where(and_(rel.c.event_id == event_id, target)))

    def set_event_relations(self, event_id: str, relations: EventRelations) -> None:
        """Replace all of the event's relations; raises `NotFound` for a missing record."""
        rel = tables.event_relations
        with self.writing() as conn:
            self._require(conn, OwnedKind.EVENT, event_id)
            for contact_id in relations.contact_ids:
                self._require(conn, OwnedKind.CONTACT, contact_id)
            if relations.lead_id is not None:
                self._require(conn, OwnedKind.LEAD, relations.lead_id)
            conn.execute(delete(rel).where(rel.c.event_id == event_id))
            rows = [
                {"event_id": event_id, "contact_id": c, "lead_id": None}
                for c in dict.fromkeys(relations.contact_ids)
            ]
            if relations.lead_id is not None:
                rows.append(
                    {"event_id": event_id, "contact_id": None, "lead_id": relations.lead_id}
                )
            if rows:
                conn.execute(insert(rel), rows)

    def event_relations(self, event_id: str) -> EventRelations:
        with self.reading() as conn:
            return self.relations_of(conn, [event_id]).get(event_id, EventRelations())

    @staticmethod
    def relations_of(conn: Connection, event_ids: list[str]) -> dict[str, EventRelations]:
        """Relations of several events in one query; events without any are left out."""
        rel = tables.event_relations
        contacts: dict[str, list[str]] = {}
        leads: dict[str, str] = {}
        rows = conn.execute(
            select(rel.c.event_id, rel.c.contact_id, rel.c.lead_id)
            .where(rel.c.event_id.in_(event_ids))
            .order_by(rel.c.id)
        )
        for row in rows:
            if row.contact_id is not None:
                contacts.setdefault(row.event_id, []).append(row.contact_id)
            else:
                leads[row.event_id] = row.lead_id
        return {
            eid: EventRelations(tuple(contacts.get(eid, ())), leads.get(eid))
            for eid in contacts.keys() | leads.keys()
        }
