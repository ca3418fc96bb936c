"""The MAPI properties crmsync keeps on Exchange items beyond exchangelib's standard fields.

* `CrmsyncMarker`: the other side's id on items crmsync created (DESIGN rule 5), a named
  string property in crmsync's own property set, so a retried create finds the first one.
* `DisplayNamePrefix`: PidTagDisplayNamePrefix (0x3A45), the contact's salutation ("Ms."),
  which EWS exposes only inside the read-only CompleteName.
* `PersonAccountFlag`: whether the CRM record is a person account (crmsync's property set).

`register()` attaches them to exchangelib's `Contact` and `CalendarItem` once per process.
"""

from __future__ import annotations

import threading

from exchangelib import CalendarItem, Contact, ExtendedProperty

# Fixed for all time: changing it orphans every marker already written.
PROPERTY_SET = "c1a7e5d2-5b1f-4c55-9a36-0c5b5e1d7a11"
MARKER_FIELD = "crmsync_marker"
SALUTATION_FIELD = "crmsync_salutation"
PERSON_ACCOUNT_FIELD = "crmsync_person_account"


class CrmsyncMarker(ExtendedProperty):
    property_set_id = PROPERTY_SET
    property_name = "CrmsyncMarker"
    property_type = "String"


class DisplayNamePrefix(ExtendedProperty):
    property_tag = 0x3A45
    property_type = "String"


class PersonAccountFlag(ExtendedProperty):
    property_set_id = PROPERTY_SET
    property_name = "CrmsyncPersonAccount"
    property_type = "Boolean"


_lock = threading.Lock()
_done = False


def register() -> None:
    """Make the properties known to exchangelib (idempotent, thread-safe)."""
    global _done
    with _lock:
        if _done:
            return
        for model, fields in (
            (
                Contact,
                (
                    (MARKER_FIELD, CrmsyncMarker),
                    (SALUTATION_FIELD, DisplayNamePrefix),
                    (PERSON_ACCOUNT_FIELD, PersonAccountFlag),
                ),
            ),
            (CalendarItem, ((MARKER_FIELD, CrmsyncMarker),)),
        ):
            for name, cls in fields:
                if name not in {f.name for f in model.FIELDS}:
                    model.register(name, cls)
        _done = True
