"""Auto-relate: events written from the mail server related to the people they are with.

Each event is related to the contacts whose email matches an attendee (all of them, up to
Salesforce's 50, as ``EventWhoIds`` with Shared Activities; the first as ``WhoId``
without), or else to one unconverted lead of a matching email, as Lightning Sync does.
A batch of events costs one Contact query (and one Lead query for the events no contact
matched) per group of emails, and one collection update per 200 rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.errors import FieldRejected
from crmsync.crm.salesforce.query import in_groups, query, quote_list
from crmsync.domain.records import Event

if TYPE_CHECKING:
    from crmsync.crm.salesforce.crm import SalesforceCrm

# EventWhoIds holds at most 50 contacts (the event's primary one among them).
MAX_RELATED = 50


def _emails(event: Event) -> list[str]:
    return sorted({a.email.lower() for a in event.attendees if a.email})


def _ids_by_email(crm: SalesforceCrm, soql: str, emails: Iterable[str]) -> dict[str, list[str]]:
    """``soql`` (with ``{emails}`` for the IN list) run per group of emails: ids by email."""
    found: dict[str, list[str]] = {}
    for group in in_groups(sorted(set(emails))):
        for row in query(crm.conn, soql.format(emails=quote_list(group))):
            found.setdefault(str(row.get("Email") or "").lower(), []).append(str(row["Id"]))
    return found


def relate(crm: SalesforceCrm, events: Sequence[tuple[Sequence[str], Event]]) -> None:
    """Relate each event (its row ids: one, or a series' occurrences) to its people."""
    wanted = [(rows, emails) for rows, event in events if rows and (emails := _emails(event))]
    if not wanted:
        return
    contacts = _ids_by_email(
        crm,
        "SELECT Id, Email FROM Contact WHERE Email IN {emails} ORDER BY Id",
        (e for _, emails in wanted for e in emails),
    )
    unmatched = [
        e for _, emails in wanted if not any(x in contacts for x in emails) for e in emails
    ]
    leads = (
        _ids_by_email(
            crm,
            "SELECT Id, Email FROM Lead WHERE Email IN {emails} AND IsConverted = false "
            "ORDER BY Id",
            unmatched,
        )
        if unmatched
        else {}
    )
    shared = crm.shared_activities()
    updates: list[dict[str, Any]] = []
    first_contact: dict[str, str] = {}
    for rows, emails in wanted:
        people = sorted({i for e in emails for i in contacts.get(e, [])})[:MAX_RELATED]
        if people:
            fields: dict[str, Any] = {"EventWhoIds": people} if shared else {"WhoId": people[0]}
        else:
            lead = sorted(i for e in emails for i in leads.get(e, []))[:1]
            if not lead:
                continue
            fields = {"WhoId": lead[0]}
        for row_id in rows:
            updates.append({"Id": row_id, **fields})
            if people:
                first_contact[row_id] = people[0]
    results = collections.update(crm.conn, "Event", updates)
    refused = [
        u["Id"]
        for u, r in zip(updates, results, strict=True)
        if isinstance(r.error, FieldRejected) and "EventWhoIds" in r.error.message
    ]
    if refused:
        # Shared Activities was turned off since we looked: one contact each, as WhoId.
        crm.forget_shared_activities()
        collections.update(
            crm.conn, "Event", [{"Id": i, "WhoId": first_contact[i]} for i in refused]
        )
