"""What a fixture *means*, from `fixtures/expected.json` and from a synced record, compared
field by field. Shared by the fidelity tests and `bench/fidelity.py`.

The expected side is written by hand (see `fixtures/README.md`); the projection below
states, independently of the format code, which of that meaning the CRM's records can
hold: one email (the preferred one), one phone per kind, two addresses, a birthday with a
year, up to 50 attendees. What the model cannot hold is not compared here; the tests check
instead that it stays untouched on the mail server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crmsync.crm.builtin import OwnedKind
from crmsync.domain.records import (
    MAX_ATTENDEES,
    Address,
    Contact,
    Event,
    EventTiming,
    ItemKind,
)
from crmsync.domain.settings import EventSettings, SyncConfig
from crmsync.groupware.dav import DavCollection, connect, open_mailbox
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import item_text
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.vcard import VCardFormat
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.servers import DavServerInfo

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())

EVENT_FIELDS = (
    "summary",
    "timing",
    "recurrence",
    "private",
    "show_as",
    "categories",
    "attendees",
    "organizer",
    "location",
    "description",
)
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "account_name",
    "department",
    "title",
    "email",
    "phones",
    "mailing_address",
    "other_address",
    "birthdate",
    "description",
)


def fixture_names(folder: str) -> list[str]:
    """The valid fixtures of ``events`` or ``contacts`` that sync (or every file of
    ``malformed``)."""
    return sorted(
        key for key in EXPECTED if key.startswith(folder + "/") and "skipped" not in EXPECTED[key]
    )


def skipped_fixture_names() -> list[str]:
    """The valid items that are no live contact or event (a group card, a cancelled
    event): left out by a rule, which the audit trail names."""
    return sorted(key for key, value in EXPECTED.items() if "skipped" in value)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_text(name: str) -> str:
    """The fixture as the DAV backend reads an item; raises `MalformedItem` for bytes
    that are not UTF-8, as it does."""
    return item_text(fixture_bytes(name))


# ---- events ---------------------------------------------------------------------------


def _when(text: str, zone: str | None, rep_zone: str) -> dt.datetime | dt.date:
    if "T" not in text:
        return dt.date.fromisoformat(text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:  # floating: the rep's wall clock
        value = value.replace(tzinfo=ZoneInfo(zone or rep_zone))
    return value.astimezone(dt.UTC)


def expected_event(name: str, rep_zone: str) -> dict[str, Any]:
    """The meaning of an event fixture, in the terms `event_meaning` uses."""
    e = EXPECTED[name]

    def when(text: str) -> dt.datetime | dt.date:
        return _when(text, e["zone"], rep_zone)

    if e["all_day"]:
        timing: tuple[Any, ...] = ("all-day", when(e["start"]), when(e["end"]))
    else:
        floating = e["zone"] is None and "+" not in e["start"][10:] and "-" not in e["start"][10:]
        zone = rep_zone if floating else e["zone"]
        end_zone = e.get("end_zone") or zone
        timing = ("timed", when(e["start"]), when(e["end"]), zone or "UTC", end_zone or "UTC")
    recurrence = None
    if e["rrule"] or e["rdates"] or e["overrides"]:
        removed = {when(x) for x in e["exdates"]}
        removed |= {when(o["recurrence_id"]) for o in e["overrides"] if o["cancelled"]}
        recurrence = (
            e["rrule"] or None,
            frozenset(removed),
            frozenset(when(x) for x in e["rdates"]),
            frozenset((when(a), when(b)) for a, b in e.get("rdate_periods", ())),
            frozenset(
                (when(o["recurrence_id"]), when(o["start"]), when(o["end"]), o["summary"])
                for o in e["overrides"]
                if not o["cancelled"]
            ),
        )
    extra: dict[str, Any] = {}
    if "partstats" in e:
        extra["partstats"] = [
            (p["email"], p["partstat"], tuple(p["delegated_to"]), tuple(p["delegated_from"]))
            for p in e["partstats"]
        ]
    return {
        **extra,
        "summary": e["summary"],
        "timing": timing,
        "recurrence": recurrence,
        "private": e["private"],
        "show_as": e["show_as"],
        "categories": tuple(e["categories"]),
        "attendees": min(e["attendees"], MAX_ATTENDEES),
        "organizer": e["organizer"].casefold(),
        "location": e["location"],
        "description": e["description"],
    }


def _timing(timing: EventTiming) -> tuple[Any, ...]:
    if timing.all_day:
        return ("all-day", timing.start, timing.end)
    return ("timed", timing.start, timing.end, timing.tzid or "UTC", timing.end_zone or "UTC")


def event_meaning(event: Event) -> dict[str, Any]:
    rec = event.recurrence
    recurrence = None
    if rec is not None:
        recurrence = (
            rec.rule or None,
            frozenset(rec.exdates),
            frozenset(rec.rdates),
            frozenset(rec.rdate_periods),
            frozenset(
                (o.recurrence_id, o.timing.start, o.timing.end, o.subject) for o in rec.overrides
            ),
        )
    return {
        "partstats": [
            (
                a.email,
                a.status.value.upper().replace("_", "-"),
                a.delegated_to,
                a.delegated_from,
            )
            for a in event.attendees
        ],
        "summary": event.subject,
        "timing": _timing(event.timing),
        "recurrence": recurrence,
        "private": event.is_private,
        "show_as": event.show_as.value,
        "categories": tuple(event.categories),
        "attendees": len(event.attendees),
        "organizer": event.organizer.casefold(),
        "location": event.location,
        "description": event.description,
    }


# ---- contacts -------------------------------------------------------------------------


def _phone_kind(types: Iterable[str]) -> str | None:
    """The documented TEL mapping: fax, cell, pager (not carried), home, other, else work."""
    kinds = set(types)
    if "fax" in kinds:
        return "fax"
    if kinds & {"cell", "mobile"}:
        return "mobile_phone"
    if "pager" in kinds:
        return None
    if "home" in kinds:
        return "home_phone"
    if "other" in kinds:
        return "other_phone"
    return "phone"


def _first_preferred(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    for item in items:
        if "pref" in item["types"]:
            return item
    return items[0] if items else None


def expected_contact(name: str) -> dict[str, Any]:
    e = EXPECTED[name]
    email = _first_preferred(e["emails"])
    phones: dict[str, list[dict[str, Any]]] = {}
    for phone in e["phones"]:
        kind = _phone_kind(phone["types"])
        if kind is not None:
            phones.setdefault(kind, []).append(phone)
    addresses: dict[str, list[dict[str, Any]]] = {}
    for address in e["addresses"]:
        other = {"home", "other"} & set(address["types"])
        addresses.setdefault("other_address" if other else "mailing_address", []).append(address)

    def address_of(kind: str) -> Address:
        chosen = _first_preferred(addresses.get(kind, []))
        if chosen is None:
            return Address()
        # The CRM's street holds the street lines: the street, then the extended address
        # (suite, building, c/o), then the post office box.
        lines = (chosen["street"], chosen.get("extended", ""), chosen.get("po_box", ""))
        return Address(
            "\n".join(line for line in lines if line),
            chosen["city"],
            chosen["region"],
            chosen["postal_code"],
            chosen["country"],
        )

    birthday = e["birthday"]
    if e.get("is_company"):
        # A company's card: no person's name; the CRM's last name holds the company.
        names: dict[str, str] = {
            "first_name": "",
            "last_name": e["organization"] or e["formatted_name"],
            "display_name": e["formatted_name"],
        }
    elif not (e["first_name"] or e["last_name"]):
        # FN without N: the name is all there is; how it splits is the reader's choice.
        names = {"display_name": e["formatted_name"]}
    else:
        names = {"first_name": e["first_name"], "last_name": e["last_name"]}
    return {
        **names,
        "account_name": e["organization"],
        "department": e["department"],
        "title": e["title"],
        "email": email["value"] if email else "",
        "phones": {
            kind: chosen["value"]
            for kind, found in sorted(phones.items())
            if (chosen := _first_preferred(found)) is not None
        },
        "mailing_address": address_of("mailing_address"),
        "other_address": address_of("other_address"),
        # A birthday without a year (--MM-DD) has no place in the CRM's date field.
        "birthdate": None
        if birthday is None or birthday.startswith("--")
        else dt.date.fromisoformat(birthday),
        "description": e["note"],
    }


def contact_meaning(contact: Contact) -> dict[str, Any]:
    phones = ("phone", "mobile_phone", "home_phone", "other_phone", "fax")
    return {
        "display_name": contact.display_name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "account_name": contact.account_name,
        "department": contact.department,
        "title": contact.title,
        "email": contact.email,
        "phones": {k: getattr(contact, k) for k in sorted(phones) if getattr(contact, k)},
        "mailing_address": contact.mailing_address,
        "other_address": contact.other_address,
        "birthdate": contact.birthdate,
        "description": contact.description,
    }


def expected_meaning(name: str, rep_zone: str) -> dict[str, Any]:
    return expected_event(name, rep_zone) if name.startswith("events/") else expected_contact(name)


def meaning(record: Event | Contact) -> dict[str, Any]:
    return event_meaning(record) if isinstance(record, Event) else contact_meaning(record)


def _name_order(formatted: str, first: str, last: str) -> str | None:
    """Whether a display name puts the family name first (CJK names do)."""
    if not (first and last) or first not in formatted or last not in formatted:
        return None
    return "family first" if formatted.index(last) < formatted.index(first) else "given first"


def copy_differences(name: str, written: str) -> dict[str, tuple[Any, Any]]:
    """What a new card crmsync wrote from the CRM record lost of what that record holds
    (``name`` the contact fixture it came from): the order of the person's names in FN,
    and the mark of the preferred email (the CRM's email is the card's preferred one)."""
    e = EXPECTED[name]
    card = cl.parse(written)
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    order = _name_order(e["formatted_name"], e["first_name"], e["last_name"])
    if order is not None:
        expected["name order"] = order
        fn = cl.unescape_text(card.value("FN") or "")
        actual["name order"] = _name_order(fn, e["first_name"], e["last_name"])
    if e["emails"]:
        expected["email marked preferred"] = True
        email = card.first("EMAIL")
        types = "" if email is None else ",".join(email.param_values("TYPE")).lower()
        actual["email marked preferred"] = "pref" in types or email.param("PREF") is not None
    return differences(expected, actual)


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose meaning differs: name → (expected, actual)."""
    return {k: (v, actual.get(k)) for k, v in expected.items() if actual.get(k) != v}


