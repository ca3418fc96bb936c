"""A real cycle trips the mass-delete guard; the console says so until an admin confirms,
and the confirmed deletions are carried out by the next cycle (Radicale, built-in CRM)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from crmsync.admin.web import create_app
from crmsync.admin.web.security import MANAGE, hash_password
from crmsync.domain.records import Contact, ItemKind
from crmsync.service.deployment import Deployment
from tests.servers import running_dav_server
from tests.service.worlds import BOTH_WAYS, World


def test_held_deletions_show_until_confirmed_then_the_next_cycle_deletes(tmp_path: Path) -> None:
    with running_dav_server("radicale", tmp_path) as server:
        world = World(server, tmp_path / "home", BOTH_WAYS)
        try:
            contacts = [
                world.crm.create_contact(world.rep.id, Contact(first_name=f"C{n}", last_name="Lee"))
                for n in range(10)
            ]
            world.sync()
            for contact in contacts[:8]:  # 80 % of the rep's synced contacts
                world.crm.delete_contact(contact.id)
            tripped = world.service.sync_rep(world.rep)
            assert tripped.error is not None and "held back" in tripped.error
            assert len(world.mail_items(ItemKind.CONTACT)) == 10

            app = create_app(Deployment.from_env(world.home))
            with TestClient(app) as client:
                store = app.state.service.store
                store.create_admin("admin", hash_password("a long password"), set(MANAGE))
                bearer = {"Authorization": f"Bearer {store.create_api_token('admin', 'test')}"}
                listing = client.get("/status", headers=bearer).text
                assert "Deletions held" in listing
                rep_page = f"/status/{server.email}"
                assert "Confirm deletions" in client.get(rep_page, headers=bearer).text
                confirmed = client.post(
                    rep_page + "/confirm-deletes",
                    headers=bearer,
                    data={"csrf_token": "-"},  # a bearer token is checked for none
                    follow_redirects=False,
                )
                assert confirmed.status_code == 303

                done = world.service.sync_rep(world.rep)
                assert done.error is None, done.error
                assert len(world.mail_items(ItemKind.CONTACT)) == 2
                after = client.get(rep_page, headers=bearer).text
                assert "Deletions held" not in after and "Confirm deletions" not in after
        finally:
            world.close()
