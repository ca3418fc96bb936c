"""Sample records the CRM tests share, each named after what it exercises."""

from __future__ import annotations

import datetime as dt

from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    Lead,
    Occurrence,
    Recurrence,
    ShowAs,
)

UTC = dt.UTC

FULL_CONTACT = Contact(
    first_name="Zoë",
    last_name="Ångström",
    salutation="Dr.",
    title="CTO",
    department="R&D",
    account_name="Acme, Inc.",
    email="zoe@acme.example",
    phone="+33 1 23 45 67 89",
    mobile_phone="+33 6 00 00 00 00",
    home_phone="+33 1 00 00 00 01",
    other_phone="+1 555 0100",
    fax="+33 1 00 00 00 02",
    mailing_address=Address("1 rue de la Paix", "Paris", "IDF", "75002", "France"),
    other_address=Address(street="Line 1\nLine 2", country="DE"),
    birthdate=dt.date(1980, 2, 29),
    description="Met at the fair.\nLikes tea.",
)

PERSON_ACCOUNT = Contact(first_name="Pat", last_name="Solo", is_person_account=True)

LEAD = Lead(
    first_name="Lee",
    last_name="Ad",
    company="Prospect",
    title="Buyer",
    email="lee@p.example",
    phone="1",
    status="Working",
)

TIMED_EVENT = Event(
    subject="Quarterly review",
    timing=EventTiming(
        dt.datetime(2024, 3, 31, 7, 30, tzinfo=UTC),  # 09:30 in Paris, summer time
        dt.datetime(2024, 3, 31, 8, 45, 0, 500, tzinfo=UTC),
        "Europe/Paris",
    ),
    location="Room 4",
    description="Agenda attached",
    is_private=True,
    show_as=ShowAs.TENTATIVE,
    categories=("CRM", "Review"),
    attendees=(
        Attendee("bo@example.com", "Bo", AttendeeStatus.ACCEPTED, True),
        Attendee("cy@example.com", "", AttendeeStatus.DECLINED, False),
    ),
    organizer="ann@example.com",
)

ALL_DAY_EVENT = Event(
    subject="Trade fair",
    timing=EventTiming(dt.date(2024, 6, 10), dt.date(2024, 6, 13)),
    show_as=ShowAs.OUT_OF_OFFICE,
)

WEEKLY_SERIES = Event(
    subject="Stand-up",
    timing=EventTiming(
        dt.datetime(2024, 1, 8, 14, 0, tzinfo=UTC),
        dt.datetime(2024, 1, 8, 14, 15, tzinfo=UTC),
        "America/New_York",
    ),
    recurrence=Recurrence(
        rule="FREQ=WEEKLY;BYDAY=MO;COUNT=10",
        exdates=(dt.datetime(2024, 1, 15, 14, 0, tzinfo=UTC),),
        overrides=(
            Occurrence(
                recurrence_id=dt.datetime(2024, 1, 22, 14, 0, tzinfo=UTC),
                timing=EventTiming(
                    dt.datetime(2024, 1, 22, 16, 0, tzinfo=UTC),
                    dt.datetime(2024, 1, 22, 16, 30, tzinfo=UTC),
                    "America/New_York",
                ),
                subject="Stand-up (moved)",
                location="Call",
                description="Shifted for the offsite",
            ),
        ),
    ),
)

ALL_DAY_SERIES = Event(
    subject="Holiday",
    timing=EventTiming(dt.date(2024, 12, 24), dt.date(2024, 12, 25)),
    recurrence=Recurrence(
        rule="FREQ=YEARLY",
        exdates=(dt.date(2025, 12, 24),),
        overrides=(
            Occurrence(
                dt.date(2026, 12, 24),
                EventTiming(dt.date(2026, 12, 23), dt.date(2026, 12, 24)),
                subject="Holiday (early)",
            ),
        ),
    ),
)

EVENTS = {
    "timed": TIMED_EVENT,
    "all_day": ALL_DAY_EVENT,
    "weekly_series": WEEKLY_SERIES,
    "all_day_series": ALL_DAY_SERIES,
}
