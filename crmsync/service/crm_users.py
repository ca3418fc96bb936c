"""The org's active CRM users as the schedulers see them, read once per interval.

A claiming round runs every second or so; asking the CRM for its user list each time would
cost one query per round, and on Salesforce one API call counted against the org's daily
allocation. The list changes rarely (a rep hired or deactivated), so the dispatchers of
`crmsync serve` and `crmsync scheduler` keep it for `DEFAULT_EVERY` seconds: a new CRM
user is scheduled within that time (on Salesforce, plus the CRM's own directory cache,
`SalesforceCrm.directory_ttl`). A user deactivated meanwhile may be handed to one more
cycle: a worker looks the user up again and skips an inactive one; `serve` runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from crmsync.domain.records import User

DEFAULT_EVERY = 60.0


class CrmUsers:
    """The last list ``read`` returned, read again once it is ``every`` seconds old."""

    def __init__(self, every: float = DEFAULT_EVERY, clock: Callable[[], float] = time.monotonic):
        if every < 0:
            raise ValueError("every must be >= 0 seconds")
        self.every = every
        self.clock = clock
        self._users: list[User] | None = None
        self._read_at = 0.0

    def forget(self) -> None:
        """Read the list again at the next `get` (the CRM it came from was replaced)."""
        self._users = None

    def get(self, read: Callable[[], list[User]]) -> list[User]:
        now = self.clock()
        if self._users is None or now - self._read_at >= self.every:
            self._users = read()
            self._read_at = now
        return self._users
