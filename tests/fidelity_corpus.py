"""The fixture corpus through a real DAV server and the built-in CRM, on every path, and
a CRM-side edit after it (shared by tests/service/test_fidelity_round_trip.py and
`bench/fidelity.py`); what each fixture means is `tests/fidelity.py`'s."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crmsync.crm.builtin import OwnedKind
from crmsync.domain.records import Contact, Event, ItemKind
from crmsync.domain.settings import EventSettings, SyncConfig
from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.dav import DavCollection, connect, open_mailbox
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MARKER_PROPERTY, MalformedItem, item_text
from crmsync.groupware.dav.ical import ICalendarFormat
from crmsync.groupware.dav.vcard import VCardFormat
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.fidelity import (
    AS_OF,
    EXPECTED,
    REP_ZONE,
    copy_differences,
    differences,
    expected_meaning,
    fixture_bytes,
    fixture_text,
    meaning,
)
from tests.servers import DavServerInfo

PATHS = ("mail → CRM", "CRM → mail", "mail → CRM → mail → CRM")


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
    # For a malformed item the server stored as sent: whether it became an error row.
    reported: bool | None = None

    @property
    def faithful(self) -> bool:
        return (
            all(v == {} for v in self.paths.values())
            and self.unmapped_kept is not False
            and self.reported is not False
        )


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

    def put(self, kind: ItemKind, slug: str, text: str | bytes) -> httpx.Response:
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
        malformed = [n for n in names if n.startswith("malformed/")]
        by_kind = {
            kind: [
                n
                for n in names
                if n not in malformed and n.endswith(".ics") == (kind is ItemKind.EVENT)
            ]
            for kind in ItemKind
        }
        malformed_hrefs = {n: _put_malformed(first, results[n]) for n in malformed}
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
        reported = {row.item_id for row in service.store.errors(rep_id=first.user.id)}
        for name, href in malformed_hrefs.items():
            if href is not None:
                results[name].reported = href in reported
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
            third.put(_kind(name), _slug(name), _without_marker(text))
        service.sync_rep(third.user)
        third_ids = _crm_ids(service, third, by_kind, second_texts)
        _check_crm(service, results, third_ids, PATHS[2])
        for name in names:
            for path in PATHS:
                if name not in malformed:
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


def _put_malformed(rep: _Rep, result: FixtureResult) -> str | None:
    """Put a malformed fixture as a client would; its href when the server kept it as sent
    (servers refuse some, and Radicale stores a body that is not UTF-8 repaired)."""
    kind, sent = _kind(result.name), fixture_bytes(result.name)
    href = _href(rep, kind, result.name)
    try:
        status = rep.put(kind, _slug(result.name), sent).status_code
    except ServerUnavailable:
        status = 500  # Xandikos answers 500 to a body that is not UTF-8, yet may keep it
    got = rep.connection.request("GET", href)
    if got.status_code != 200:
        result.server_note = f"refused ({status})"
        return None
    if got.content != sent:
        try:
            rep.collection(kind).format.parse(item_text(got.content))
        except MalformedItem:
            pass
        else:
            result.server_note = "stores it repaired"
            return None
    return href


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


def _without_marker(text: str) -> str:
    """The item as another person's client would pass it on: without crmsync's marker (a
    meeting carrying another rep's marker is a scheduling server's delivered copy, which
    crmsync leaves out rather than import twice; issue 12)."""
    root = cl.parse(text)
    for component in root.walk():
        component.remove_all(MARKER_PROPERTY)
    return root.serialize()
