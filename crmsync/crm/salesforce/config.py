"""How crmsync reaches one Salesforce org: URL, API version, flow and credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_API_VERSION = "62.0"
# The external-id custom field holding crmsync's marker on Contact, Account and Event.
DEFAULT_MARKER_FIELD = "CrmSync_Key__c"


class AuthFlow(StrEnum):
    """The two server-to-server OAuth 2.0 flows Salesforce offers."""

    JWT_BEARER = "jwt_bearer"  # a certificate on the app; ``sub`` = an integration user
    CLIENT_CREDENTIALS = "client_credentials"  # the app's Run-As user; needs My Domain


@dataclass(frozen=True)
class SalesforceConfig:
    """One org. ``instance_url`` is the My Domain URL (``https://acme.my.salesforce.com``,
    a sandbox's ``...sandbox.my.salesforce.com``); tokens are requested there.

    The JWT bearer flow signs with ``private_key_pem`` for ``username``; its audience is
    ``https://test.salesforce.com`` for a sandbox, else ``https://login.salesforce.com``.
    The client-credentials flow sends ``client_secret``. Secrets never appear in ``repr``.
    """

    instance_url: str
    client_id: str
    flow: AuthFlow = AuthFlow.JWT_BEARER
    username: str = ""
    private_key_pem: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    sandbox: bool = False
    audience: str = ""
    api_version: str = DEFAULT_API_VERSION
    marker_field: str = DEFAULT_MARKER_FIELD
    timeout: float = 60.0
    # Untrusted input is bounded before it is parsed: a query page of 2,000 records with
    # long descriptions stays far below this.
    max_response_bytes: int = 32 * 1024 * 1024

    @property
    def base_url(self) -> str:
        return self.instance_url.rstrip("/")

    @property
    def jwt_audience(self) -> str:
        if self.audience:
            return self.audience
        return "https://test.salesforce.com" if self.sandbox else "https://login.salesforce.com"

    def problems(self) -> list[str]:
        """Why this configuration cannot work, one sentence each (empty: it can)."""
        found = []
        if not self.instance_url.startswith(("https://", "http://")):
            found.append("the My Domain URL must start with https://")
        if not self.client_id:
            found.append("the app's consumer key (client id) is missing")
        if self.flow is AuthFlow.JWT_BEARER:
            if not self.username:
                found.append("the JWT bearer flow needs the integration user's username")
            if "PRIVATE KEY" not in self.private_key_pem:
                found.append("the JWT bearer flow needs the certificate's PEM private key")
        elif not self.client_secret:
            found.append("the client-credentials flow needs the app's consumer secret")
        return found
