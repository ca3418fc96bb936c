"""Bad input end to end (DESIGN rule 7, "errors are data"): malformed items on the mail
server, an expired sync token, a server that answers 503, and writes the server refuses.

Each test runs real `SyncService.sync_rep` cycles against the built-in CRM on SQLite and a
real Radicale (or Xandikos); failures are injected either as raw items a client could put
on the server or by `RuleProxy`, an HTTP proxy in front of the server that answers chosen
requests itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Record
from crmsync.domain.settings import Direction
from crmsync.domain.sync import ErrorType, Side, Written
from crmsync.groupware.dav import RetryPolicy
from crmsync.groupware.dav.collection import DavCollection
from crmsync.store import SyncStatus
from crmsync.store.read_ahead import ReadAhead
from tests.servers import (
    REP_EMAIL,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    DavServerInfo,
    dav_server,
    start_radicale,
)
from tests.service.http_proxy import Request, Rule, RuleProxy
from tests.service.worlds import BOTH_WAYS, World, at

__all__ = ["dav_server"]

KINDS = (ItemKind.CONTACT, ItemKind.EVENT)
OTHER_EMAIL = "other@example.com"


def add_good_items(world: World, tag: str = "") -> None:
    """Three contacts and three events in the CRM, two of each put by a client."""
    for i in range(3):
        world.crm.create_contact(
            world.rep.id,
            Contact(first_name=f"Gia{i}{tag}", last_name="Good", email=f"gia{i}{tag}@crm.example"),
        )
        world.crm.create_event(
            world.rep.id, Event(f"Good meeting {i}{tag}", EventTiming(at(3 + i, 9), at(3 + i, 10)))
        )
    for i in range(2):
        response = world.put_raw(ItemKind.CONTACT, f"client-card-{i}{tag}", client_card(i, tag))
        assert response.status_code in (200, 201, 204), response.text
        response = world.put_raw(ItemKind.EVENT, f"client-event-{i}{tag}", client_event(i, tag))
        assert response.status_code in (200, 201, 204), response.text


def client_card(i: int, tag: str = "", title: str = "") -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:client-card-{i}{tag}\r\nFN:Cleo{i}{tag} Client\r\nN:Client;Cleo{i}{tag};;;\r\n"
        f"EMAIL;TYPE=INTERNET:cleo{i}{tag}@client.example\r\n"
        + (f"TITLE:{title}\r\n" if title else "")
        + "END:VCARD\r\n"
    )


def client_event(i: int, tag: str = "", vevent_lines: str | None = None) -> str:
    lines = vevent_lines or (
        f"DTSTART:203004{10 + i:02d}T090000Z\r\nDTEND:203004{10 + i:02d}T100000Z\r\n"
        f"SUMMARY:Client call {i}{tag}\r\n"
    )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//client//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:client-event-{i}{tag}\r\nDTSTAMP:20300101T000000Z\r\n"
        + lines
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def assert_in_sync(world: World) -> None:
    """Both sides hold the same records, each once, every one of them linked."""
    store = world.service.store
    for kind in KINDS:
        mail = [s for s in world.mail_items(kind).values() if s.record is not None]
        crm = world.crm_records(kind)
        assert sorted(map(repr, (s.record for s in mail))) == sorted(map(repr, crm)), kind
        assert max(Counter(map(repr, crm)).values(), default=1) == 1, f"duplicate {kind}"
        links = store.links(world.rep.id, kind)
        assert len(links) == len(crm)
        assert {link.mail_id for link in links} == {s.id for s in mail}


@pytest.fixture
def world(dav_server: DavServerInfo, tmp_path: Path) -> Iterator[World]:
    w = World(dav_server, tmp_path / "home", BOTH_WAYS)
    yield w
    w.close()


def _crm_values_with_control_characters(world: World) -> None:
    world.crm.create_contact(
        world.rep.id, Contact("Nul", "Value", email="nul@crm.example", title="Account\x00 Exec")
    )
    world.crm.create_event(
        world.rep.id, Event("Call\x0b with\x1b Ada", EventTiming(at(3, 9), at(3, 10)))
    )


def test_crm_values_with_control_characters_sync_without_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The quirk: a NUL in a CRM value, written as it was, was stored by Xandikos, which
    # then answered every listing of the collection with XML no reader accepts; the rep's
    # events stopped syncing for good. Written without it, the items list and read back,
    # each in one write (not a create and then an update to bring the item "up to
    # date"), and the CRM keeps its value (a later cycle changes nothing).
    updates: list[str] = []
    update = DavCollection.update

    def counted(self: DavCollection, item_id: str, version: str, record: Record) -> Written:
        updates.append(item_id)
        return update(self, item_id, version, record)

    monkeypatch.setattr(DavCollection, "update", counted)
    _crm_values_with_control_characters(world)
    first = world.sync()
    assert first.writes == 2 and updates == []
    assert [c.title for c in world.mail_records(ItemKind.CONTACT)] == ["Account Exec"]  # type: ignore[attr-defined]
    assert [e.subject for e in world.mail_records(ItemKind.EVENT)] == ["Call with Ada"]  # type: ignore[attr-defined]
    assert world.sync().writes == 0
    assert [c.title for c in world.crm_records(ItemKind.CONTACT)] == ["Account\x00 Exec"]  # type: ignore[attr-defined]


class Killed(BaseException):
    """The process dies (nothing below the engine catches a BaseException)."""


def test_a_cycle_killed_after_writing_a_cleaned_value_leaves_the_crm_value(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed after the writes landed and before their links were saved: the next cycle
    # finds on the server the content it meant to write (without the control
    # characters), so the writes landed; it must not take the difference from the CRM's
    # value for a person's edit on the server and write it back into the CRM.
    _crm_values_with_control_characters(world)

    def killed(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ReadAhead, "apply_links", killed)
        with pytest.raises(Killed):
            world.service.sync_rep(world.rep)
    again = world.sync()  # the contact's create settled; the event's made now
    written = {(kind, op, side) for kind, r in again.kinds.items() for op, side in r.writes}
    assert written == {(ItemKind.EVENT, "create", Side.MAIL)}
    assert [c.title for c in world.crm_records(ItemKind.CONTACT)] == ["Account\x00 Exec"]  # type: ignore[attr-defined]
    assert [e.subject for e in world.crm_records(ItemKind.EVENT)] == ["Call\x0b with\x1b Ada"]  # type: ignore[attr-defined]
    assert len(world.mail_records(ItemKind.CONTACT)) == len(world.mail_records(ItemKind.EVENT)) == 1
    assert world.sync().writes == 0


# ------------------------------------------------------------------ malformed items

# name → (kind, text, what the error message must say); both servers store the first two
# of each kind, only Xandikos the others (Radicale answers 400 to them).
BAD_ITEMS = {
    "bad-empty-name": (
        ItemKind.CONTACT,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bad-empty-name\r\nFN:\r\nN:;;;;\r\nEND:VCARD\r\n",
        "FN and N are empty",
    ),
    "bad-version": (
        ItemKind.CONTACT,
        "BEGIN:VCARD\r\nVERSION:9.9\r\nUID:bad-version\r\nFN:Vic Version\r\n"
        "N:Version;Vic;;;\r\nEND:VCARD\r\n",
        "VERSION:9.9",
    ),
    "bad-backwards": (
        ItemKind.EVENT,
        client_event(
            90,
            vevent_lines="DTSTART:20300601T100000Z\r\nDTEND:20300601T090000Z\r\n"
            "SUMMARY:Backwards\r\n",
        ).replace("client-event-90", "bad-backwards"),
        "before it starts",
    ),
    "bad-no-start": (
        ItemKind.EVENT,
        client_event(91, vevent_lines="SUMMARY:No start\r\n").replace(
            "client-event-91", "bad-no-start"
        ),
        "no DTSTART",
    ),
    "bad-mixed": (
        ItemKind.EVENT,
        client_event(
            92,
            vevent_lines="DTSTART;VALUE=DATE:20300601\r\nDTEND:20300601T090000Z\r\n"
            "SUMMARY:Mixed\r\n",
        ).replace("client-event-92", "bad-mixed"),
        "mixes an all-day start",
    ),
}
STORED_BY_EVERY_SERVER = {"bad-empty-name", "bad-version", "bad-backwards"}


def test_malformed_items_are_reported_once_and_the_good_ones_sync(world: World) -> None:
    stored = set(STORED_BY_EVERY_SERVER)
    if world.server.name == "sabredav":
        stored.discard("bad-version")  # SabreDAV validates VERSION (415): never stored
    add_good_items(world)
    bad_hrefs: dict[str, str] = {}  # href → what the message must say
    for name, (kind, text, says) in BAD_ITEMS.items():
        response = world.put_raw(kind, name, text)
        if response.status_code in (200, 201, 204):
            href = next(
                h
                for h in world.mail_items(kind)
                if unquote(h).endswith(
                    "/" + name + (".vcf" if kind is ItemKind.CONTACT else ".ics")
                )
            )
            bad_hrefs[href] = says
        else:
            assert name not in stored, (name, response.status_code)
    assert len(bad_hrefs) >= len(stored)

    first = world.sync()

    rows = world.service.store.errors(rep_id=world.rep.id)
    assert Counter(row.item_id for row in rows) == Counter(list(bad_hrefs))  # one per bad item
    for row in rows:
        assert row.item_id is not None
        assert row.operation == "read from mail server"
        assert row.error_type is ErrorType.MALFORMED_ITEM
        assert bad_hrefs[row.item_id] in row.message
        assert row.suggestion.strip()
    assert sum(report.skipped for report in first.kinds.values()) == len(bad_hrefs)
    # The good items synced fully, both ways; the bad ones reached neither the CRM nor a link.
    assert len(world.crm_records(ItemKind.CONTACT)) == 5
    assert len(world.crm_records(ItemKind.EVENT)) == 5
    assert_in_sync(world)

    # The next cycle reads incrementally from the saved sync token: the bad items did not
    # change, so they are not read again and not reported again. That is right: the row
    # already tells the admin what to fix, and a row per cycle would bury other errors.
    second = world.sync()
    assert second.writes == 0
    assert len(world.service.store.errors(rep_id=world.rep.id)) == len(rows)

    # Once a person fixes the item it syncs like any other, without a new error row.
    fixed = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bad-empty-name\r\nFN:Now Named\r\n"
        "N:Named;Now;;;\r\nEND:VCARD\r\n"
    )
    assert world.put_raw(ItemKind.CONTACT, "bad-empty-name", fixed).status_code in (200, 201, 204)
    third = world.sync()
    assert third.kinds[ItemKind.CONTACT].written_to(Side.CRM) == 1
    assert "Named" in {c.last_name for c in world.crm_records(ItemKind.CONTACT)}
    assert len(world.service.store.errors(rep_id=world.rep.id)) == len(rows)


# ------------------------------------------------------------------ expired sync token


def test_an_invalid_sync_token_falls_back_to_a_full_listing(world: World) -> None:
    add_good_items(world)
    world.sync()
    store = world.service.store
    bogus = "http://example.invalid/ns/sync/expired-0000"
    for kind in KINDS:
        assert store.cursor(world.rep.id, kind, Side.MAIL)
        store.save_cursor(world.rep.id, kind, Side.MAIL, bogus)

    # Meanwhile a person edits a contact, deletes an event and adds one in their client.
    card = next(
        s for s in world.mail_items(ItemKind.CONTACT).values() if s.record.first_name == "Cleo0"
    )
    world.collection(ItemKind.CONTACT).update(
        card.id,
        card.version,
        replace(card.record, title="CFO"),
    )
    gone = next(
        s for s in world.mail_items(ItemKind.EVENT).values() if s.record.subject == "Good meeting 1"
    )
    world.collection(ItemKind.EVENT).delete(gone.id, gone.version)
    new = world.put_raw(ItemKind.EVENT, "client-event-new", client_event(7, "new"))
    assert new.status_code in (200, 201, 204)

    report = world.sync()

    for kind in KINDS:
        assert report.kinds[kind].full_listing[Side.MAIL] is True
        assert store.cursor(world.rep.id, kind, Side.MAIL) not in (None, bogus)
    assert report.kinds[ItemKind.CONTACT].writes == Counter({("update", Side.CRM): 1})
    assert report.kinds[ItemKind.EVENT].writes == Counter(
        {("create", Side.CRM): 1, ("delete", Side.CRM): 1}
    )
    contacts = world.crm_records(ItemKind.CONTACT)
    assert [c.title for c in contacts if c.first_name == "Cleo0"] == ["CFO"]
    subjects = sorted(e.subject for e in world.crm_records(ItemKind.EVENT))
    assert subjects == [
        "Client call 0",
        "Client call 1",
        "Client call 7new",
        "Good meeting 0",
        "Good meeting 2",
    ]
    assert_in_sync(world)
    assert store.errors(rep_id=world.rep.id) == []
    assert world.sync().writes == 0


# ------------------------------------------------------------------ an unavailable server


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[RuleProxy, DavServerInfo, list[float]]]:
    """Radicale (users: the rep and OTHER_EMAIL) behind a `RuleProxy`, and the sleeps the
    service's retry policy took."""
    radicale = start_radicale(tmp_path, users={OTHER_EMAIL: "other-secret"})
    proxy = RuleProxy(radicale.url)
    info = DavServerInfo(
        "radicale", proxy.url, SERVICE_ACCOUNT, SERVICE_PASSWORD, "/{email}/", REP_EMAIL
    )
    try:
        yield proxy, info, []
    finally:
        proxy.close()
        radicale.stop()


