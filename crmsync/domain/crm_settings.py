"""Which CRM an org syncs, and how crmsync reaches it: the org settings' CRM section.

The built-in CRM (crmsync's own tables) is the default and needs nothing. A Salesforce org
is reached through its My Domain URL with one of the two server-to-server OAuth 2.0 flows;
the private key (JWT bearer) or the consumer secret (client credentials) is a secret,
stored encrypted apart from these values and never part of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SALESFORCE_API_VERSION = "62.0"
SALESFORCE_MARKER_FIELD = "CrmSync_Key__c"


class CrmKind(StrEnum):
    BUILTIN = "builtin"
    SALESFORCE = "salesforce"


class SalesforceFlow(StrEnum):
    """The server-to-server OAuth 2.0 flows Salesforce offers."""

    # A connected app (or external client app) with a certificate; the token is the
    # integration user's (``username``), signed with the certificate's private key.
    JWT_BEARER = "jwt_bearer"
    # The app's consumer key and secret; the token is the app's Run-As user's.
    CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True)
class CrmSettings:
    """The org's CRM. For Salesforce: ``my_domain_url`` (``https://acme.my.salesforce.com``
    or a sandbox's ``https://acme--uat.sandbox.my.salesforce.com``), the REST
    ``api_version``, the ``flow``, the app's consumer key (``client_id``), the integration
    user's ``username`` (JWT bearer; with client credentials it is informational), whether
    the org is a ``sandbox`` (the JWT audience), and the external-id field holding
    crmsync's marker on Contact, Account and Event."""

    kind: CrmKind = CrmKind.BUILTIN
    my_domain_url: str = ""
    api_version: str = SALESFORCE_API_VERSION
    flow: SalesforceFlow = SalesforceFlow.JWT_BEARER
    client_id: str = ""
    username: str = ""
    sandbox: bool = False
    marker_field: str = SALESFORCE_MARKER_FIELD

    @property
    def is_salesforce(self) -> bool:
        return self.kind is CrmKind.SALESFORCE

    @property
    def secret_label(self) -> str:
        """What the stored secret is, as an admin would call it."""
        if self.flow is SalesforceFlow.JWT_BEARER:
            return "the certificate's PEM private key"
        return "the app's consumer secret"