# ---- the corpus through a real server and the CRM ----------------------------------------

PATHS = ("mail → CRM", "CRM → mail", "mail → CRM → mail → CRM")
# The sync runs "as of" this day so no fixture (2025-2028) falls outside the TODAY window.
AS_OF = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
REP_ZONE = "Europe/Berlin"


@dataclass
class FixtureResult:
    """What became of one fixture: per path, the fields whose meaning changed (or why it
    never arrived); whether the server stored it as sent; whether a CRM-side edit left
    every other line of the server item as it was."""

    name: str
    paths: dict[str, dict[str, tuple[Any, Any]] | str] = field(default_factory=dict)
    server_note: str = ""
    unmapped_kept: bool | None = None
    # For an item that is no live contact or event: the audit trail's rule for its skip.
    left_out_rule: str = ""

    @property
    def faithful(self) -> bool:
        return all(v == {} for v in self.paths.values()) and self.unmapped_kept is not False


def _edited(record: Event | Contact) -> Event | Contact:
    if isinstance(record, Event):
        return dataclasses.replace(record, subject=record.subject + " (edited in the CRM)")
    return dataclasses.replace(record, title="Edited in the CRM")


def _other_lines(text: str, kind: ItemKind) -> list[str]:
    """The item's content lines (unfolded) except the line a CRM edit changes."""
    master, edited = ("VEVENT", "SUMMARY") if kind is ItemKind.EVENT else ("VCARD", "TITLE")
    lines = []
    tree = cl.parse(text)
    # A lone occurrence of someone else's series (no master) is itself the event.
    lone = not any(c.first("RECURRENCE-ID") is None for c in tree.walk() if c.name == "VEVENT")
    for component in tree.walk():
        is_master = component.name == master and (lone or component.first("RECURRENCE-ID") is None)
        for prop in component.properties:
            if is_master and prop.name == edited:
                continue
            lines.append(component.name + "/" + "".join(prop.render()))
    return lines


