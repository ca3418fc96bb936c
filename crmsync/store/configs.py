"""Org settings and sync configurations, stored as rows and read back as domain values."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from crmsync.domain.records import User
from crmsync.domain.settings import (
    ContactSettings,
    Coverage,
    EventSettings,
    OrgSettings,
    SyncConfig,
)
from crmsync.store import schema
from crmsync.store.codec import from_json, to_json
from crmsync.store.database import StoreBase, insert_for
from crmsync.store.exceptions import ConfigConflict
from crmsync.store.settings_versions import bump_settings_version

DEFAULT_ORG = "default"

_O = schema.org_settings
_K = schema.sync_configs
_A = schema.config_assignments

# Built once: every cycle that finds the settings version moved reads them.
_ORG_SETTINGS = select(_O.c.settings).where(_O.c.org_id == bindparam("org_id"))

_USER = "user"
_PROFILE = "profile"


class ConfigsMixin(StoreBase):
    """Org settings (one per org) and named sync configurations with their assignments.

    Assigned ids are read back sorted and without repeats. A user, or a profile, is
    assigned to at most one configuration per org.
    """

    def org_settings(self, org_id: str = DEFAULT_ORG) -> OrgSettings:
        """The org's settings; defaults for an org never saved."""
        with self._read() as conn:
            return read_org_settings(conn, org_id)

    def save_org_settings(self, settings: OrgSettings, org_id: str = DEFAULT_ORG) -> None:
        """Replace the org's settings."""
        with self._write() as conn:
            stmt = insert_for(conn)(_O).values(org_id=org_id, settings=to_json(settings))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["org_id"], set_={"settings": stmt.excluded.settings}
                )
            )
            bump_settings_version(conn, org_id)

    def save_config(self, config: SyncConfig, org_id: str = DEFAULT_ORG) -> None:
        """Insert or replace the configuration named ``config.name`` in the org.

        Raises `ConfigConflict` (and changes nothing) if one of its users or profiles is
        assigned to another configuration of the org.
        """
        try:
            with self._write() as conn:
                _write_config(conn, config, org_id)
                bump_settings_version(conn, org_id)
        except IntegrityError:
            raise ConfigConflict(
                f"a user or profile of {config.name!r} is assigned to another configuration"
            ) from None

    def replace_configs(self, configs: list[SyncConfig], org_id: str = DEFAULT_ORG) -> None:
        """Make ``configs`` the org's configurations, all or nothing (assignments may move
        between them). Raises `ConfigConflict` if two share a user or profile."""
        try:
            with self._write() as conn:
                conn.execute(delete(_K).where(_K.c.org_id == org_id))
                for config in configs:
                    _write_config(conn, config, org_id)
                bump_settings_version(conn, org_id)
        except IntegrityError:
            raise ConfigConflict("two configurations share a user or profile, or a name") from None

    def delete_config(self, name: str, org_id: str = DEFAULT_ORG) -> bool:
        """Remove the configuration and its assignments; returns whether it existed."""
        with self._write() as conn:
            stmt = delete(_K).where(_K.c.org_id == org_id, _K.c.name == name)
            bump_settings_version(conn, org_id)
            return conn.execute(stmt).rowcount > 0

    def config(self, name: str, org_id: str = DEFAULT_ORG) -> SyncConfig | None:
        """The named configuration, or ``None``."""
        with self._read() as conn:
            found = load_configs(conn, (_K.c.org_id == org_id) & (_K.c.name == name))
        return found[0] if found else None

    def configs(self, org_id: str = DEFAULT_ORG) -> list[SyncConfig]:
        """Every configuration of the org, active or not, ordered by name."""
        with self._read() as conn:
            return load_configs(conn, _K.c.org_id == org_id)

    def effective_config(self, user: User, org_id: str = DEFAULT_ORG) -> SyncConfig | None:
        """The active configuration ``user`` syncs under, or ``None`` (`Coverage`'s rule).

        A direct assignment of the user wins over one of the user's profile; inactive
        configurations are ignored (an inactive direct assignment falls back to the
        profile's active configuration).
        """
        subjects = [(_A.c.subject == _USER) & (_A.c.subject_id == user.id)]
        if user.profile_id is not None:
            subjects.append((_A.c.subject == _PROFILE) & (_A.c.subject_id == user.profile_id))
        # Only the configurations that could cover the user (at most two); Coverage picks.
        assigning = select(_A.c.config_id).where(_A.c.org_id == org_id, or_(*subjects))
        with self._read() as conn:
            candidates = load_configs(conn, _K.c.id.in_(assigning))
        return Coverage(candidates).config_of(user)


def read_org_settings(conn: Connection, org_id: str) -> OrgSettings:
    """The org's settings, read in ``conn``'s transaction; defaults for an org never saved."""
    data = conn.execute(_ORG_SETTINGS, {"org_id": org_id}).scalar_one_or_none()
    return OrgSettings() if data is None else from_json(OrgSettings, data)


def _write_config(conn: Connection, config: SyncConfig, org_id: str) -> None:
    settings = {"contacts": to_json(config.contacts), "events": to_json(config.events)}
    row = {"active": config.active, "description": config.description, "settings": settings}
    config_id = conn.execute(
        select(_K.c.id).where(_K.c.org_id == org_id, _K.c.name == config.name)
    ).scalar_one_or_none()
    if config_id is None:
        config_id = conn.execute(
            insert(_K).values(org_id=org_id, name=config.name, **row)
        ).inserted_primary_key[0]
    else:
        conn.execute(update(_K).where(_K.c.id == config_id).values(row))
        conn.execute(delete(_A).where(_A.c.config_id == config_id))
    assignments = [
        {"config_id": config_id, "org_id": org_id, "subject": s, "subject_id": i}
        for s, ids in ((_USER, config.user_ids), (_PROFILE, config.profile_ids))
        for i in sorted(set(ids))
    ]
    if assignments:
        conn.execute(insert(_A), assignments)


def load_configs(conn: Connection, where: ColumnElement[bool]) -> list[SyncConfig]:
    rows = conn.execute(select(_K).where(where).order_by(_K.c.name)).all()
    ids = [r.id for r in rows]
    assigned: dict[tuple[int, str], list[str]] = {}
    if ids:
        q = select(_A.c.config_id, _A.c.subject, _A.c.subject_id).where(_A.c.config_id.in_(ids))
        for config_id, subject, subject_id in conn.execute(q):
            assigned.setdefault((config_id, subject), []).append(subject_id)
    return [
        SyncConfig(
            name=r.name,
            active=r.active,
            description=r.description,
            # Sorted here: database collations disagree.
            user_ids=tuple(sorted(assigned.get((r.id, _USER), ()))),
            profile_ids=tuple(sorted(assigned.get((r.id, _PROFILE), ()))),
            contacts=from_json(ContactSettings, r.settings.get("contacts", {})),
            events=from_json(EventSettings, r.settings.get("events", {})),
        )
        for r in rows
    ]
