"""The org's CRM section and the count of API calls spent on a metered CRM."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, delete, func, select

from crmsync.domain.crm_settings import CrmSettings
from crmsync.store import schema
from crmsync.store.activity import hour_of
from crmsync.store.codec import from_json, to_json
from crmsync.store.configs import DEFAULT_ORG
from crmsync.store.database import StoreBase, insert_for
from crmsync.store.settings_versions import bump_settings_version

_S = schema.crm_settings
_C = schema.crm_api_calls


# Built once: every cycle that finds the settings version moved reads it.
_CRM_SETTINGS = select(_S.c.settings).where(_S.c.org_id == bindparam("org_id"))


def read_crm_settings(conn: Connection, org_id: str) -> CrmSettings:
    """The org's CRM section, read in ``conn``'s transaction (the built-in CRM until
    saved)."""
    data = conn.execute(_CRM_SETTINGS, {"org_id": org_id}).scalar_one_or_none()
    return CrmSettings() if data is None else from_json(CrmSettings, data)


class CrmSettingsMixin(StoreBase):
    """``crm_settings`` / ``save_crm_settings`` (the built-in CRM until saved) and the
    hourly API-call counter (``record_api_calls``, ``api_calls_since``)."""

    def crm_settings(self, org_id: str = DEFAULT_ORG) -> CrmSettings:
        with self._read() as conn:
            return read_crm_settings(conn, org_id)

    def save_crm_settings(self, settings: CrmSettings, org_id: str = DEFAULT_ORG) -> None:
        with self._write() as conn:
            stmt = insert_for(conn)(_S).values(org_id=org_id, settings=to_json(settings))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["org_id"], set_={"settings": stmt.excluded.settings}
                )
            )
            bump_settings_version(conn, org_id)

    def record_api_calls(self, calls: int, cycles: int = 0, at: dt.datetime | None = None) -> None:
        """Add ``calls`` CRM API calls and ``cycles`` rep cycles made at ``at`` (default:
        now) to its hour."""
        if calls < 0 or cycles < 0:
            raise ValueError("calls and cycles must not be negative")
        if not (calls or cycles):
            return
        with self._write() as conn:
            stmt = insert_for(conn)(_C).values(
                hour=hour_of(at or self._clock()), calls=calls, cycles=cycles
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["hour"],
                    set_={
                        "calls": _C.c.calls + stmt.excluded.calls,
                        "cycles": _C.c.cycles + stmt.excluded.cycles,
                    },
                )
            )

    def api_calls_since(self, since: dt.datetime) -> tuple[int, int]:
        """(calls, cycles) counted in the hour buckets from the one holding ``since``."""
        stmt = select(
            func.coalesce(func.sum(_C.c.calls), 0), func.coalesce(func.sum(_C.c.cycles), 0)
        ).where(_C.c.hour >= hour_of(since))
        with self._read() as conn:
            calls, cycles = conn.execute(stmt).one()
        return int(calls), int(cycles)

    def prune_api_calls(self, older_than: dt.datetime) -> int:
        with self._write() as conn:
            return conn.execute(delete(_C).where(_C.c.hour < hour_of(older_than))).rowcount
