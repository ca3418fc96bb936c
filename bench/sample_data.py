"""Sample CRM data for the benchmarks: generated contacts and events, seeded into the
built-in CRM, rendered as crmsync would put them on a server, and a rep's edits to them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository root on sys.path before crmsync imports)
from bench_servers import Server

from crmsync.crm.builtin import BuiltinCrm, writes
from crmsync.crm.builtin.rows import OwnedKind
from crmsync.domain.records import (
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    ItemKind,
    Occurrence,
    Recurrence,
    ShowAs,
    User,
)
from crmsync.domain.settings import SyncConfig
from crmsync.groupware.dav.collection import item_name
from crmsync.groupware.dav.ical import render_new_ical
from crmsync.groupware.dav.vcard import render_new_vcard
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

UTC = dt.UTC


# ---------------------------------------------------------------------------- sample data

_FIRST = (
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "François",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kateřina",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pedro",
    "Qing",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Víctor",
    "Wen",
    "Xavier",
    "Yuki",
    "Zoë",
)
_LAST = (
    "Müller",
    "Smith",
    "O'Brien",
    "García",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Johansson",
    "Yamamoto",
    "van der Berg",
    "Okafor",
    "Ivanova",
    "Silva",
    "Cohen",
    "Andersen",
    "Schmidt",
    "Larsen",
    "Novak",
    "Papadopoulos",
)
_COMPANIES = (
    "Acme Corp",
    "Globex, Inc.",
    "Initech",
    "Umbrella GmbH",
    "Stark Industries",
    "Wayne Enterprises",
    "Müller & Söhne KG",
    "Soylent; Ltd",
    "Tyrell Corp.",
)
_TITLES = ("VP Sales", "Buyer", "CTO", "Office Manager", "Procurement Lead", "CEO", "")
_DEPARTMENTS = ("Sales", "Purchasing", "IT", "Finance", "", "R&D")
_CITIES = (
    ("Berlin", "BE", "10115", "Germany"),
    ("New York", "NY", "10001", "USA"),
    ("Tokyo", "", "100-0001", "Japan"),
    ("São Paulo", "SP", "01000-000", "Brazil"),
    ("London", "", "EC1A 1BB", "United Kingdom"),
)
_SUBJECTS = (
    "Quarterly review",
    "Demo: new pricing",
    "Call re: renewal",
    "Lunch",
    "Kick-off, phase 2",
    "Contract signing; final",
    "Site visit",
    "Pipeline sync",
)
_ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
)


def make_contact(rng: random.Random, n: int) -> Contact:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state, postal, country = rng.choice(_CITIES)
    return Contact(
        first_name=first,
        last_name=last,
        salutation=rng.choice(("Mr.", "Ms.", "Dr.", "")),
        title=rng.choice(_TITLES),
        department=rng.choice(_DEPARTMENTS),
        account_name=rng.choice(_COMPANIES),
        email=f"{first.lower()[:3]}.{n}@{rng.choice(('example.org', 'example.net'))}",
        phone=f"+49 30 {rng.randrange(1000000, 9999999)}",
        mobile_phone=f"+1 212 555 {rng.randrange(1000, 9999)}" if rng.random() < 0.7 else "",
        home_phone="",
        other_phone="",
        fax="+49 30 1234567" if rng.random() < 0.1 else "",
        mailing_address=Address(
            f"{rng.randrange(1, 300)} Main Street", city, state, postal, country
        ),
        other_address=Address(),
        birthdate=dt.date(1950 + rng.randrange(50), rng.randrange(1, 13), rng.randrange(1, 29))
        if rng.random() < 0.3
        else None,
        description="Met at the trade fair.\nPrefers email, not phone; German/English."
        if rng.random() < 0.3
        else "",
        is_person_account=rng.random() < 0.05,
    )


def make_event(rng: random.Random, n: int, owner_email: str) -> Event:
    # In the future, so the default date window (TODAY) keeps every event in scope.
    base = dt.datetime(2027, 1, 4, tzinfo=UTC) + dt.timedelta(hours=rng.randrange(0, 24 * 300))
    minutes = rng.choice((30, 45, 60, 90))
    roll = rng.random()
    if roll < 0.05:  # all day
        day = base.date()
        timing = EventTiming(day, day + dt.timedelta(days=1))
    elif roll < 0.35:  # written in another zone than UTC
        timing = EventTiming(base, base + dt.timedelta(minutes=minutes), rng.choice(_ZONES))
    else:
        timing = EventTiming(base, base + dt.timedelta(minutes=minutes))
    recurrence = None
    if n % 40 == 7 and not timing.all_day:  # a few series, some with an exception
        second = base + dt.timedelta(weeks=2)
        third = base + dt.timedelta(weeks=3)
        moved = third + dt.timedelta(hours=2)
        recurrence = Recurrence(
            "FREQ=WEEKLY;COUNT=10",
            exdates=(second,),
            overrides=(
                Occurrence(
                    third,
                    EventTiming(moved, moved + dt.timedelta(minutes=minutes), timing.tzid),
                    subject="Moved: weekly sync",
                ),
            ),
        )
    attendees = tuple(
        Attendee(f"guest{n}-{i}@example.org", f"Guest {i}", rng.choice(tuple(AttendeeStatus)))
        for i in range(rng.choice((0, 0, 1, 2, 3)))
    )
    return Event(
        subject=f"{rng.choice(_SUBJECTS)} #{n}",
        timing=timing,
        location=rng.choice(("", "Room 4.12", "Zoom", "Hauptstraße 5, Berlin")),
        description="Agenda:\n- numbers\n- next steps, owners" if rng.random() < 0.4 else "",
        is_private=False,
        show_as=rng.choice((ShowAs.BUSY, ShowAs.BUSY, ShowAs.FREE, ShowAs.TENTATIVE)),
        categories=("CRM",),
        attendees=attendees,
        organizer=owner_email if attendees else "",
        recurrence=recurrence,
    )


@dataclass
class Seeded:
    """The reps and the ids of the records seeded for each (same order as generated)."""

    reps: list[User]
    contacts: dict[str, list[tuple[str, Contact]]] = field(default_factory=dict)
    events: dict[str, list[tuple[str, Event]]] = field(default_factory=dict)

    @property
    def total_contacts(self) -> int:
        return sum(len(v) for v in self.contacts.values())

    @property
    def total_events(self) -> int:
        return sum(len(v) for v in self.events.values())


def seed_crm(
    crm: BuiltinCrm, emails: Sequence[str], items: int, seed: int, *, batch: int = 1000
) -> Seeded:
    """Create the reps and ``items`` contacts and ``items`` events for each, in batches of
    ``batch`` records per transaction (the CRM's own insert path, one transaction per batch
    instead of per record, for speed)."""
    rng = random.Random(seed)
    seeded = Seeded([crm.create_user(email, f"Rep {i}") for i, email in enumerate(emails)])
    for rep in seeded.reps:
        contacts = [make_contact(rng, n) for n in range(items)]
        events = [make_event(rng, n, rep.email) for n in range(items)]
        seeded.contacts[rep.id] = _insert(crm, OwnedKind.CONTACT, rep.id, contacts, batch)
        seeded.events[rep.id] = _insert(crm, OwnedKind.EVENT, rep.id, events, batch)
    return seeded


def _insert(
    crm: BuiltinCrm, kind: OwnedKind, owner: str, records: list[Any], batch: int
) -> list[tuple[str, Any]]:
    done: list[tuple[str, Any]] = []
    for start in range(0, len(records), batch):
        with crm.writing() as conn:
            for record in records[start : start + batch]:
                stored = writes.insert_record(conn, kind, owner, record)
                done.append((stored.id, record))
    return done


def configure(service: SyncService, server: Server, reps: Sequence[User]) -> None:
    service.configure_server(server.settings(), server.password)
    service.store.save_config(SyncConfig("bench", user_ids=tuple(r.id for r in reps)))


def open_service(home: Path) -> SyncService:
    home.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(
        home, f"sqlite:///{home / 'state.sqlite'}", f"sqlite:///{home / 'crm.sqlite'}"
    )
    return SyncService(deployment)


def render_contact(crm_id: str, contact: Contact) -> tuple[str, str]:
    """(resource name, text) exactly as crmsync would create it."""
    name = item_name(crm_id)
    return name + ".vcf", render_new_vcard(contact, crm_id, name)


def render_event(crm_id: str, event: Event) -> tuple[str, str]:
    name = item_name(crm_id)
    return name + ".ics", render_new_ical(event, crm_id, name)


# ---------------------------------------------------------------------------- a rep's edits


def retitled(text: str, kind: ItemKind, title: str) -> str:
    """A server item's text with its job title (contact) or subject (event) set to
    ``title``: a rep's edit on the mail server."""
    lines = text.split("\r\n")
    if kind is ItemKind.CONTACT:
        lines = [line for line in lines if not line.startswith("TITLE")]
        lines.insert(lines.index("END:VCARD"), f"TITLE:{title}")
    else:
        at = next(i for i, line in enumerate(lines) if line.startswith("SUMMARY"))
        lines[at] = f"SUMMARY:{title}"
    return "\r\n".join(lines)


def retitle_in_crm(crm: BuiltinCrm, kind: ItemKind, crm_id: str, title: str) -> Contact | Event:
    """Set the CRM record's job title (contact) or subject (event) through the built-in
    CRM's own update, as a rep's edit in the CRM; the record as updated."""
    record: Contact | Event
    if kind is ItemKind.CONTACT:
        record = replace(crm.get_contact(crm_id).record, title=title)
        crm.update_record(OwnedKind.CONTACT, crm_id, record)
    else:
        record = replace(crm.get_event(crm_id).record, subject=title)
        crm.update_record(OwnedKind.EVENT, crm_id, record)
    return record
