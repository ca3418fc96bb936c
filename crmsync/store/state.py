"""`StateStore`: the one object the service opens to reach the state database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from crmsync.store.accounts import AccountsMixin
from crmsync.store.activity import ActivityMixin
from crmsync.store.audit import AuditMixin
from crmsync.store.configs import ConfigsMixin
from crmsync.store.crm_settings import CrmSettingsMixin
from crmsync.store.cycles import CycleMixin
from crmsync.store.database import utc_now
from crmsync.store.error_report import ErrorReportMixin
from crmsync.store.fencing import FencedState, LeaseMixin
from crmsync.store.links import LinksMixin
from crmsync.store.rep_credentials import RepCredentialsMixin
from crmsync.store.status import StatusMixin


class StateStore(
    AuditMixin,
    LinksMixin,
    ErrorReportMixin,
    StatusMixin,
    CycleMixin,
    ActivityMixin,
    ConfigsMixin,
    CrmSettingsMixin,
    RepCredentialsMixin,
    LeaseMixin,
    AccountsMixin,
):
    """Links, cursors, statuses, error report, activity, settings, secrets and leases.

    Opening migrates the database to this version's schema (creating it if empty); it is
    safe for several processes to open one database at once. Every method runs in its own
    short transaction and the store may be shared between threads. Satisfies
    `crmsync.engine.ports.SyncState`. ``clock`` (aware UTC ``now``) is for tests.
    """

    def __init__(
        self,
        url: str,
        secrets_key_path: Path | str,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._secrets_key_path = Path(secrets_key_path)
        super().__init__(url, clock=clock)

    def fenced(self, rep_id: str, fence: int) -> FencedState:
        """A view of this store whose writes for ``rep_id`` require ``fence`` to hold."""
        return FencedState(self, rep_id, fence)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
