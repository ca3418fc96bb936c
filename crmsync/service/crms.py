"""The org's CRM as the service opens it: the built-in CRM, or one shared Salesforce org.

A Salesforce org's change feed saves API calls only when every rep's cycle reads the same
`SalesforceCrm` (one watermark query per object per interval for the whole org, DESIGN:
Metered CRMs). The scheduler runs each worker with a `SyncService` of its own and the
console has one more, so the process keeps one `SalesforceCrm` per org and setup in
`SHARED` and hands it to every service of that org; it is closed when the last one lets
go. A change of the CRM section or of the stored key makes a new one (at each service's
next cycle, `SyncService.open_cycle`, or a dispatcher's next round, which opens no cycle,
`SyncService.follow_settings`).

The credential (the certificate's PEM private key, or the consumer secret) is read from
the encrypted secrets store; it is registered with the log redaction and appears in no
key, repr or message here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmsync.crm.builtin import BuiltinCrm
from crmsync.crm.salesforce import AuthFlow, SalesforceConfig, SalesforceCrm
from crmsync.domain.crm_settings import CrmSettings, SalesforceFlow
from crmsync.service.deployment import Deployment
from crmsync.service.logs import redact
from crmsync.store import StateStore

# The secrets-store name of the Salesforce app's credential.
SALESFORCE_SECRET = "salesforce_credential"
# How long one poll of the org's change feed serves every rep's cycle.
DEFAULT_POLL_INTERVAL = 60.0
WRITES_PAUSED_TEXT = "API allocation used up: writes paused until usage drops"


def salesforce_config(settings: CrmSettings, secret: str | None) -> SalesforceConfig:
    """The client's configuration from the CRM section and the stored credential."""
    redact(secret)
    jwt = settings.flow is SalesforceFlow.JWT_BEARER
    return SalesforceConfig(
        instance_url=settings.my_domain_url.strip(),
        client_id=settings.client_id.strip(),
        flow=AuthFlow.JWT_BEARER if jwt else AuthFlow.CLIENT_CREDENTIALS,
        username=settings.username.strip(),
        private_key_pem=(secret or "") if jwt else "",
        client_secret="" if jwt else (secret or ""),
        sandbox=settings.sandbox,
        api_version=settings.api_version.strip(),
        marker_field=settings.marker_field.strip(),
    )


def setup_problems(settings: CrmSettings, secret: str | None) -> list[str]:
    """Why the Salesforce section cannot work as saved (empty: it may)."""
    if not settings.is_salesforce:
        return []
    return salesforce_config(settings, secret).problems()


@dataclass(frozen=True)
class CrmKey:
    """What makes two services' Salesforce CRMs the same object: the org (its state
    database), the CRM section, a digest of the credential and the feed's interval."""

    org: str
    settings: CrmSettings
    secret_digest: str
    poll_interval: float

    @classmethod
    def of(
        cls, org: str, settings: CrmSettings, secret: str | None, poll_interval: float
    ) -> CrmKey:
        digest = hashlib.sha256((secret or "").encode()).hexdigest()
        return cls(org, settings, digest, poll_interval)


@dataclass(frozen=True)
class CrmApiState:
    """A metered CRM's API numbers as this process knows them."""

    calls_made: int
    used: int | None
    limit: int | None
    writes_stopped: bool

    @property
    def writes_paused(self) -> bool:
        spent = self.used is not None and self.limit is not None and self.used >= self.limit
        return self.writes_stopped or spent


class SharedCrms:
    """Reference-counted `SalesforceCrm` objects, one per `CrmKey`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crms: dict[CrmKey, tuple[SalesforceCrm, int]] = {}
        self._recorded: dict[int, int] = {}  # id(crm) -> calls already counted

    def acquire(self, key: CrmKey, make: Callable[[], SalesforceCrm]) -> SalesforceCrm:
        with self._lock:
            found = self._crms.get(key)
            crm = found[0] if found else make()
            self._crms[key] = (crm, (found[1] if found else 0) + 1)
            self._recorded.setdefault(id(crm), 0)
            return crm

    def release(self, key: CrmKey) -> None:
        with self._lock:
            found = self._crms.get(key)
            if found is None:
                return
            crm, users = found
            if users > 1:
                self._crms[key] = (crm, users - 1)
                return
            del self._crms[key]
            self._recorded.pop(id(crm), None)
        crm.close()

    def uncounted_calls(self, crm: SalesforceCrm) -> int:
        """Calls ``crm`` made since the last time this was asked (exactly once each, however
        many services share it)."""
        with self._lock:
            made = crm.calls_made
            before = self._recorded.get(id(crm), made)
            self._recorded[id(crm)] = made
            return made - before

    def state_of(self, org: str) -> CrmApiState | None:
        """The API numbers of the org's live Salesforce CRM in this process, if any."""
        with self._lock:
            crms = [crm for key, (crm, _) in self._crms.items() if key.org == org]
        if not crms:
            return None
        return api_state(crms[-1])


