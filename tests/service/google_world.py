"""A `GoogleWorld`: one org whose mail server is Google Workspace, wired as `crmsync setup
google` does, against `FakeGoogle` served on 127.0.0.1 (or, in live mode, a real
Workspace: see `live_google`).

The CRM is the built-in one, or the fake Salesforce (`salesforce=True`). People's edits
reach the rep's Google account through a second, independent `GoogleConnection` (its own
token cache and limiters), as another calendar client's would.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from crmsync.domain.records import ItemKind
from crmsync.domain.settings import ConnectionMethod, OrgSettings, SyncConfig
from crmsync.groupware.dav import RetryPolicy
from crmsync.groupware.google import GoogleConnection, GoogleMailbox, open_google_mailbox
from crmsync.service.deployment import Deployment
from crmsync.service.mailboxes import google_config
from crmsync.service.runner import SyncService
from crmsync.transport.throttling import TenantLimiter
from tests.groupware.google.fake_google import service_account_key
from tests.groupware.google.fake_server import FakeGoogleServer
from tests.service.salesforce_world import fake_crm_settings, fake_salesforce
from tests.service.worlds import MailboxWorld

REP = "rep@example.com"
# The same variables as the contract suite's live mode (tests/groupware/google/harness.py).
LIVE_VARS = ("CRMSYNC_GOOGLE_KEY_FILE", "CRMSYNC_GOOGLE_REP_EMAIL")


def live_google() -> bool:
    """Whether the CRMSYNC_GOOGLE_* variables name a real Workspace to test against."""
    return all(os.environ.get(v) for v in LIVE_VARS)


def google_settings(url: str, domain: str = "example.com", **overrides: Any) -> OrgSettings:
    return OrgSettings(
        connection_method=ConnectionMethod.GOOGLE,
        server_url=url,
        additional_domains=(domain,),
        **overrides,
    )


class GoogleWorld(MailboxWorld):
    """One org: a rep in the CRM, the rep's Google account, the service syncing them."""

    def __init__(
        self,
        home: Path,
        config: SyncConfig,
        *,
        salesforce: bool = False,
        server: FakeGoogleServer | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.home = home
        self.live = live_google() and server is None
        if self.live:
            self.server = None
            self.email = os.environ["CRMSYNC_GOOGLE_REP_EMAIL"]
            self.key = Path(os.environ["CRMSYNC_GOOGLE_KEY_FILE"]).read_text()
            url, domain = "", self.email.rpartition("@")[2]
            # A group of its own per run, removed by `close` with its contacts.
            extra = {"contacts_folder": f"CRM_Sync test {secrets.token_hex(4)}"}
        else:
            self.server = server or FakeGoogleServer()
            self.email, self.key = REP, service_account_key()
            url, domain, extra = self.server.url, "example.com", {}
        self.settings = google_settings(url, domain, **{**extra, **(settings or {})})
        self.salesforce = None
        self.service = SyncService(
            Deployment.from_env(home),
            retry=RetryPolicy(max_attempts=3, base_delay=0.01),
            crm_poll_interval=0.0,
        )
        self.service.configure_server(self.settings, self.key)
        if salesforce:
            self.salesforce, pem, self.sf_rep_id = fake_salesforce(self.email)
            self.service.configure_crm(
                fake_crm_settings(self.salesforce.url, self.salesforce.client_id), pem
            )
            self.rep = self.service.rep_by_email(self.email)
        else:
            self.rep = self.service.crm.create_user(self.email, "Rita Rep")
        self.service.store.save_config(replace(config, user_ids=(self.rep.id,)))
        self.crm = self.service.crm
        limiters: dict[str, TenantLimiter] = {}
        self.connection = GoogleConnection(
            google_config(self.settings, self.key),
            limiters=lambda name: limiters.setdefault(name, TenantLimiter(name)),
        )
        self._mailbox: GoogleMailbox | None = None

    @property
    def fake(self) -> Any:
        assert self.server is not None, "not in live mode"
        return self.server.fake

    @property
    def mailbox(self) -> GoogleMailbox:
        """The rep's account as another client sees it (the contact group made if missing)."""
        if self._mailbox is None:
            self._mailbox = open_google_mailbox(
                self.connection.config, self.email, connection=self.connection
            )
        return self._mailbox

    def side(self, kind: ItemKind) -> Any:
        return self.mailbox.contacts if kind is ItemKind.CONTACT else self.mailbox.events

    def crm_records(self, kind: ItemKind) -> list[object]:
        side = self.crm.side(self.rep.id, kind)
        return sorted((s.record for s in side.changes(None, {}).items), key=repr)

    def close(self) -> None:
        if self.live and self._mailbox is not None:
            self.connection.request(
                "people",
                self.email,
                "DELETE",
                f"/{self._mailbox.contacts.group}",
                params={"deleteContacts": "true"},
            )
        self.connection.close()
        self.service.close()
        if self.server is not None:
            self.server.stop()
        if self.salesforce is not None:
            self.salesforce.stop()
