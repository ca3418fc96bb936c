"""A Salesforce org for tests: the fake on 127.0.0.1, or a real org in live mode.

Live mode runs when CRMSYNC_SF_URL (My Domain URL), CRMSYNC_SF_CLIENT_ID, CRMSYNC_SF_USERNAME
and either CRMSYNC_SF_KEY_FILE (JWT bearer: the certificate's PEM private key) or
CRMSYNC_SF_CLIENT_SECRET (client credentials) are set; CRMSYNC_SF_SANDBOX=1 for a sandbox.
The rep is the integration user (CRMSYNC_SF_USERNAME) unless CRMSYNC_SF_REP_EMAIL names
another user. The org needs the marker field (CrmSync_Key__c) on Contact and Event
(`crmsync setup salesforce --create-fields` makes them).
Tests that need the fake's controls (sessions, locks, limits) skip in live mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from crmsync.crm.salesforce import AuthFlow, RetryPolicy, SalesforceConfig, SalesforceCrm
from crmsync.domain.records import User
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.fake_server import FakeSalesforce, new_key_pair

LIVE_VARS = ("CRMSYNC_SF_URL", "CRMSYNC_SF_CLIENT_ID", "CRMSYNC_SF_USERNAME")
REP_EMAIL = "ann@example.com"
_KEYS: list[tuple[str, object]] = []


def live() -> bool:
    return all(os.environ.get(v) for v in LIVE_VARS) and bool(
        os.environ.get("CRMSYNC_SF_KEY_FILE") or os.environ.get("CRMSYNC_SF_CLIENT_SECRET")
    )


def key_pair() -> tuple[str, object]:
    # Generating an RSA key costs ~0.1 s: one per test process is enough.
    if not _KEYS:
        _KEYS.append(new_key_pair())
    return _KEYS[0]


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class OrgHarness:
    crm: SalesforceCrm
    rep: User
    fake: FakeSalesforce | None
    sleeps: Sleeps

    def close(self) -> None:
        self.crm.close()
        if self.fake is not None:
            self.fake.stop()


def fake_harness(
    *,
    flow: AuthFlow = AuthFlow.JWT_BEARER,
    org: FakeOrg | None = None,
    poll_interval: float = 0.0,
    clock: object = None,
    **fake_options: object,
) -> OrgHarness:
    pem, public = key_pair()
    org = org or FakeOrg()
    profile = org.add_profile("Sales")
    org.add_user("integration@example.com", "Integration", username="integration@example.com")
    org.add_user(REP_EMAIL, "Ann", profile_id=profile, time_zone="Europe/Paris")
    org.add_user("bob@example.com", "Bob", profile_id=profile, time_zone="America/New_York")
    fake = FakeSalesforce(org, public_key=public, **fake_options).start()  # type: ignore[arg-type]
    config = SalesforceConfig(
        instance_url=fake.url,
        client_id=fake.client_id,
        flow=flow,
        username="integration@example.com",
        private_key_pem=pem,
        client_secret=fake.client_secret,
    )
    sleeps = Sleeps()
    options = {"clock": clock} if clock is not None else {}
    crm = SalesforceCrm(
        config,
        retry=RetryPolicy(sleep=sleeps, random=lambda: 0.5),
        poll_interval=poll_interval,
        **options,  # type: ignore[arg-type]
    )
    rep = crm.get_user_by_email(REP_EMAIL)
    assert rep is not None
    return OrgHarness(crm, rep, fake, sleeps)


def live_harness() -> OrgHarness:
    env = os.environ
    key_file = env.get("CRMSYNC_SF_KEY_FILE")
    config = SalesforceConfig(
        instance_url=env["CRMSYNC_SF_URL"],
        client_id=env["CRMSYNC_SF_CLIENT_ID"],
        flow=AuthFlow.JWT_BEARER if key_file else AuthFlow.CLIENT_CREDENTIALS,
        username=env["CRMSYNC_SF_USERNAME"],
        private_key_pem=Path(key_file).read_text() if key_file else "",
        client_secret=env.get("CRMSYNC_SF_CLIENT_SECRET", ""),
        sandbox=env.get("CRMSYNC_SF_SANDBOX") == "1",
    )
    sleeps = Sleeps()
    crm = SalesforceCrm(config, poll_interval=0.0)
    email = env.get("CRMSYNC_SF_REP_EMAIL")
    rep = crm.get_user_by_email(email) if email else None
    if rep is None:
        rep = next(u for u in crm.list_users() if u.email and u.active)
    return OrgHarness(crm, rep, None, sleeps)


def org_harness(**options: object) -> OrgHarness:
    return live_harness() if live() and not options else fake_harness(**options)  # type: ignore[arg-type]