class _Rep:
    def __init__(self, service: SyncService, server: DavServerInfo, email: str) -> None:
        self.user = service.crm.create_user(email, email, time_zone=REP_ZONE)
        self.connection = connect(server.settings(), server.password)
        self.mailbox = open_mailbox(self.connection, server.settings(), email)

    def collection(self, kind: ItemKind) -> DavCollection:
        return self.mailbox.events if kind is ItemKind.EVENT else self.mailbox.contacts

    def put(self, kind: ItemKind, slug: str, text: str) -> httpx.Response:
        collection = self.collection(kind)
        content_type = "text/calendar" if kind is ItemKind.EVENT else "text/vcard"
        return self.connection.request(
            "PUT",
            collection.path + slug + collection.format.extension,
            body=text,
            headers={"Content-Type": content_type + "; charset=utf-8"},
        )

    def get(self, href: str) -> str:
        response = self.connection.request("GET", href)
        response.raise_for_status()
        return response.content.decode("utf-8")


def run_corpus(server: DavServerInfo, home: Path, names: list[str]) -> list[FixtureResult]:
    """Every named fixture through each of `PATHS` (three reps of one org on ``server``,
    a Radicale whose principal path is ``/{email}/``), then a CRM-side edit."""
    results = {name: FixtureResult(name) for name in names}
    service = SyncService(Deployment.from_env(home), clock=lambda: AS_OF)
    try:
        service.configure_server(server.settings(), server.password)
        reps = [_Rep(service, server, email) for email in _REP_EMAILS]
        config = SyncConfig(
            "Fidelity",
            user_ids=tuple(rep.user.id for rep in reps),
            events=EventSettings(sync_private=True),
        )
        service.save_config(config)
        first, second, third = reps
        by_kind = {
            kind: [n for n in names if (n.endswith(".ics")) == (kind is ItemKind.EVENT)]
            for kind in ItemKind
        }
        stored: dict[str, str] = {}
        for kind, kind_names in by_kind.items():
            for name in kind_names:
                text = fixture_text(name)
                response = first.put(kind, _slug(name), text)
                notes = []
                if response.status_code == 400 and "\nUID" not in text.replace("\r", ""):
                    # Radicale refuses a vCard without UID (optional in vCard 3.0).
                    text = text.replace("\r\nVERSION:", f"\r\nUID:{_slug(name)}\r\nVERSION:", 1)
                    response = first.put(kind, _slug(name), text)
                    notes.append("refuses it without UID (sent with one)")
                if response.status_code not in (201, 204):
                    results[name].server_note = f"refused ({response.status_code})"
                    for path in PATHS:
                        results[name].paths[path] = "never stored"
                    continue
                stored[name] = first.get(_href(first, kind, name))
                notes += _alterations(text, stored[name])
                results[name].server_note = "; ".join(notes)
        service.sync_rep(first.user)
        crm_ids = _crm_ids(service, first, by_kind, stored)
        for name in stored:
            if "skipped" in EXPECTED[name]:
                _check_left_out(service, first, results[name], name in crm_ids)
        crm_ids = {n: i for n, i in crm_ids.items() if "skipped" not in EXPECTED[n]}
        _check_crm(service, results, crm_ids, PATHS[0])

        copies = {}
        for name, crm_id in crm_ids.items():
            kind = _kind(name)
            record = service.crm.get_record(_owned(kind), crm_id).record
            copies[name] = service.crm.add_record(_owned(kind), second.user.id, record).id
        service.sync_rep(second.user)
        second_texts = {}
        for kind in ItemKind:
            hrefs = {
                link.crm_id: link.mail_id for link in service.store.links(second.user.id, kind)
            }
            for name, crm_id in copies.items():
                if _kind(name) is kind and crm_id in hrefs:
                    second_texts[name] = second.get(hrefs[crm_id])
        for name in copies:
            if name not in second_texts:
                results[name].paths[PATHS[1]] = "not written to the mail server"
                continue
            item_format = (
                ICalendarFormat(REP_ZONE) if _kind(name) is ItemKind.EVENT else VCardFormat()
            )
            record = item_format.parse(second_texts[name]).record
            results[name].paths[PATHS[1]] = differences(
                expected_meaning(name, REP_ZONE), meaning(record)
            )
            if _kind(name) is ItemKind.CONTACT:
                results[name].paths[PATHS[1]].update(copy_differences(name, second_texts[name]))

        for name, text in second_texts.items():
            third.put(_kind(name), _slug(name), text)
        service.sync_rep(third.user)
        third_ids = _crm_ids(service, third, by_kind, second_texts)
        _check_crm(service, results, third_ids, PATHS[2])
        for name in names:
            for path in PATHS:
                results[name].paths.setdefault(path, "did not reach the CRM")

        for name, crm_id in crm_ids.items():
            kind = _kind(name)
            current = service.crm.get_record(_owned(kind), crm_id)
            service.crm.update_record(_owned(kind), crm_id, _edited(current.record))
        service.sync_rep(first.user)
        for name in crm_ids:
            kind = _kind(name)
            after = first.get(_href(first, kind, name))
            results[name].unmapped_kept = _other_lines(after, kind) == _other_lines(
                stored[name], kind
            )
        for rep in reps:
            rep.connection.close()
    finally:
        service.close()
    return [results[name] for name in names]


