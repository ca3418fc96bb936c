"""The org's settings, CRM section and configurations as a cycle reads them.

Every rep's cycle needs all three, and they change only when an admin saves one. Every
save moves the org's settings version in its transaction (`settings_versions`);
a store keeps the last `OrgSnapshot` it read and, at each cycle's opening read, reads
one number to learn whether it still holds (another process's save moves it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select

from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.records import User
from crmsync.domain.settings import Coverage, OrgSettings, SyncConfig
from crmsync.store import schema
from crmsync.store.codec import from_json
from crmsync.store.configs import load_configs

_O = schema.org_settings
_S = schema.crm_settings

_ORG_SETTINGS = select(_O.c.settings).where(_O.c.org_id == bindparam("org_id"))
_CRM_SETTINGS = select(_S.c.settings).where(_S.c.org_id == bindparam("org_id"))


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
    org = conn.execute(_ORG_SETTINGS, {"org_id": org_id}).scalar_one_or_none()
    crm = conn.execute(_CRM_SETTINGS, {"org_id": org_id}).scalar_one_or_none()
    return OrgSnapshot(
        version,
        OrgSettings() if org is None else from_json(OrgSettings, org),
        CrmSettings() if crm is None else from_json(CrmSettings, crm),
        tuple(load_configs(conn, schema.sync_configs.c.org_id == org_id)),
    )
