"""The spec's words for configuration settings, where the stored values are identifiers
("crm_wins" reads "CRM always wins"; the spec's "Salesforce" and "Exchange" are our CRM
and mail server)."""

from __future__ import annotations

from enum import StrEnum

from crmsync.domain.settings import (
    ConflictBehaviour,
    ContactOwnership,
    Direction,
    EventSelection,
    EventWindow,
)

DIRECTIONS = {
    Direction.BOTH: "Sync both ways",
    Direction.CRM_TO_MAIL: "CRM to mail server",
    Direction.MAIL_TO_CRM: "Mail server to CRM",
    Direction.NONE: "Don't sync",
}
CONFLICTS = {
    ConflictBehaviour.CRM_WINS: "CRM always wins",
    ConflictBehaviour.MAIL_WINS: "Mail server always wins",
}
OWNERSHIPS = {
    ContactOwnership.USERS_RECORDS: "Selected contacts and User's records",
    ContactOwnership.ALL: "All contacts",
    ContactOwnership.SELECTED_NONE: "Selected contacts, without User's records (none sync)",
}
WINDOWS = {
    EventWindow.TODAY: "TODAY",
    EventWindow.LAST_MONTH: "LAST MONTH",
    EventWindow.LAST_N_DAYS: "LAST N DAYS",
}
SELECTIONS = {
    EventSelection.ALL: "All events",
    EventSelection.USER_SELECTED: "Events users select",
}


def choices(labels: dict[StrEnum, str]) -> list[tuple[str, str]]:
    """(value, label) of each choice, for a select."""
    return [(member.value, label) for member, label in labels.items()]