_REP_EMAILS = ("first@example.com", "second@example.com", "third@example.com")


def _slug(name: str) -> str:
    return Path(name).stem


def _kind(name: str) -> ItemKind:
    return ItemKind.EVENT if name.endswith(".ics") else ItemKind.CONTACT


def _owned(kind: ItemKind) -> OwnedKind:
    return OwnedKind.EVENT if kind is ItemKind.EVENT else OwnedKind.CONTACT


def _href(rep: _Rep, kind: ItemKind, name: str) -> str:
    collection = rep.collection(kind)
    return collection.path + _slug(name) + collection.format.extension


def _alterations(sent: str, stored: str) -> list[str]:
    """How the server changed an item it stored, in a few words (empty: not at all)."""
    sent_lines, stored_lines = _all_lines(sent), _all_lines(stored)
    if sent_lines == stored_lines:
        return []
    if sorted(sent_lines) == sorted(stored_lines):
        return ["reorders lines"]
    changed = set(sent_lines) ^ set(stored_lines)
    names = sorted({line.split("/", 1)[1].split(":", 1)[0].split(";", 1)[0] for line in changed})
    return [f"rewrites {', '.join(names)}"]


def _all_lines(text: str) -> list[str]:
    return [
        component.name + "/" + "".join(prop.render())
        for component in cl.parse(text).walk()
        for prop in component.properties
    ]


