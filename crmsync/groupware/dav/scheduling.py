"""Keeping a scheduling server (RFC 6638) from delivering crmsync's meetings.

SabreDAV (Nextcloud, Baïkal), DAViCal and Cyrus deliver a meeting written with ORGANIZER
and ATTENDEE to the attendees' calendars, mail external attendees, and cancel it for them
when it is deleted. crmsync mirrors CRM records; it must not invite anyone on the rep's
behalf. ``SCHEDULE-AGENT=CLIENT`` on the organizer and each attendee tells the server
that the client does the scheduling (RFC 6638 §7.1), so the server sends nothing.
"""

from __future__ import annotations

from crmsync.groupware.dav import contentlines as cl

_PEOPLE = ("ORGANIZER", "ATTENDEE")


def without_server_scheduling(text: str) -> str:
    """``text`` (an iCalendar object) with ``SCHEDULE-AGENT=CLIENT`` on the ORGANIZER and
    ATTENDEE of every component that has attendees; the same text when nothing needed it
    or it cannot be parsed (the write then fails or succeeds on its own)."""
    try:
        calendar = cl.parse(text)
    except cl.ContentLineError:
        return text
    changed = False
    for component in calendar.walk():
        if not component.all("ATTENDEE"):
            continue
        for name in _PEOPLE:
            for prop in component.all(name):
                if (prop.param("SCHEDULE-AGENT") or "").upper() != "CLIENT":
                    prop.set_param("SCHEDULE-AGENT", "CLIENT")
                    changed = True
    return calendar.serialize() if changed else text
