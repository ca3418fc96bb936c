"""Where crmsync keeps its own values on Google items.

Events: ``extendedProperties.private`` (per calendar copy, invisible to attendees and to
the Calendar UI; https://developers.google.com/workspace/calendar/api/guides/extended-properties).
Contacts: ``clientData`` ("arbitrary client data that is populated by clients",
https://developers.google.com/people/api/rest/v1/people#clientdata). The keys are
versioned by name: a new scheme gets new keys and reads the old ones, never a rewrite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MARKER = "crmsyncMarker"  # the CRM id of the item crmsync created this one from
SHOW_AS = "crmsyncShowAs"  # the show-as value written (Google knows only busy / free)
CATEGORIES = "crmsyncCategories"  # the CRM's categories, JSON (Google has none)
PERSON_ACCOUNT = "crmsyncPersonAccount"  # "true" for a CRM person account
GROUP = "crmsyncContactsGroup"  # on the contact group crmsync created


def private(event: Mapping[str, Any]) -> dict[str, str]:
    """An event's private extended properties."""
    props = (event.get("extendedProperties") or {}).get("private") or {}
    return {str(k): str(v) for k, v in props.items()} if isinstance(props, Mapping) else {}


def client_data(person: Mapping[str, Any]) -> dict[str, str]:
    """A person's clientData as key → value (the first value of a repeated key)."""
    found: dict[str, str] = {}
    for item in person.get("clientData") or ():
        if isinstance(item, Mapping) and item.get("key"):
            found.setdefault(str(item["key"]), str(item.get("value") or ""))
    return found
