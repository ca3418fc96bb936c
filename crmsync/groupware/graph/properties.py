"""Extended properties crmsync reads and writes on Graph items.

https://learn.microsoft.com/graph/api/resources/singlevaluelegacyextendedproperty: a
named property in crmsync's own property set (a GUID), or a MAPI tag (``String 0x3A24``).
Graph spells ids back in its own case, so they compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PROPERTY_SET = "{7b1b77bd-be42-4592-a5e5-347550651a2b}"
MARKER = f"String {PROPERTY_SET} Name crmsyncMarker"
PERSON_ACCOUNT = f"String {PROPERTY_SET} Name crmsyncPersonAccount"
ATTENDEE_STATUS = f"String {PROPERTY_SET} Name crmsyncAttendeeStatus"
RULE_TEXT = f"String {PROPERTY_SET} Name crmsyncRule"
# Outlook's own fields that Graph's contact resource does not expose (MS-OXPROPS).
BUSINESS_FAX = "String 0x3A24"  # PidTagBusinessFaxNumber
OTHER_PHONE = "String 0x3A1F"  # PidTagOtherTelephoneNumber


def expand(ids: Iterable[str]) -> str:
    """The ``$expand`` value that returns these extended properties with an item."""
    wanted = " or ".join(f"id eq '{i}'" for i in ids)
    return f"singleValueExtendedProperties($filter={wanted})"


def marker_filter(marker: str) -> str:
    """The ``$filter`` finding items stamped with ``marker``."""
    value = marker.replace("'", "''")
    return f"singleValueExtendedProperties/Any(ep: ep/id eq '{MARKER}' and ep/value eq '{value}')"


def read(item: Mapping[str, Any]) -> dict[str, str]:
    """The item's extended properties, keyed by our (lower-cased) ids."""
    return {
        str(p.get("id", "")).lower(): str(p.get("value") or "")
        for p in item.get("singleValueExtendedProperties") or ()
    }


def value(props: Mapping[str, str], prop_id: str) -> str:
    return props.get(prop_id.lower(), "")


def body(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"id": k, "value": v} for k, v in values.items()]
