"""An iCalendar event's people: ATTENDEE ↔ `Attendee`, and the ORGANIZER's address.

What a caller may rely on: an ATTENDEE gives its mailto address, CN, PARTSTAT (an unknown
value reads as NEEDS-ACTION, as RFC 5545 asks), ROLE (OPT- and NON-PARTICIPANT are not
required) and the addresses of DELEGATED-TO and DELEGATED-FROM. At most `MAX_ATTENDEES`
are read; an update changes only the parameters of those whose mapped value changed, keeps
every other parameter and the attendees past the cap, and keeps the lines where they were.
"""

from __future__ import annotations

from crmsync.domain.records import MAX_ATTENDEES, Attendee, AttendeeStatus
from crmsync.groupware.dav import contentlines as cl

_PARTSTAT = {
    "ACCEPTED": AttendeeStatus.ACCEPTED,
    "DECLINED": AttendeeStatus.DECLINED,
    "TENTATIVE": AttendeeStatus.TENTATIVE,
    "NEEDS-ACTION": AttendeeStatus.NEEDS_ACTION,
    "DELEGATED": AttendeeStatus.DELEGATED,
}
_PARTSTAT_OUT = {v: k for k, v in _PARTSTAT.items()}
_DELEGATION = {"delegated_to": "DELEGATED-TO", "delegated_from": "DELEGATED-FROM"}


def mail_address(value: str) -> str:
    """The address of a cal-address value (``mailto:`` removed)."""
    value = cl.unescape_text(value.strip())
    return value[7:] if value.lower().startswith("mailto:") else value


def read_attendee(prop: cl.Property) -> Attendee:
    role = (prop.param("ROLE") or "").upper()
    return Attendee(
        email=mail_address(prop.value),
        name=prop.param("CN") or "",
        status=_PARTSTAT.get((prop.param("PARTSTAT") or "").upper(), AttendeeStatus.NEEDS_ACTION),
        required=role not in ("OPT-PARTICIPANT", "NON-PARTICIPANT"),
        delegated_to=tuple(mail_address(v) for v in prop.param_values("DELEGATED-TO")),
        delegated_from=tuple(mail_address(v) for v in prop.param_values("DELEGATED-FROM")),
    )


def read_attendees(vevent: cl.Component) -> tuple[Attendee, ...]:
    return tuple(read_attendee(p) for p in vevent.all("ATTENDEE")[:MAX_ATTENDEES])


def _set_params(prop: cl.Property, attendee: Attendee) -> None:
    """Give ``prop`` the mapped parameters of ``attendee`` where they differ."""
    current = read_attendee(prop)
    if current.name != attendee.name:
        if attendee.name:
            prop.set_param("CN", attendee.name)
        else:
            prop.remove_param("CN")
    if current.status != attendee.status:
        prop.set_param("PARTSTAT", _PARTSTAT_OUT[attendee.status])
    if current.required != attendee.required or prop.param("ROLE") is None:
        prop.set_param("ROLE", "REQ-PARTICIPANT" if attendee.required else "OPT-PARTICIPANT")
    for field, param in _DELEGATION.items():
        addresses = getattr(attendee, field)
        if getattr(current, field) == addresses:
            continue
        if addresses:
            prop.set_param(param, *("mailto:" + address for address in addresses))
        else:
            prop.remove_param(param)


def apply_attendees(
    vevent: cl.Component, old: tuple[Attendee, ...], new: tuple[Attendee, ...]
) -> None:
    """Change ``vevent``'s ATTENDEE lines from ``old`` (as read) to ``new``."""
    if old == new:
        return
    # Attendees past the cap were never carried: they stay, after the carried ones.
    carried = vevent.all("ATTENDEE")[:MAX_ATTENDEES]
    beyond = vevent.all("ATTENDEE")[MAX_ATTENDEES:]
    existing = {mail_address(p.value).lower(): p for p in carried}
    wanted: list[cl.Property] = []
    for attendee in new:
        prop = existing.pop(attendee.email.lower(), None)
        if prop is None:
            prop = cl.Property("ATTENDEE", "mailto:" + cl.escape_text(attendee.email))
        elif mail_address(prop.value) != attendee.email:
            prop.set_value("mailto:" + cl.escape_text(attendee.email))
        _set_params(prop, attendee)
        wanted.append(prop)
    # Keep the attendees' lines where they were, in the record's order.
    slots = [
        i
        for i, c in enumerate(vevent.children)
        if isinstance(c, cl.Property) and c.name == "ATTENDEE"
    ]
    remaining = [
        c for c in vevent.children if not (isinstance(c, cl.Property) and c.name == "ATTENDEE")
    ]
    at = slots[0] if slots else len([c for c in vevent.children if isinstance(c, cl.Property)])
    at = min(at, len(remaining))
    wanted_emails = {mail_address(p.value).lower() for p in wanted}
    kept = [p for p in beyond if mail_address(p.value).lower() not in wanted_emails]
    vevent.children = remaining[:at] + wanted + kept + remaining[at:]
