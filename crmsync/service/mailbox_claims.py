"""Which mailboxes an org's active configurations sync, and clashes with the other orgs.

A mailbox may be in only one active configuration across the deployment's orgs (the
spec's sandbox / production warning), or its items would sync twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from crmsync.domain.settings import SyncConfig
from crmsync.service.deployment import Deployment

if TYPE_CHECKING:
    from crmsync.service.runner import SyncService

# How stale the other orgs' active configurations may be when a cycle checks a mailbox.
CLAIMS_MAX_AGE = 60.0


def claimed_mailboxes(service: SyncService) -> dict[str, str]:
    """Each mailbox an active configuration of the org syncs, with that configuration."""
    claims = {}
    for user in service.reps():
        config = service.store.effective_config(user)
        if config is not None:
            claims[user.email.casefold()] = config.name
    return claims


class MailboxClaims:
    """One service's view of the other orgs' claims on mailboxes."""

    def __init__(
        self, service: SyncService, open_org: Callable[[Deployment], SyncService]
    ) -> None:
        """``open_org`` opens a service on another org of the deployment."""
        self._service = service
        self._open_org = open_org
        self._elsewhere: dict[str, tuple[str, str]] = {}
        self._read_at: float | None = None

    def conflicts(self, configs: list[SyncConfig]) -> list[str]:
        """Mailboxes ``configs`` would sync that another org's active configuration does."""
        active = [config for config in configs if config.active]
        if not active:
            return []
        covered = {config.name: self._covered(config) for config in active}
        conflicts = []
        for org, claims in self._other_orgs():
            for config in active:
                for email in sorted(covered[config.name] & claims.keys()):
                    conflicts.append(
                        f"{email} is already in the active configuration {claims[email]!r} "
                        f"of org {org!r}; a mailbox may be in only one active configuration "
                        "across the deployment's orgs, or its items would sync twice"
                    )
        return conflicts

    def elsewhere(self) -> dict[str, tuple[str, str]]:
        """Mailboxes other orgs' active configurations sync: email → (org, configuration).

        Read at most every `CLAIMS_MAX_AGE` seconds: it opens every other org's databases,
        too much for each rep's cycle.
        """
        now = time.monotonic()
        if self._read_at is None or now - self._read_at > CLAIMS_MAX_AGE:
            self._elsewhere = {
                email: (org, config)
                for org, claims in self._other_orgs()
                for email, config in claims.items()
            }
            self._read_at = now
        return self._elsewhere

    def _covered(self, config: SyncConfig) -> set[str]:
        users = set(config.user_ids)
        profiles = set(config.profile_ids)
        return {
            user.email.casefold()
            for user in self._service.reps()
            if user.id in users or (user.profile_id is not None and user.profile_id in profiles)
        }

    def _other_orgs(self) -> Iterator[tuple[str, dict[str, str]]]:
        this = self._service.deployment
        for other in this.orgs():
            if other.org == this.org:
                continue
            with self._open_org(other) as service:
                yield other.org, claimed_mailboxes(service)
