"""`EwsConfig`: how crmsync reaches an on-premises Exchange server (2016, 2019, SE) over EWS."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EwsAuth(StrEnum):
    NTLM = "NTLM"
    BASIC = "basic"


@dataclass(frozen=True)
class EwsRetry:
    """How long to keep trying a busy or failing server before giving up on this cycle.

    ``max_attempts`` counts every try of one operation; the wait before a retry is the
    server's ``BackOffMilliseconds`` when it sends one (capped at ``max_back_off``), else
    ``base_delay`` doubled per attempt.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_back_off: float = 60.0
    timeout: float = 60.0

    def delay(self, attempt: int, back_off: float | None = None) -> float:
        if back_off:
            return min(back_off, self.max_back_off)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_back_off)


@dataclass(frozen=True)
class EwsConfig:
    """The service account and where its EWS endpoint is.

    ``service_endpoint`` is the full EWS URL (``https://mail.example.com/EWS/Exchange.asmx``);
    leave it empty to use Autodiscover with the service account's address. ``username`` is
    ``user@domain`` or ``DOMAIN\\user`` (some networks accept only one of the two).
    """

    username: str
    password: str
    service_endpoint: str = ""
    auth: EwsAuth = EwsAuth.NTLM
    additional_domains: tuple[str, ...] = ()
    contacts_folder: str = "CRM_Sync"
    retry: EwsRetry = EwsRetry()

    @property
    def autodiscover(self) -> bool:
        return not self.service_endpoint

    @property
    def other_username_format(self) -> str:
        """The same account in the other accepted format (for the 401 hint), if derivable."""
        if "\\" in self.username:
            domain, _, user = self.username.partition("\\")
            return f"{user}@{domain}" if "." in domain else ""
        user, at, domain = self.username.partition("@")
        return f"{domain}\\{user}" if at else ""

    def __repr__(self) -> str:  # never show the password
        return (
            f"EwsConfig(username={self.username!r}, service_endpoint={self.service_endpoint!r}, "
            f"auth={self.auth.value!r})"
        )
