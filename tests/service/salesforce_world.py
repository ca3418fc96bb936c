"""A `SalesforceWorld`: one org whose CRM is the fake Salesforce, a real DAV server, and the
service syncing them, wired as `crmsync setup salesforce` and `crmsync setup dav` do.

People's edits reach Salesforce through `FakeOrg` directly (no API call counted), and the
mail server through a second DAV connection (`World`'s helpers).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from crmsync.domain.crm_settings import CrmKind, CrmSettings, SalesforceFlow
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import SyncConfig
from crmsync.groupware.dav import RetryPolicy, connect
from crmsync.service.deployment import Deployment
from crmsync.service.runner import RepReport, SyncService
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.fake_server import FakeSalesforce
from tests.crm.salesforce.harness import key_pair
from tests.servers import DavServerInfo
from tests.service.worlds import World

INTEGRATION_USER = "integration@example.com"


def fake_crm_settings(url: str, client_id: str = "", **overrides: Any) -> CrmSettings:
    values: dict[str, Any] = {
        "kind": CrmKind.SALESFORCE,
        "my_domain_url": url,
        "flow": SalesforceFlow.JWT_BEARER,
        "client_id": client_id,
        "username": INTEGRATION_USER,
    }
    values.update(overrides)
    return CrmSettings(**values)


def fake_salesforce(email: str, **options: Any) -> tuple[FakeSalesforce, str, str]:
    """A started fake org with the integration user and the rep ``email`` (profile
    "Sales"); returns it, the private key (PEM) and the rep's Salesforce id."""
    pem, public = key_pair()
    org = options.pop("org", None) or FakeOrg()
    profile = org.add_profile("Sales")
    org.add_user(INTEGRATION_USER, "Integration", username=INTEGRATION_USER)
    rep_id = org.add_user(email, "Rita Rep", profile_id=profile, time_zone="Europe/Paris")
    return FakeSalesforce(org, public_key=public, **options).start(), pem, rep_id


class SalesforceWorld(World):
    """`World` with the fake Salesforce as the org's CRM (the feed polled every cycle)."""

    def __init__(
        self,
        server: DavServerInfo,
        home: Path,
        config: SyncConfig,
        *,
        retry: RetryPolicy | None = None,
        **fake_options: Any,
    ) -> None:
        self.server = server
        self.home = home
        self.fake, pem, self.rep_id = fake_salesforce(server.email, **fake_options)
        self.org = self.fake.org
        self.service = SyncService(
            Deployment.from_env(home),
            retry=retry or RetryPolicy(base_delay=0.01),
            crm_poll_interval=0.0,
        )
        self.service.configure_server(server.settings(), server.password)
        self.service.configure_crm(fake_crm_settings(self.fake.url, self.fake.client_id), pem)
        self.rep = self.service.rep_by_email(server.email)
        self.service.store.save_config(replace(config, user_ids=(self.rep.id,)))
        self._connection = connect(server.settings(), server.password)
        self._mailbox = None

    def sync_allowing_errors(self) -> RepReport:
        return self.service.sync_rep(self.rep)

    def rows(self, sobject: str, **where: Any) -> list[dict[str, Any]]:
        """The org's live rows of ``sobject`` whose fields equal ``where``."""
        return [
            row
            for row in self.org.rows[sobject].values()
            if not row["IsDeleted"] and all(row.get(k) == v for k, v in where.items())
        ]

    def crm_records(self, kind: ItemKind) -> list[object]:
        side = self.service.crm.side(self.rep.id, kind)
        return sorted((s.record for s in side.changes(None, {}).items), key=repr)

    def close(self) -> None:
        super().close()
        self.fake.stop()
