"""Contact filters and field mappings, end to end against a real DAV server.

Each test changes one setting and checks what reaches the other side, so it fails if the
setting is ignored.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.domain.contact_fields import ContactFilter, FieldMapping, FieldType, FilterOperator
from crmsync.domain.records import Address, Contact, ItemKind
from crmsync.domain.settings import ContactOwnership, ContactSettings, SyncConfig
from crmsync.domain.sync import ErrorType
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World

__all__ = ["dav_server"]

GERMANY = ContactFilter("mailing_address.country", FilterOperator.EQUALS, "DE")


def in_country(name: str, country: str) -> Contact:
    return Contact(first_name=name, last_name="Test", mailing_address=Address(country=country))


def mail_names(world: World) -> list[str]:
    return sorted(c.first_name for c in world.mail_records(ItemKind.CONTACT))


def test_a_field_filter_limits_crm_to_mail_and_moving_out_deletes_nothing(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    config = replace(BOTH_WAYS, contacts=ContactSettings(filters=(GERMANY,)))
    world = World(dav_server, tmp_path / "home", config)
    try:
        berlin = world.crm.create_contact(world.rep.id, in_country("Berta", "DE"))
        paris = world.crm.create_contact(world.rep.id, in_country("Pierre", "fr"))
        world.sync()
        assert mail_names(world) == ["Berta"]

        # Moving into the filter syncs; moving out keeps the mail copy (out of scope,
        # never deleted) and stops carrying CRM edits.
        world.crm.update_contact(paris.id, in_country("Pierre", "de"))
        world.crm.update_contact(berlin.id, replace(in_country("Berta", "AT"), title="CFO"))
        world.sync()
        assert mail_names(world) == ["Berta", "Pierre"]
        berta = next(c for c in world.mail_records(ItemKind.CONTACT) if c.first_name == "Berta")
        assert berta.title == ""
        history = world.service.store.item_history(berlin.id)
        assert any("outside filter: mailing_address.country equals DE" in h.rule for h in history)
        assert world.sync().writes == 0
    finally:
        world.close()


def test_filters_and_ownership_never_apply_mail_to_crm(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    contacts = ContactSettings(filters=(GERMANY,), ownership=ContactOwnership.SELECTED_NONE)
    world = World(dav_server, tmp_path / "home", replace(BOTH_WAYS, contacts=contacts))
    try:
        world.sync()
        vcard = (
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:fr-1\r\nFN:Fanny Martin\r\nN:Martin;Fanny;;;\r\n"
            "ADR;TYPE=WORK:;;1 rue X;Paris;;75001;FR\r\nEND:VCARD\r\n"
        )
        assert world.put_raw(ItemKind.CONTACT, "fr-1", vcard).status_code in (201, 204)
        world.sync()
        assert [c.first_name for c in world.crm_records(ItemKind.CONTACT)] == ["Fanny"]
    finally:
        world.close()


def test_custom_field_mapping_and_an_unsynced_field(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    """The mail phone maps to a custom CRM phone field; notes do not sync at all."""
    mappings = (FieldMapping("phone", "custom:direct_line"), FieldMapping("description", ""))
    config = replace(BOTH_WAYS, contacts=ContactSettings(field_mappings=mappings))
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        world.crm.define_custom_field("direct_line", FieldType.PHONE)
        world.service.save_config(replace(config, user_ids=(world.rep.id,)))
        stored = world.crm.create_contact(
            world.rep.id, Contact("Dora", "Direct", phone="+1 555 0100", description="secret")
        )
        world.crm.set_custom_values(stored.id, {"direct_line": "+49 30 1234"})
        world.sync()
        (text,) = world.raw_texts(ItemKind.CONTACT).values()
        assert "TEL;TYPE=WORK,VOICE:+49 30 1234" in text
        assert "555" not in text and "secret" not in text

        # A mail-side phone edit reaches the custom field only; a mail-side note stays there.
        (href,) = world.raw_texts(ItemKind.CONTACT)
        edited = text.replace("+49 30 1234", "+49 30 9999").replace(
            "END:VCARD", "NOTE:from the phone\r\nEND:VCARD"
        )
        response = world.connection.request(
            "PUT", href, body=edited, headers={"Content-Type": "text/vcard; charset=utf-8"}
        )
        assert response.status_code in (201, 204)
        world.sync()
        assert world.crm.custom_values(stored.id) == {"direct_line": "+49 30 9999"}
        now = world.crm.get_contact(stored.id).record
        assert (now.phone, now.description) == ("+1 555 0100", "secret")

        # A CRM edit of a synced field keeps the unsynced mail note.
        world.crm.update_contact(stored.id, replace(now, title="Boss"))
        world.sync()
        (text,) = world.raw_texts(ItemKind.CONTACT).values()
        assert "TITLE:Boss" in text and "NOTE:from the phone" in text
        assert world.sync().writes == 0
    finally:
        world.close()


def test_a_value_the_mapped_field_cannot_hold_is_an_error_row(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    mappings = (FieldMapping("email", "custom:contact_address"),)
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        world.crm.define_custom_field("contact_address", FieldType.TEXT)
        config = replace(BOTH_WAYS, contacts=ContactSettings(field_mappings=mappings))
        world.service.save_config(replace(config, user_ids=(world.rep.id,)))
        bad = world.crm.create_contact(world.rep.id, Contact("Bad", "Mail"))
        world.crm.set_custom_values(bad.id, {"contact_address": "call the front desk"})
        good = world.crm.create_contact(world.rep.id, Contact("Good", "Mail"))
        world.crm.set_custom_values(good.id, {"contact_address": "good@example.com"})
        world.sync()
        assert mail_names(world) == ["Good"]
        (row,) = world.service.store.errors()
        assert row.error_type is ErrorType.MALFORMED_ITEM and row.item_id == bad.id
        assert "not an email address" in row.message and "field mappings" in row.suggestion
    finally:
        world.close()


@pytest.mark.parametrize(
    ("mappings", "reason"),
    [
        ((FieldMapping("email", "custom:birthday"),), "cannot map to custom:birthday"),
        ((FieldMapping("phone", "custom:nope"),), "not a custom contact field"),
        ((FieldMapping("phone", "mobile_phone"),), "mobile_phone is mapped twice"),
        ((FieldMapping("last_name", ""),), "last_name must sync"),
        ((FieldMapping("shoe_size", "title"),), "not a mail contact field"),
    ],
)
def test_invalid_mappings_are_refused_with_a_reason(
    tmp_path: Path, mappings: tuple[FieldMapping, ...], reason: str
) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        service.crm.define_custom_field("birthday", FieldType.DATE)
        config = SyncConfig("Sales", contacts=ContactSettings(field_mappings=mappings))
        with pytest.raises(ValueError, match=reason):
            service.save_config(config)
        assert service.store.configs() == []
        bad_filter = ContactFilter("shoe_size", FilterOperator.EQUALS, "9")
        with pytest.raises(ValueError, match="'shoe_size' is not a CRM contact field"):
            service.save_config(SyncConfig("S", contacts=ContactSettings(filters=(bad_filter,))))


def test_selected_contacts_without_users_records_is_a_warning(tmp_path: Path) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        rep = service.crm.create_user("rep@example.com", "Rep")
        contacts = ContactSettings(ownership=ContactOwnership.SELECTED_NONE)
        warnings = service.save_config(SyncConfig("S", user_ids=(rep.id,), contacts=contacts))
        assert len(warnings) == 1 and "User's records" in warnings[0]
        assert service.save_config(SyncConfig("T", user_ids=())) == [
            "No user or profile is assigned, so this configuration syncs nobody."
        ]
