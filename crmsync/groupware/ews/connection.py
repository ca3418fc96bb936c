"""`EwsConnection`: the service account's session with Exchange, and EWS errors in admin terms.

One connection serves every rep of an org: `account` opens a rep's mailbox with
ApplicationImpersonation by SMTP address (exchangelib then sends the ExchangeImpersonation
SOAP header and ``X-AnchorMailbox``). Every server call goes through `run`, the one retry
policy: ErrorServerBusy waits the server's BackOffMilliseconds, transient failures back off
exponentially, and after ``max_attempts`` the failure becomes a crmsync `SyncError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    Account,
    Build,
    Configuration,
    Credentials,
    EWSTimeZone,
    FailFast,
    Version,
)
from exchangelib import errors as ews_errors

from crmsync.domain.sync import (
    AuthenticationFailed,
    FolderMissing,
    RejectedWrite,
    ServerUnavailable,
    SyncError,
    VersionConflict,
)
from crmsync.groupware.ews.config import EwsAuth, EwsConfig
from crmsync.groupware.ews.properties import register

log = logging.getLogger(__name__)
T = TypeVar("T")

# We send Exchange 2016's schema; 2019 and SE accept it. Giving it skips version guessing.
EXCHANGE_2016_VERSION = Version(build=Build(15, 1), api_version="Exchange2016")

_TRANSIENT = (
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorTimeoutExpired,
    ews_errors.ErrorTooManyObjectsOpened,
    ews_errors.ErrorMailboxStoreUnavailable,
    ews_errors.ErrorMailboxMoveInProgress,
    ews_errors.RateLimitError,
    ews_errors.MalformedResponseError,
    ews_errors.TransportError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


class MailboxUnreachable(SyncError):
    """The service account cannot open this rep's mailbox (impersonation or no mailbox)."""

    error_type = FolderMissing.error_type


def auth_hint(config: EwsConfig) -> str:
    other = config.other_username_format
    fmt = f" (e.g. '{other}')" if other else ""
    return (
        "Check the service account's password. Some networks accept only one user name "
        "format: if 'user@domain' fails try 'DOMAIN\\user', and the other way round" + fmt + "."
    )


def translate(exc: BaseException, config: EwsConfig, what: str, email: str = "") -> SyncError:
    """The crmsync error for an exchangelib / transport failure while doing ``what``."""
    mailbox = email or "the rep's mailbox"
    if isinstance(exc, SyncError):
        return exc
    if isinstance(exc, ews_errors.UnauthorizedError | ews_errors.ErrorAccessDenied) and not (
        isinstance(exc, ews_errors.ErrorAccessDenied) and email
    ):
        return AuthenticationFailed(
            f"Exchange refused the service account {config.username!r} ({what}).",
            auth_hint(config),
        )
    if isinstance(exc, ews_errors.ErrorImpersonateUserDenied | ews_errors.ErrorImpersonationDenied):
        return MailboxUnreachable(
            f"The service account may not impersonate {mailbox} ({what}).",
            "Give the service account the ApplicationImpersonation role for this mailbox "
            "(New-ManagementRoleAssignment -Role:ApplicationImpersonation, with a management "
            "scope that includes the rep), wait a few minutes and try again.",
        )
    if isinstance(exc, ews_errors.ErrorNonExistentMailbox):
        return MailboxUnreachable(
            f"Exchange has no mailbox for {mailbox} ({what}).",
            "Check the rep's email address in the CRM: it must be the mailbox's primary SMTP "
            "address, in the service account's domain or one of the additional domains.",
        )
    if isinstance(exc, ews_errors.ErrorIrresolvableConflict | ews_errors.ErrorStaleObject):
        return VersionConflict(f"The item changed in Exchange meanwhile ({what}).", "")
    if isinstance(exc, ews_errors.ErrorAccessDenied):
        return RejectedWrite(f"Exchange denied access ({what}): {exc}", "Check folder rights.")
    if isinstance(exc, _TRANSIENT):
        return ServerUnavailable(
            f"Exchange did not answer usefully ({what}): {exc}",
            "crmsync retries next cycle; if it persists, check the Exchange server's health "
            "and the EWS URL.",
        )
    if isinstance(exc, ews_errors.ResponseMessageError | ValueError | TypeError):
        return RejectedWrite(
            f"Exchange refused the item ({what}): {exc}",
            "Check the item's values in the CRM (dates, addresses, lengths).",
        )
    return ServerUnavailable(f"Unexpected failure talking to Exchange ({what}): {exc!r}", "")


class EwsConnection:
    """The service account's configuration; ``sleep`` is injectable for tests."""

    def __init__(self, config: EwsConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        register()
        self.config = config
        self.sleep = sleep
        self.waits: list[float] = []
        self._accounts: list[Account] = []
        credentials = Credentials(config.username, config.password)
        auth_type = NTLM if config.auth is EwsAuth.NTLM else BASIC
        self.credentials = credentials
        if config.autodiscover:
            self.configuration: Configuration | None = None
        else:
            self.configuration = Configuration(
                service_endpoint=config.service_endpoint,
                credentials=credentials,
                auth_type=auth_type,
                version=EXCHANGE_2016_VERSION,
                retry_policy=FailFast(),
                max_connections=4,
            )

    def account(self, email: str, rep_zone: str = "UTC", *, impersonate: bool = True) -> Account:
        """The rep's mailbox, opened by impersonation (no request is sent yet)."""
        access = IMPERSONATION if impersonate else DELEGATE
        zone = EWSTimeZone(rep_zone)
        if self.configuration is None:
            return self.run(
                lambda: Account(
                    primary_smtp_address=email,
                    credentials=self.credentials,
                    autodiscover=True,
                    access_type=access,
                    default_timezone=zone,
                ),
                "autodiscover",
                email,
            )
        account = Account(
            primary_smtp_address=email,
            config=self.configuration,
            autodiscover=False,
            access_type=access,
            default_timezone=zone,
        )
        self._accounts.append(account)
        return account

    def run(self, operation: Callable[[], T], what: str, email: str = "") -> T:
        """``operation()`` under the retry policy; failures become `SyncError`s."""
        retry = self.config.retry
        attempt = 1
        while True:
            try:
                return operation()
            except _TRANSIENT as exc:
                if attempt >= retry.max_attempts:
                    raise translate(exc, self.config, what, email) from exc
                back_off = getattr(exc, "back_off", None)
                wait = retry.delay(attempt, back_off)
                log.info("EWS %s: %s; retrying in %.1fs", what, type(exc).__name__, wait)
                self.waits.append(wait)
                self.sleep(wait)
                attempt += 1
            except (ews_errors.EWSError, ValueError, TypeError) as exc:
                raise translate(exc, self.config, what, email) from exc

    def close(self) -> None:
        """Close the HTTP sessions of the accounts this connection opened."""
        for protocol in {id(a.protocol): a.protocol for a in self._accounts}.values():
            protocol.close()
        self._accounts.clear()
