"""Where one crmsync deployment keeps its databases and keys."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Deployment:
    """The deployment's home folder and database URLs.

    ``CRMSYNC_HOME`` (default: the user's state directory) holds the SQLite files and the
    secrets key; ``CRMSYNC_STATE_URL`` and ``CRMSYNC_CRM_URL`` point either database
    elsewhere, e.g. ``postgresql+psycopg://...``.
    """

    home: Path
    state_url: str
    crm_url: str

    @classmethod
    def from_env(cls, home: Path | None = None) -> Deployment:
        home = home or Path(
            os.environ.get("CRMSYNC_HOME") or platformdirs.user_state_dir("crmsync")
        )
        home.mkdir(parents=True, exist_ok=True)
        return cls(
            home=home,
            state_url=os.environ.get("CRMSYNC_STATE_URL") or f"sqlite:///{home / 'state.sqlite'}",
            crm_url=os.environ.get("CRMSYNC_CRM_URL") or f"sqlite:///{home / 'crm.sqlite'}",
        )

    @property
    def secrets_key_path(self) -> Path:
        return self.home / "secrets.key"
