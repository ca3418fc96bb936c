"""Every malformed fixture the server stores becomes one error row; the rest syncs."""

from __future__ import annotations

from pathlib import Path

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType
from tests.fidelity import AS_OF, fixture_names, fixture_text
from tests.servers import DavServerInfo, dav_server
from tests.service.worlds import BOTH_WAYS, World

__all__ = ["dav_server"]

VALID_EVENT = "events/utc_times_z.ics"
VALID_CONTACT = "contacts/vcard30_person_account.vcf"


def test_malformed_items_are_error_rows_and_the_cycle_goes_on(
    dav_server: DavServerInfo, tmp_path: Path
) -> None:
    world = World(dav_server, tmp_path / "home", BOTH_WAYS)
    try:
        world.sync()
        stored = []
        for name in [*fixture_names("malformed"), VALID_EVENT, VALID_CONTACT]:
            kind = ItemKind.EVENT if name.endswith(".ics") else ItemKind.CONTACT
            response = world.put_raw(kind, Path(name).stem, fixture_text(name))
            # Servers validate too (Radicale refuses what it cannot parse): those never
            # reach crmsync; the others must not stop the cycle.
            if response.status_code in (201, 204) and name.startswith("malformed/"):
                stored.append(name)
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
        assert len(world.crm_records(ItemKind.CONTACT)) == 1
        # Unchanged malformed items are not reported again on the next cycle.
        world.sync()
        assert len(world.service.store.errors()) == len(stored)
    finally:
        world.close()