def api_state(crm: Any) -> CrmApiState | None:
    """``crm``'s API numbers; ``None`` for a CRM that is not metered (the built-in one)."""
    if not isinstance(crm, SalesforceCrm):
        return None
    usage = crm.usage
    return CrmApiState(
        crm.calls_made,
        usage.used if usage else None,
        usage.limit if usage else None,
        crm.conn.writes_stopped,
    )


SHARED = SharedCrms()


Crm = BuiltinCrm | SalesforceCrm


def org_key(deployment: Deployment) -> str:
    # The state database identifies the org (two deployments may name orgs alike).
    return f"{deployment.state_url}#{deployment.org}"


def org_api_state(deployment: Deployment) -> CrmApiState | None:
    """The API numbers of the org's Salesforce CRM open in this process (for metrics:
    no API call, no database read)."""
    return SHARED.state_of(org_key(deployment))


class OrgCrm:
    """One `SyncService`'s handle on its org's CRM: a `BuiltinCrm` of its own, or the
    process's shared `SalesforceCrm` for the org."""

    def __init__(
        self,
        deployment: Deployment,
        store: StateStore,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        shared: SharedCrms = SHARED,
        fixed: tuple[CrmSettings, str | None] | None = None,
    ) -> None:
        """``fixed``: a CRM section and credential to use instead of the saved ones (to
        check a configuration document against the CRM it switches to); such a CRM is
        the handle's own, never shared."""
        self.deployment = deployment
        self.store = store
        self.poll_interval = poll_interval
        self.shared = shared
        self.fixed = fixed
        self._crm: Crm | None = None
        self._key: CrmKey | None = None

    @property
    def org(self) -> str:
        return org_key(self.deployment)

    @property
    def crm(self) -> Crm:
        if self._crm is None:
            self._open()
        assert self._crm is not None
        return self._crm

    def _wanted(
        self, saved: CrmSettings | None = None
    ) -> tuple[CrmSettings, str | None, CrmKey | None]:
        """The CRM section (``saved``, when the caller read it), its stored credential and
        the key of the shared CRM they make (``None``: not shared)."""
        if self.fixed is not None:
            return self.fixed[0], self.fixed[1], None
        settings = self.store.crm_settings() if saved is None else saved
        if not settings.is_salesforce:
            return settings, None, None
        secret = self.store.get_secret(SALESFORCE_SECRET)
        return settings, secret, CrmKey.of(self.org, settings, secret, self.poll_interval)

    def _open(self) -> None:
        settings, secret, key = self._wanted()
        if not settings.is_salesforce:
            self._crm = BuiltinCrm(self.deployment.crm_url)
            return
        if key is None:  # a fixed CRM: the handle's own
            config = salesforce_config(settings, secret)
            self._crm = SalesforceCrm(config, poll_interval=self.poll_interval)
            return
        config = salesforce_config(settings, secret)
        self._crm = self.shared.acquire(
            key, lambda: SalesforceCrm(config, poll_interval=self.poll_interval)
        )
        self._key = key

    def refresh(self, saved: CrmSettings | None = None) -> None:
        """Reopen the CRM if its section (``saved``, when the caller read it) or
        credential changed since it was opened."""
        if self._crm is None:
            return
        _, _, key = self._wanted(saved)
        if key != self._key:
            self.close()

    def close(self) -> None:
        crm, key = self._crm, self._key
        self._crm = self._key = None
        if key is not None:
            self.shared.release(key)
        elif crm is not None:
            crm.close()

    def problems(self, saved: CrmSettings | None = None) -> list[str]:
        """Why the saved CRM section (``saved``, when the caller read it) cannot work
        (empty: it may)."""
        settings, secret, _ = self._wanted(saved)
        return setup_problems(settings, secret)

    def api_state(self) -> CrmApiState | None:
        return None if self._crm is None else api_state(self._crm)

    def count_calls(self, cycles: int = 0) -> None:
        """Record the API calls the shared CRM made since they were last recorded (by any
        service of this process), and ``cycles`` rep cycles."""
        crm = self._crm
        if not isinstance(crm, SalesforceCrm):
            return
        self.store.record_api_calls(self.shared.uncounted_calls(crm), cycles)
