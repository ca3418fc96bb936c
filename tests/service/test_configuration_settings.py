"""Each configuration setting changes what syncs, end to end against a real DAV server.

Every test runs a setting both ways (or against its default), so it fails if the setting
is ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Recurrence
from crmsync.domain.settings import (
    ContactSettings,
    Direction,
    EventSelection,
    EventSettings,
    SyncConfig,
)
from crmsync.groupware.dav.multistatus import mkcol_addressbook_body
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World, at

__all__ = ["dav_server"]

# Far enough ahead that the default window (TODAY) keeps them.
START = at(11, 9)


def ics(uid: str, summary: str, *lines: str) -> str:
    body = "\r\n".join(lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Client//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\n"
        "DTSTART:20300311T090000Z\r\nDTEND:20300311T100000Z\r\n"
        + (body + "\r\n" if body else "")
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def put_event(world: World, uid: str, summary: str, *lines: str) -> None:
    response = world.put_raw(ItemKind.EVENT, uid, ics(uid, summary, *lines))
    assert response.status_code in (201, 204), response.text


def crm_subjects(world: World) -> list[str]:
    return sorted(e.subject for e in world.crm_records(ItemKind.EVENT))


def mail_subjects(world: World) -> list[str]:
    return sorted(e.subject for e in world.mail_records(ItemKind.EVENT))


def event(subject: str, **fields: object) -> Event:
    return Event(subject, EventTiming(START, START + dt.timedelta(hours=1)), **fields)  # type: ignore[arg-type]


def with_events(**settings: object) -> SyncConfig:
    return replace(BOTH_WAYS, events=EventSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("sync_private", [True, False])
def test_private_events_sync_only_when_allowed(
    dav_server: DavServerInfo, tmp_path: Path, sync_private: bool
) -> None:
    world = World(dav_server, tmp_path / "home", with_events(sync_private=sync_private))
    try:
        world.crm.create_event(world.rep.id, event("CRM private", is_private=True))
        world.crm.create_event(world.rep.id, event("CRM public"))
        put_event(world, "m-private", "Mail private", "CLASS:PRIVATE")
        put_event(world, "m-confidential", "Mail confidential", "CLASS:CONFIDENTIAL")
        world.sync()
        if sync_private:
            assert mail_subjects(world) == [
                "CRM private",
                "CRM public",
                "Mail confidential",
                "Mail private",
            ]
            assert crm_subjects(world) == mail_subjects(world)
        else:
            assert mail_subjects(world) == ["CRM public", "Mail confidential", "Mail private"]
            assert crm_subjects(world) == ["CRM private", "CRM public"]
    finally:
        world.close()


def test_events_users_select_need_the_category_from_the_mail_side_only(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(
        dav_server, tmp_path / "home", with_events(selection=EventSelection.USER_SELECTED)
    )
    try:
        put_event(world, "tagged", "Tagged", "CATEGORIES:Customers,crm")
        put_event(world, "untagged", "Untagged", "CATEGORIES:Customers")
        world.crm.create_event(world.rep.id, event("From the CRM"))
        world.sync()
        assert crm_subjects(world) == ["From the CRM", "Tagged"]
        assert "Untagged" in mail_subjects(world) and "From the CRM" in mail_subjects(world)
    finally:
        world.close()


def test_the_selection_category_is_the_orgs_setting(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(
        dav_server, tmp_path / "home", with_events(selection=EventSelection.USER_SELECTED)
    )
    try:
        settings = world.service.org_settings()
        world.service.store.save_org_settings(replace(settings, event_category="Sync me"))
        put_event(world, "old-tag", "Old tag", "CATEGORIES:CRM")
        put_event(world, "new-tag", "New tag", "CATEGORIES:Sync me")
        world.sync()
        assert crm_subjects(world) == ["New tag"]
    finally:
        world.close()


@pytest.mark.parametrize("delete_synced_events", [True, False])
def test_delete_synced_events_decides_whether_a_deletion_travels(
    dav_server: DavServerInfo, tmp_path: Path, delete_synced_events: bool
) -> None:
    config = with_events(delete_synced_events=delete_synced_events)
    world = World(dav_server, tmp_path / "home", config)
    try:
        in_crm = world.crm.create_event(world.rep.id, event("Deleted in the CRM"))
        world.crm.create_event(world.rep.id, event("Deleted on the mail server"))
        world.sync()
        world.crm.delete_event(in_crm.id)
        on_mail = next(
            s
            for s in world.mail_items(ItemKind.EVENT).values()
            if s.record.subject == "Deleted on the mail server"
        )
        world.mailbox.events.delete(on_mail.id, on_mail.version)
        world.sync()
        if delete_synced_events:
            assert mail_subjects(world) == crm_subjects(world) == []
        else:
            assert mail_subjects(world) == ["Deleted in the CRM"]
            assert crm_subjects(world) == ["Deleted on the mail server"]
            # Unlinked, not forgotten as data: the survivors stay put on later cycles.
            assert world.sync().writes == 0
    finally:
        world.close()


@pytest.mark.parametrize("sync_series", [True, False])
def test_event_series_sync_only_when_allowed(
    dav_server: DavServerInfo, tmp_path: Path, sync_series: bool
) -> None:
    world = World(dav_server, tmp_path / "home", with_events(sync_series=sync_series))
    try:
        weekly = Recurrence("FREQ=WEEKLY;COUNT=4")
        world.crm.create_event(world.rep.id, event("CRM series", recurrence=weekly))
        world.crm.create_event(world.rep.id, event("CRM single"))
        put_event(world, "m-series", "Mail series", "RRULE:FREQ=DAILY;COUNT=3")
        world.sync()
        if sync_series:
            assert crm_subjects(world) == ["CRM series", "CRM single", "Mail series"]
            assert mail_subjects(world) == crm_subjects(world)
        else:
            assert crm_subjects(world) == ["CRM series", "CRM single"]
            assert mail_subjects(world) == ["CRM single", "Mail series"]
    finally:
        world.close()


@pytest.mark.parametrize("kind", [ItemKind.CONTACT, ItemKind.EVENT])
def test_direction_none_leaves_a_kind_alone(
    dav_server: DavServerInfo, tmp_path: Path, kind: ItemKind
) -> None:
    if kind is ItemKind.CONTACT:
        config = replace(BOTH_WAYS, contacts=ContactSettings(direction=Direction.NONE))
    else:
        config = replace(BOTH_WAYS, events=EventSettings(direction=Direction.NONE))
    world = World(dav_server, tmp_path / "home", config)
    try:
        world.crm.create_contact(world.rep.id, Contact("Cy", "Crm"))
        world.crm.create_event(world.rep.id, event("Meeting"))
        world.sync()
        synced = {
            ItemKind.CONTACT: len(world.mail_records(ItemKind.CONTACT)),
            ItemKind.EVENT: len(world.mail_records(ItemKind.EVENT)),
        }
        assert synced[kind] == 0
        assert synced[ItemKind.EVENT if kind is ItemKind.CONTACT else ItemKind.CONTACT] == 1
    finally:
        world.close()


def test_contact_deletions_do_not_travel_by_default(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(dav_server, tmp_path / "home", replace(BOTH_WAYS, contacts=ContactSettings()))
    try:
        in_crm = world.crm.create_contact(world.rep.id, Contact("Gone", "In Crm"))
        world.crm.create_contact(world.rep.id, Contact("Gone", "On Mail"))
        world.sync()
        world.crm.delete_contact(in_crm.id)
        on_mail = next(
            s
            for s in world.mail_items(ItemKind.CONTACT).values()
            if s.record.last_name == "On Mail"
        )
        world.mailbox.contacts.delete(on_mail.id, on_mail.version)
        world.sync()
        assert [c.last_name for c in world.mail_records(ItemKind.CONTACT)] == ["In Crm"]
        assert [c.last_name for c in world.crm_records(ItemKind.CONTACT)] == ["On Mail"]
    finally:
        world.close()


def test_only_the_sync_folder_goes_to_the_crm(dav_server: DavServerInfo, tmp_path: Path) -> None:
    """A contact in another of the rep's address books stays out of the CRM."""
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        world.sync()  # creates the sync folder
        home = world.mailbox.contacts.path.rstrip("/").rsplit("/", 1)[0] + "/"
        private_book = home + "private-book/"
        made = world.connection.request(
            "MKCOL", private_book, body=mkcol_addressbook_body("Private"), xml=True
        )
        assert made.status_code in (201, 207), made.text
        vcard = (
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p1\r\nFN:Pat Private\r\n"
            "N:Private;Pat;;;\r\nEND:VCARD\r\n"
        )
        put = world.connection.request(
            "PUT", private_book + "p1.vcf", body=vcard, headers={"Content-Type": "text/vcard"}
        )
        assert put.status_code in (201, 204), put.text
        in_folder = (
            vcard.replace("p1", "s1")
            .replace("Pat Private", "Sam Synced")
            .replace("Private;Pat", "Synced;Sam")
        )
        assert world.put_raw(ItemKind.CONTACT, "s1", in_folder).status_code in (201, 204)
        world.sync()
        assert [c.last_name for c in world.crm_records(ItemKind.CONTACT)] == ["Synced"]
    finally:
        world.close()


def test_a_reps_own_assignment_beats_the_profiles(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        profile = world.crm.create_profile("Sales")
        world.crm.update_user(replace(world.rep, profile_id=profile.id))
        rep = world.crm.get_user(world.rep.id)
        contacts_only = replace(
            BOTH_WAYS,
            name="Profile",
            user_ids=(),
            profile_ids=(profile.id,),
            events=EventSettings(direction=Direction.NONE),
        )
        world.service.save_config(contacts_only)
        world.crm.create_event(rep.id, event("Meeting"))
        world.service.sync_rep(rep)
        assert mail_subjects(world) == ["Meeting"]  # the direct "Sales" assignment syncs events

        world.service.store.delete_config("Sales")
        world.crm.create_event(rep.id, event("Second meeting"))
        world.service.sync_rep(rep)
        assert mail_subjects(world) == ["Meeting"]  # now the profile's: events do not sync
    finally:
        world.close()
