"""Real-world values through the Exchange mappings, without a server: what Outlook writes
(CR LF line breaks) and what other clients write that EWS cannot say (a delegated
attendee)."""

from __future__ import annotations

import datetime as dt

from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib import Contact as EwsContact
from exchangelib.indexed_properties import PhysicalAddress
from exchangelib.recurrence import DailyRegeneration
from exchangelib.recurrence import Recurrence as ExchangeRecurrence

from crmsync.domain.contact_fields import IDENTITY_MAP
from crmsync.domain.records import Attendee, AttendeeStatus, Contact, EventTiming
from crmsync.groupware.ews.config import EwsConfig
from crmsync.groupware.ews.connection import EwsConnection
from crmsync.groupware.ews.contacts import apply_contact, to_contact
from crmsync.groupware.ews.events import RESPONSES, _attendees, ews_zone, set_timing, timing_of
from crmsync.groupware.ews.folder import EwsFolder
from crmsync.groupware.ews.properties import register
from tests.groupware.ews.harness import PASSWORD, REP, SERVICE

register()  # crmsync's extended properties, as the backend does before its first request


def test_outlook_street_lines_reach_the_crm_with_lf_line_breaks() -> None:
    item = EwsContact(
        surname="Gruen",
        physical_addresses=[
            PhysicalAddress(label="Business", street="Hafenstraße 12\r\nGebäude B", city="Hamburg")
        ],
    )
    contact = to_contact(item, IDENTITY_MAP)
    assert contact.mailing_address.street == "Hafenstraße 12\nGebäude B"


def test_outlook_company_only_contact_has_the_company_as_its_last_name_never_its_surname() -> None:
    # Outlook files a company's contact under the company, with no given name or surname.
    item = EwsContact(company_name="Umbrella Corp", file_as="Umbrella Corp")
    contact = to_contact(item, IDENTITY_MAP)
    assert (contact.first_name, contact.last_name) == ("", "Umbrella Corp")
    assert contact.is_company
    renamed = Contact(last_name="Umbrella Inc", account_name="Umbrella Inc")
    changed = apply_contact(item, contact, renamed, IDENTITY_MAP)
    assert "company_name" in changed and "surname" not in changed
    assert (item.surname, item.company_name) == (None, "Umbrella Inc")
    fresh = EwsContact()
    apply_contact(fresh, None, renamed, IDENTITY_MAP)
    assert (fresh.surname, fresh.company_name) == (None, "Umbrella Inc")
    # A person's name given in the CRM is written as one.
    person = Contact(first_name="Tina", last_name="Umbrella Inc", account_name="Umbrella Inc")
    apply_contact(item, renamed, person, IDENTITY_MAP)
    assert (item.given_name, item.surname) == ("Tina", "Umbrella Inc")


def test_a_delegated_attendee_goes_to_exchange_as_unknown_and_reads_as_needs_action() -> None:
    """EWS's ResponseType has no delegation; "Unknown" is the honest word for it."""
    olga = Attendee("olga@client.example", "Olga", AttendeeStatus.DELEGATED)
    (written,) = _attendees((olga,), required=True) or []
    assert written.response_type == "Unknown"
    assert set(RESPONSES) == set(AttendeeStatus)


def test_an_end_in_another_zone_goes_to_exchange_as_its_end_time_zone() -> None:
    start = dt.datetime(2027, 5, 5, 8, 30, tzinfo=dt.UTC)
    timing = EventTiming(
        start, start + dt.timedelta(hours=8.5), "Europe/Berlin", "America/New_York"
    )
    item = CalendarItem()
    set_timing(item, timing, ews_zone(None))
    assert (item._start_timezone.key, item._end_timezone.key) == (
        "Europe/Berlin",
        "America/New_York",
    )
    assert timing_of(item) == timing


def test_a_pattern_without_an_rrule_is_noted_for_the_audit_trail_not_only_logged() -> None:
    # Regeneration patterns ("every 2 days after the last one ends") have no RRULE: the
    # first occurrence syncs, and the item's audit line says why.
    start = EWSDateTime(2027, 3, 1, 9, 0, tzinfo=EWSTimeZone("UTC"))
    item = CalendarItem(
        subject="Plant watering",
        start=start,
        end=start + dt.timedelta(minutes=30),
        recurrence=ExchangeRecurrence(pattern=DailyRegeneration(interval=2), start=start.date()),
    )
    item.id, item.changekey = "AAMk1", "CK1"
    # Reading an item with no modified occurrences sends no request: no server is needed.
    nowhere = EwsConfig(SERVICE, PASSWORD, "http://127.0.0.1:9/EWS/Exchange.asmx")
    calendar = EwsFolder(EwsConnection(nowhere), None, None, CalendarItem, REP, IDENTITY_MAP)
    seen = calendar._seen(item)
    assert seen.record is not None and seen.problem is None
    assert "DailyRegeneration has no RRULE equivalent" in seen.note
