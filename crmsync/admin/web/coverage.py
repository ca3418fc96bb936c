"""Which reps a configuration covers, computed from the configurations in memory: the
store's rule (`StateStore.effective_config`) for many users at once."""

from __future__ import annotations

from collections.abc import Iterable

from crmsync.domain.records import Profile, User
from crmsync.domain.settings import Coverage, SyncConfig


def effective_configs(
    configs: Iterable[SyncConfig], users: Iterable[User]
) -> dict[str, SyncConfig]:
    """Each covered user's active configuration, by user id (`Coverage`'s rule)."""
    coverage = Coverage(configs)
    return {user.id: config for user in users if (config := coverage.config_of(user)) is not None}


def overrides(
    config: SyncConfig,
    configs: Iterable[SyncConfig],
    users: Iterable[User],
    profiles: Iterable[Profile],
) -> list[str]:
    """Where a direct assignment overrides a profile's configuration, for ``config``'s
    users and profiles: a rep of one of its profiles directly assigned elsewhere, or a rep
    assigned here whose profile belongs to another active configuration."""
    names = {p.id: p.name for p in profiles}
    others = [c for c in configs if c.name != config.name and c.active]
    direct_elsewhere = {u: c for c in others for u in c.user_ids}
    profile_elsewhere = {p: c for c in others for p in c.profile_ids}
    found = []
    for user in users:
        who = f"{user.name} <{user.email}>" if user.name else user.email
        profile = names.get(user.profile_id or "", user.profile_id)
        if user.profile_id in config.profile_ids and user.id in direct_elsewhere:
            found.append(
                f"{who} has the profile {profile} but is assigned directly to "
                f"“{direct_elsewhere[user.id].name}”, which wins: this configuration "
                "does not cover them."
            )
        if user.id in config.user_ids and user.profile_id in profile_elsewhere:
            found.append(
                f"{who} is assigned directly here, which overrides “"
                f"{profile_elsewhere[user.profile_id].name}” of their profile {profile}."
            )
    return found
