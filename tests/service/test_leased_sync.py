"""`crmsync sync` takes the rep's lease like `serve` does: it waits for or skips a rep
whose cycle runs elsewhere, and says which (issue 16)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.admin.cli import app
from crmsync.domain.records import Contact, ItemKind
from crmsync.store import LeaseLost
from tests.servers import running_dav_server
from tests.service.worlds import BOTH_WAYS, World

TTL = dt.timedelta(minutes=5)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with running_dav_server("radicale", tmp_path) as server:
        w = World(server, tmp_path / "home", BOTH_WAYS)
        w.crm.create_contact(w.rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
        monkeypatch.setenv("CRMSYNC_HOME", str(w.home))
        yield w
        w.close()


def test_sync_skips_a_rep_leased_elsewhere_and_writes_nothing(world: World) -> None:
    store = world.service.store
    assert store.claim_rep(world.rep.id, "serve:elsewhere", TTL) is not None
    result = CliRunner().invoke(app, ["sync", "--if-busy", "skip"])
    assert result.exit_code == 0, result.output
    assert "a cycle runs elsewhere (serve:elsewhere); skipping the rep" in result.output
    assert "skipped" in result.output
    assert world.mail_items(ItemKind.CONTACT) == {}
    assert store.rep_status(world.rep.id).lease_owner == "serve:elsewhere"


def test_sync_waits_for_a_rep_leased_elsewhere_then_syncs_it(world: World) -> None:
    store = world.service.store
    fence = store.claim_rep(world.rep.id, "serve:elsewhere", TTL)
    assert fence is not None
    released = threading.Timer(1.0, lambda: store.release_rep(world.rep.id, fence))
    released.start()
    try:
        result = CliRunner().invoke(app, ["sync", "--if-busy", "wait", "--wait-at-most", "60"])
    finally:
        released.cancel()
    assert result.exit_code == 0, result.output
    assert "a cycle runs elsewhere (serve:elsewhere); waiting for it" in result.output
    assert "waited" in result.output
    assert len(world.mail_items(ItemKind.CONTACT)) == 1
    status = store.rep_status(world.rep.id)
    assert status.lease_owner is None and status.last_cycle_finished is not None


def test_the_cli_cycle_is_fenced(world: World) -> None:
    """A CLI cycle whose lease was taken over writes nothing more (the fence moved)."""
    store = world.service.store
    fence = store.claim_rep(world.rep.id, "cli:stalled", TTL)
    assert fence is not None
    assert store.claim_rep(world.rep.id, "cli:stalled", TTL) == fence + 1  # re-claimed
    report = world.service.sync_rep(world.rep, fence=fence)
    assert report.lease_lost and report.error is not None
    assert world.mail_items(ItemKind.CONTACT) == {}
    with pytest.raises(LeaseLost):
        store.fenced(world.rep.id, fence).cycle_finished(world.rep.id)
