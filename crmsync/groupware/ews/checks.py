"""Connection-test steps for Exchange: each returns ``(passed, detail, fix)``."""

from __future__ import annotations

from exchangelib import Build
from exchangelib.folders import Calendar

from crmsync.domain.sync import SyncError
from crmsync.groupware.ews.connection import EwsConnection

MINIMUM = Build(15, 1)  # Exchange 2016; 2019 and Subscription Edition are 15.2
NAMES = {(15, 1): "Exchange Server 2016", (15, 2): "Exchange Server 2019 / SE"}


def version_name(build: Build) -> str:
    return NAMES.get((build.major_version, build.minor_version), f"Exchange build {build}")


def check_server_version(connection: EwsConnection, email: str) -> tuple[bool, str, str]:
    """Whether the server answering for ``email`` is Exchange 2016 or later, read from the
    ServerVersionInfo header of a real request."""
    account = connection.account(email)
    try:
        connection.run(
            lambda: Calendar.get_distinguished(root=account.root), "check the version", email
        )
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    build = account.version.build
    if build is None or build < MINIMUM:
        return (
            False,
            f"The mailbox is on {version_name(build) if build else 'an unknown version'}.",
            "crmsync supports Exchange Server 2016, 2019 and Subscription Edition; move the "
            "mailbox to a supported server.",
        )
    return True, f"The mailbox is on {version_name(build)} ({build}).", ""


def check_impersonation(connection: EwsConnection, email: str) -> tuple[bool, str, str]:
    """Whether the service account can open ``email``'s calendar by impersonation."""
    account = connection.account(email)
    try:
        connection.run(lambda: Calendar.get_distinguished(root=account.root), "impersonate", email)
    except SyncError as exc:
        return False, exc.message, exc.suggestion
    return True, f"The service account can impersonate {email}.", ""
