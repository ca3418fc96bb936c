"""The other orgs' claims on mailboxes: read at most once a minute, not per cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.domain.settings import SyncConfig
from crmsync.service import mailbox_claims
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService


def test_other_orgs_are_read_once_per_period_not_per_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    sandbox = Deployment.add_org(Deployment.from_env(home).home, "sandbox")
    with SyncService(sandbox) as other:
        user = other.crm.create_user("rep@example.com")
        other.save_config(SyncConfig("Test", user_ids=(user.id,)))
    reads = []
    real = Deployment.orgs
    monkeypatch.setattr(Deployment, "orgs", lambda self: reads.append(1) or real(self))
    clock = [1000.0]
    monkeypatch.setattr(mailbox_claims.time, "monotonic", lambda: clock[0])
    with SyncService(Deployment.from_env(home)) as service:
        for _ in range(3):
            service.open_cycle("rep")  # what each cycle does first
            assert "rep@example.com" in service.claimed_elsewhere()
        assert len(reads) == 1
        clock[0] += mailbox_claims.CLAIMS_MAX_AGE + 1
        service.claimed_elsewhere()
        assert len(reads) == 2
