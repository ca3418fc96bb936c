"""The console's in-memory coverage rule agrees with the store's, user by user."""

from __future__ import annotations

from crmsync.admin.web.coverage import effective_configs
from crmsync.domain.settings import SyncConfig
from tests.admin.web.conftest import Console


def test_effective_configs_agree_with_the_store(console: Console) -> None:
    crm, store = console.service.crm, console.service.store
    sales = crm.create_profile("Sales")
    support = crm.create_profile("Support")
    users = [
        crm.create_user(
            f"u{n}@example.com", f"U{n}", profile_id=[sales.id, support.id, None][n % 3]
        )
        for n in range(9)
    ]
    store.save_config(SyncConfig("Sales", profile_ids=(sales.id,)))
    store.save_config(SyncConfig("Direct", user_ids=(users[0].id, users[2].id)))
    # Inactive: its direct assignment falls back to the profile's configuration.
    store.save_config(
        SyncConfig("Paused", active=False, user_ids=(users[3].id,), profile_ids=(support.id,))
    )
    found = effective_configs(store.configs(), users)
    for user in users:
        expected = store.effective_config(user)
        assert (found[user.id].name if user.id in found else None) == (
            expected.name if expected else None
        ), user.email
    assert {c.name for c in found.values()} == {"Sales", "Direct"}
