"""The org's settings, CRM section and configurations as a cycle reads them.

Every rep's cycle needs all three, and they change only when an admin saves one. Every
save moves the org's settings version in its transaction (`settings_versions`);
a store keeps the last `OrgSnapshot` it read and, at each cycle's opening read, reads
one number to learn whether it still holds (another process's save moves it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.records import User
from crmsync.domain.settings import Coverage, OrgSettings, SyncConfig
from crmsync.store import schema
from crmsync.store.configs import load_configs, read_org_settings
from crmsync.store.crm_settings import read_crm_settings


@dataclass(frozen=True)
class OrgSnapshot:
    """What the org's admins saved, as of settings version ``version``."""

    version: int
    settings: OrgSettings
    crm: CrmSettings
    configs: tuple[SyncConfig, ...]
    _coverage: Coverage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_coverage", Coverage(self.configs))

    def config_of(self, user: User) -> SyncConfig | None:
        """The active configuration ``user`` syncs under (`StateStore.effective_config`)."""
        return self._coverage.config_of(user)


def read_snapshot(conn: Connection, org_id: str, version: int) -> OrgSnapshot:
    """The org's settings, CRM section and configurations, read in ``conn``'s transaction."""
    return OrgSnapshot(
        version,
        read_org_settings(conn, org_id),
        read_crm_settings(conn, org_id),
        tuple(load_configs(conn, schema.sync_configs.c.org_id == org_id)),
    )