def proxied_world(proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path) -> World:
    _, info, sleeps = proxied
    retry = RetryPolicy(max_attempts=4, base_delay=0.01, jitter=0.0, sleep=sleeps.append)
    return World(info, tmp_path / "home", BOTH_WAYS, retry=retry)


def test_a_server_that_answers_503_for_a_while_is_retried_with_backoff(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, sleeps = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        add_good_items(world)
        start = proxy.requests
        puts = Counter[str]()

        def rule(request: Request) -> int | None:
            # Three 503s (Retry-After: 0) first, then two 502s (backoff) mid-cycle.
            if request.number - start <= 3:
                return 503
            if request.method == "PUT" and b"SUMMARY:Good meeting 1" in request.body:
                puts["meeting 1"] += 1
                return 502 if puts["meeting 1"] <= 2 else None
            return None

        proxy.rule = rule
        report = world.sync()
        assert [status for _, status in proxy.answered] == [503] * 3 + [502] * 2
        assert sleeps == [0.0, 0.0, 0.0, 0.01, 0.02]  # Retry-After honoured, then backoff
        assert report.writes == 10  # 3 + 3 to the mail server, 2 + 2 to the CRM
        assert world.service.store.errors(rep_id=world.rep.id) == []
        assert world.service.store.rep_status(world.rep.id).last_error is None
        proxy.rule = lambda r: None
        assert_in_sync(world)
    finally:
        world.close()


def _for_rep(request: Request) -> bool:
    return unquote(request.path).startswith(f"/{REP_EMAIL}/")


def test_a_server_that_never_recovers_fails_only_that_rep_and_the_next_cycle_completes(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        other = world.crm.create_user(OTHER_EMAIL, "Otto Other")
        world.service.store.save_config(replace(BOTH_WAYS, user_ids=(world.rep.id, other.id)))
        add_good_items(world)
        world.crm.create_event(other.id, Event("Other's meeting", EventTiming(at(9, 9), at(9, 10))))
        # Every request for the rep's folders answers 503; the other rep's path is healthy.
        proxy.rule = lambda r: 503 if _for_rep(r) else None

        reports = {r.rep.id: r for r in world.service.sync_all()}

        failed = reports[world.rep.id]
        assert failed.error is not None and "503" in failed.error
        (row,) = world.service.store.errors(rep_id=world.rep.id)
        assert row.kind is None and row.operation == "sync"
        assert row.error_type is ErrorType.SERVER_UNAVAILABLE
        assert row.message == failed.error and row.suggestion.strip()
        status = world.service.store.rep_status(world.rep.id)
        assert status.last_error == failed.error and status.consecutive_failures == 1
        assert status.recognized is True  # unavailable is not refused
        assert reports[other.id].error is None and reports[other.id].writes == 1
        assert world.service.store.errors(rep_id=other.id) == []

        proxy.rule = lambda r: None  # the server recovers
        recovered = world.sync()
        assert recovered.writes == 10
        assert_in_sync(world)
        status = world.service.store.rep_status(world.rep.id)
        assert status.last_error is None and status.consecutive_failures == 0
        assert len(world.service.store.errors(rep_id=world.rep.id)) == 1
        assert world.sync().writes == 0
    finally:
        world.close()


def _outage_from_the_put_of(subject: bytes) -> tuple[dict[str, bool], Rule]:
    state = {"down": False}

    def rule(request: Request) -> int | None:
        if request.method == "PUT" and subject in request.body:
            state["down"] = True
        return 503 if state["down"] else None

    return state, rule


def test_an_outage_mid_cycle_is_reported_and_recovers_without_duplicates(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        add_good_items(world)
        # The server goes down at the second CRM event's PUT, during the last kind's writes.
        state, rule = _outage_from_the_put_of(b"SUMMARY:Good meeting 1")
        proxy.rule = rule
        world.service.sync_rep(world.rep)
        assert state["down"]
        rows = world.service.store.errors(rep_id=world.rep.id)
        assert rows and all(
            row.error_type is ErrorType.SERVER_UNAVAILABLE and row.suggestion.strip()
            for row in rows
        )
        assert {row.kind for row in rows if row.item_id is not None} == {ItemKind.EVENT}
        # The rep shows the error, and events are not shown as synced.
        status = world.service.store.rep_status(world.rep.id)
        assert status.sync_status(ItemKind.EVENT, Direction.CRM_TO_MAIL) not in (
            SyncStatus.INITIAL_SYNC_COMPLETED,
            SyncStatus.IN_SYNC,
        )
        assert status.last_error is not None

        proxy.rule = lambda r: None
        world.sync()
        assert_in_sync(world)
        assert len(world.crm_records(ItemKind.EVENT)) == 5
        settled = len(world.service.store.errors(rep_id=world.rep.id))
        assert world.sync().writes == 0
        assert len(world.service.store.errors(rep_id=world.rep.id)) == settled
    finally:
        world.close()


# ------------------------------------------------------------------ a refused write


@pytest.mark.parametrize("refusal", [403, 415])
def test_a_write_the_server_refuses_is_reported_once_and_not_retried_until_changed(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path, refusal: int
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        add_good_items(world)
        refused = world.crm.create_event(
            world.rep.id, Event("Refused review", EventTiming(at(20, 9), at(20, 10)))
        )
        refuse = {"on": True}
        proxy.rule = lambda r: (
            refusal
            if refuse["on"] and r.method == "PUT" and b"SUMMARY:Refused review" in r.body
            else None
        )

        first = world.sync()

        (row,) = world.service.store.errors(rep_id=world.rep.id)
        assert (row.kind, row.item_id) == (ItemKind.EVENT, refused.id)
        assert row.operation == "create in mail server"
        assert row.error_type is ErrorType.REJECTED_WRITE
        assert f"HTTP {refusal}" in row.message and row.suggestion.strip()
        assert first.kinds[ItemKind.EVENT].errors == 1
        # The rest synced; the refused event is on neither the server nor a link.
        mail_subjects = {s.record.subject for s in world.mail_items(ItemKind.EVENT).values()}
        assert "Refused review" not in mail_subjects and len(mail_subjects) == 5
        assert world.service.store.count_links(world.rep.id, ItemKind.EVENT) == 5
        assert world.service.store.count_links(world.rep.id, ItemKind.CONTACT) == 5
        assert world.service.store.rep_status(world.rep.id).last_error is None

        # Not retried while unchanged: no loop, no new row, no PUT.
        answered = len(proxy.answered)
        for _ in range(2):
            assert world.sync().writes == 0
        assert len(proxy.answered) == answered
        assert len(world.service.store.errors(rep_id=world.rep.id)) == 1

        # Once the record changes (and the server accepts it) it is created.
        refuse["on"] = False
        world.crm.update_event(refused.id, replace(refused.record, location="Room 9"))
        again = world.sync()
        assert again.kinds[ItemKind.EVENT].writes == Counter({("create", Side.MAIL): 1})
        assert_in_sync(world)
        assert len(world.service.store.errors(rep_id=world.rep.id)) == 1
    finally:
        world.close()


# ------------------------------------------------------------------ a missing folder


def test_a_contacts_folder_that_cannot_be_created_fails_the_folder_check(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        proxy.rule = lambda r: 403 if r.method == "MKCOL" else None
        report = world.service.sync_rep(world.rep)

        assert report.error is not None and "CRM_Sync" in report.error
        status = world.service.store.rep_status(world.rep.id)
        assert status.contacts_folder_found is False
        (row,) = world.service.store.errors(rep_id=world.rep.id)
        assert row.error_type is ErrorType.FOLDER_MISSING and "CRM_Sync" in row.suggestion

        proxy.rule = lambda r: None
        assert world.service.sync_rep(world.rep).error is None
        assert world.service.store.rep_status(world.rep.id).contacts_folder_found is True
    finally:
        world.close()