def _crm_ids(
    service: SyncService, rep: _Rep, by_kind: dict[ItemKind, list[str]], sent: dict[str, str]
) -> dict[str, str]:
    """Fixture name → the CRM id the rep's sync linked its item to."""
    found = {}
    for kind, kind_names in by_kind.items():
        collection = rep.collection(kind)
        crm_by_href = {link.mail_id: link.crm_id for link in service.store.links(rep.user.id, kind)}
        for name in kind_names:
            href = collection.path + _slug(name) + collection.format.extension
            if name in sent and href in crm_by_href:
                found[name] = crm_by_href[href]
    return found


def _check_left_out(
    service: SyncService, rep: _Rep, result: FixtureResult, reached_crm: bool
) -> None:
    """A fixture that is no live item must stay out of the CRM, skipped by a rule the
    audit trail names; then no path changed its meaning."""
    href = _href(rep, _kind(result.name), result.name)
    skips = [e.rule for e in service.store.item_history(href) if e.action == "skip"]
    result.left_out_rule = skips[-1] if skips else ""
    if reached_crm:
        problem = "reached the CRM"
    elif not any("skipped" in rule for rule in skips):
        problem = "left out without a skip in the audit trail"
    else:
        problem = ""
    for path in PATHS:
        result.paths[path] = problem or {}


def _check_crm(
    service: SyncService, results: dict[str, FixtureResult], crm_ids: dict[str, str], path: str
) -> None:
    for name, crm_id in crm_ids.items():
        record = service.crm.get_record(_owned(_kind(name)), crm_id).record
        results[name].paths[path] = differences(expected_meaning(name, REP_ZONE), meaning(record))
