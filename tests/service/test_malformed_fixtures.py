"""Every malformed fixture the server stores becomes one error row; the rest syncs."""

from __future__ import annotations

from pathlib import Path

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType, ServerUnavailable
from crmsync.groupware.dav.formats import MalformedItem, item_text
from tests.fidelity import AS_OF, fixture_bytes, fixture_names
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World

__all__ = ["dav_server"]

VALID_EVENT = "events/utc_times_z.ics"
VALID_CONTACT = "contacts/vcard30_person_account.vcf"
# Servers that store a malformed item in a form that is no longer malformed: Radicale 3
# decodes a body that is not UTF-8 as Latin-1 (its last fallback) and stores the result;
# SabreDAV (sabre/vobject) repairs what it can on PUT: a missing UID, FN, VERSION or END,
# and a body that is not UTF-8.
SERVER_REPAIRS = {
    "radicale": {"malformed/vcard40_invalid_utf8.vcf"},
    "sabredav": {
        "malformed/vcard40_invalid_utf8.vcf",
        "malformed/missing_uid.ics",
        "malformed/vcard_no_fn_no_n.vcf",
        "malformed/vcard_no_version.vcf",
        "malformed/vcard_truncated_no_end.vcf",
    },
}


def _on_server(world: World, kind: ItemKind, name: str) -> bool:
    path = world.collection(kind).path + Path(name).name
    return world.connection.request("GET", path).status_code == 200


def _stored_as_sent(world: World, kind: ItemKind, name: str) -> bool:
    """Whether the server's copy of ``name`` is still malformed (it may have repaired it)."""
    path = world.collection(kind).path + Path(name).name
    stored = world.connection.request("GET", path).content
    if stored == fixture_bytes(name):
        return True
    try:
        world.collection(kind).format.parse(item_text(stored))
    except MalformedItem:
        return True
    return False


def test_malformed_items_are_error_rows_and_the_cycle_goes_on(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        world.sync()
        stored, repaired = [], set()
        for name in [*fixture_names("malformed"), VALID_EVENT, VALID_CONTACT]:
            kind = ItemKind.EVENT if name.endswith(".ics") else ItemKind.CONTACT
            try:
                status = world.put_raw(kind, Path(name).stem, fixture_bytes(name)).status_code
            except ServerUnavailable:
                # Xandikos answers 500 to a body that is not UTF-8, yet keeps it.
                status = 500
            # Servers validate too (Radicale refuses what it cannot parse): those never
            # reach crmsync; the others must not stop the cycle.
            if _on_server(world, kind, name) and name.startswith("malformed/"):
                assert status in (201, 204, 500), (name, status)
                if _stored_as_sent(world, kind, name):
                    stored.append(name)
                else:
                    repaired.add(name)
        assert repaired == SERVER_REPAIRS.get(dav_server.name, set())
        world.service.clock = lambda: AS_OF  # so the 2026 valid event is in the window
        world.sync()
        rows = world.service.store.errors()
        assert len(stored) >= 2, stored  # Radicale refuses all but two; Xandikos stores more
        assert len(rows) == len(stored), ([r.item_id for r in rows], stored)
        for row in rows:
            assert row.error_type is ErrorType.MALFORMED_ITEM
            assert row.message and row.suggestion
        assert any(
            e.subject == "Quarterly business review" for e in world.crm_records(ItemKind.EVENT)
        )
        # The valid contact, and the cards the server repaired (its own doing).
        repaired_cards = [n for n in repaired if n.endswith(".vcf")]
        assert len(world.crm_records(ItemKind.CONTACT)) == 1 + len(repaired_cards)
        # Unchanged malformed items are not reported again on the next cycle.
        world.sync()
        assert len(world.service.store.errors()) == len(stored)
    finally:
        world.close()
