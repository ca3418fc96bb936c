"""What an admin may save as the org's CRM section, checked the same way by `crmsync setup
salesforce`, the Setup page, the REST API and `config apply` (the CRM-side companion of
`validation`). Each problem is tied to the setting it is about."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crmsync.admin.validation import credentials_in_url_problem
from crmsync.domain.crm_settings import CrmSettings, SalesforceFlow

# The hosts a plain-http My Domain URL may name: this machine only (a test fake, or a
# tunnel the admin runs), never a network path where the token could be read.
_LOOPBACK = frozenset({"127.0.0.1", "::1"})
_API_VERSION = re.compile(r"\d{2,3}\.0")
_CUSTOM_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}__c")


def my_domain_url_problem(url: str) -> str | None:
    """Why ``url`` is no My Domain URL crmsync can use, or ``None``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return "not a valid URL"
    scheme = parts.scheme.lower()
    if scheme == "http" and parts.hostname in _LOOPBACK:
        return None
    if scheme != "https":
        return (
            "must start with https:// (plain http only for 127.0.0.1), e.g. "
            "https://acme.my.salesforce.com"
        )
    if not parts.hostname:
        return "must name a host, e.g. https://acme.my.salesforce.com"
    if parts.path.strip("/") or parts.query:
        return "is the org's address only, without a path, e.g. https://acme.my.salesforce.com"
    return credentials_in_url_problem(url)


def crm_settings_problems(
    settings: CrmSettings, *, secret: str | None, secret_stored: bool
) -> list[tuple[str, str]]:
    """Why ``settings`` cannot be saved, as (setting, problem) pairs (empty: they can).

    ``secret``: the private key or consumer secret given with the settings (``None``: not
    given); ``secret_stored``: one is stored already and is kept.
    """
    if not settings.is_salesforce:
        return []
    problems: list[tuple[str, str]] = []
    url = settings.my_domain_url.strip()
    if not url:
        problems.append(("my_domain_url", "the org's My Domain URL is required"))
    elif problem := my_domain_url_problem(url):
        problems.append(("my_domain_url", problem))
    elif ".sandbox.my.salesforce.com" in url.lower() and not settings.sandbox:
        problems.append(("sandbox", "the My Domain URL is a sandbox's: mark the org as a sandbox"))
    if not _API_VERSION.fullmatch(settings.api_version.strip()):
        problems.append(("api_version", "an API version such as 62.0"))
    if not settings.client_id.strip():
        problems.append(("client_id", "the app's consumer key (client id) is required"))
    if not _CUSTOM_FIELD.fullmatch(settings.marker_field.strip()):
        problems.append(("marker_field", "the API name of a custom field, such as CrmSync_Key__c"))
    jwt = settings.flow is SalesforceFlow.JWT_BEARER
    if jwt and not settings.username.strip():
        problems.append(
            ("username", "the JWT bearer flow signs in as the integration user: its username")
        )
    if secret:
        if jwt and "PRIVATE KEY" not in secret:
            problems.append(
                ("secret", "the JWT bearer flow needs the certificate's PEM private key")
            )
    elif not secret_stored:
        needed = "the certificate's PEM private key" if jwt else "the app's consumer secret"
        problems.append(("secret", f"{needed} is required (none is stored yet)"))
    return problems
