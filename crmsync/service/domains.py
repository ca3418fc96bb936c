"""Which rep mailboxes the service account may serve: its own domain and the admin's
additional domains."""

from __future__ import annotations

from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.domain.sync import ErrorType, SyncError


def domains_of(settings: OrgSettings) -> set[str]:
    """The email domains the service account may serve; empty means any."""
    domains = {d.strip().casefold() for d in settings.additional_domains if d.strip()}
    if settings.connection_method is ConnectionMethod.GOOGLE:
        # A Google service account's address is in its Cloud project's domain
        # (iam.gserviceaccount.com), never the reps': the Workspace domains are listed.
        return domains
    if "@" in settings.service_account:
        domains.add(settings.service_account.rsplit("@", 1)[1].casefold())
    elif "\\" in settings.service_account:
        domains.add(settings.service_account.split("\\", 1)[0].casefold())
    return domains


def mailbox_in_domains(email: str, settings: OrgSettings) -> bool:
    domains = domains_of(settings)
    return not domains or email.rsplit("@", 1)[-1].casefold() in domains


class NotInDomains(SyncError):
    error_type = ErrorType.AUTHENTICATION

    def __init__(self, email: str, settings: OrgSettings) -> None:
        domains = ", ".join(sorted(domains_of(settings)))
        super().__init__(
            f"{email} is outside the service account's domains ({domains}).",
            "Add the rep's email domain to the additional domains in the connection setup.",
        )
