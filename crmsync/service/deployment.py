"""Where one crmsync deployment keeps its databases and keys, per org.

A deployment serves one or more orgs (say, production and a sandbox copy of it). Each
org has its own CRM and state databases, so nothing of one (links, statuses, a CRM copied
with the same ids) can leak into another; the deployment ties them together where the
spec needs it: a mailbox may be in only one active configuration across all its orgs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_ORG = "default"
_ORG_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class Deployment:
    """One org's databases and the deployment's home folder.

    ``CRMSYNC_HOME`` (default: the user's state directory) holds the default org's SQLite
    files and the secrets key; ``CRMSYNC_STATE_URL`` and ``CRMSYNC_CRM_URL`` point the
    default org's databases elsewhere, e.g. ``postgresql+psycopg://...``. Other orgs live
    in ``HOME/orgs/NAME/`` (their URLs in its ``org.json``); ``CRMSYNC_ORG`` picks one.
    ``CRMSYNC_REDIS_URL`` (``redis://host:6379/0``), for every org, makes the rate limits
    per Microsoft 365 tenant and Google project shared by every crmsync process.
    """

    home: Path
    state_url: str
    crm_url: str
    org: str = DEFAULT_ORG

    @staticmethod
    def home_from_env() -> Path:
        """``CRMSYNC_HOME``, else the user's state directory (which may not exist yet)."""
        return Path(os.environ.get("CRMSYNC_HOME") or platformdirs.user_state_dir("crmsync"))

    @staticmethod
    def redis_url_from_env() -> str | None:
        """``CRMSYNC_REDIS_URL``: where the shared rate limits live (unset: in-process)."""
        return os.environ.get("CRMSYNC_REDIS_URL") or None

    @classmethod
    def from_env(cls, home: Path | None = None, org: str | None = None) -> Deployment:
        home = home or cls.home_from_env()
        home.mkdir(parents=True, exist_ok=True)
        org = org or os.environ.get("CRMSYNC_ORG") or DEFAULT_ORG
        if org != DEFAULT_ORG:
            return cls._registered(home, org)
        return cls(
            home=home,
            state_url=os.environ.get("CRMSYNC_STATE_URL") or f"sqlite:///{home / 'state.sqlite'}",
            crm_url=os.environ.get("CRMSYNC_CRM_URL") or f"sqlite:///{home / 'crm.sqlite'}",
        )

    @classmethod
    def _registered(cls, home: Path, org: str) -> Deployment:
        file = home / "orgs" / org / "org.json"
        if not file.exists():
            raise LookupError(f"no org named {org!r}; add it with `crmsync org add {org}`")
        urls = json.loads(file.read_text())
        return cls(home, urls["state_url"], urls["crm_url"], org)

    @classmethod
    def add_org(
        cls, home: Path, org: str, state_url: str | None = None, crm_url: str | None = None
    ) -> Deployment:
        """Register another org of the deployment (SQLite in its folder by default)."""
        if not _ORG_NAME.fullmatch(org) or org == DEFAULT_ORG:
            raise ValueError(
                f"{org!r} cannot name an org: use lower-case letters, digits, - and _ "
                f"(and not {DEFAULT_ORG!r})"
            )
        folder = home / "orgs" / org
        if (folder / "org.json").exists():
            raise ValueError(f"the org {org!r} exists already")
        folder.mkdir(parents=True)
        urls = {
            "state_url": state_url or f"sqlite:///{folder / 'state.sqlite'}",
            "crm_url": crm_url or f"sqlite:///{folder / 'crm.sqlite'}",
        }
        (folder / "org.json").write_text(json.dumps(urls, indent=2) + "\n")
        return cls(home, urls["state_url"], urls["crm_url"], org)

    def orgs(self) -> list[Deployment]:
        """Every org of the deployment, this one included, the default org first."""
        found = [Deployment.from_env(self.home, DEFAULT_ORG)]
        orgs_dir = self.home / "orgs"
        if orgs_dir.is_dir():
            found += [
                Deployment._registered(self.home, folder.name)
                for folder in sorted(orgs_dir.iterdir())
                if (folder / "org.json").exists()
            ]
        return found

    @property
    def secrets_key_path(self) -> Path:
        return self.home / "secrets.key"
