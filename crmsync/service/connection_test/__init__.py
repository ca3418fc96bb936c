"""The admin's connection test: can crmsync reach the mail server and one rep's folders?

`run_connection_test` walks the path a sync cycle takes for one rep with the org's
backend (`dav`, `microsoft` for Exchange Server and Microsoft 365, `google`) and reports each check
as a `Step` saying what it found and, when something is wrong, what the admin can do
about it.

It only reads: a folder a cycle would create is reported as "the first sync creates it",
never created here.

Step states: ``passed`` is ``True`` or ``False``; after a failure the later steps are not
run (``passed=None``). A step that passed but found something the admin should know
(the server offers no sync tokens, accepts requests without a sign-in, or does not say
whether the service account may create folders) has ``warning=True``. Warnings do not
fail the test, because syncing works regardless.
"""

from __future__ import annotations

from crmsync.domain.settings import ConnectionMethod, OrgSettings
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.connection_test.dav import DavProbe
from crmsync.service.connection_test.google import GoogleProbe
from crmsync.service.connection_test.microsoft import ExchangeProbe, GraphProbe
from crmsync.service.connection_test.probe import ConnectionProbe, shown_url
from crmsync.service.connection_test.result import (
    ACCOUNT_STEPS,
    CONTACTS_FOLDER,
    DEFAULT_CALENDAR,
    EXCHANGE_VERSION,
    GOOGLE_CALENDAR,
    GOOGLE_CONTACTS,
    GOOGLE_DELEGATION,
    GOOGLE_KEY,
    GOOGLE_USER,
    GRAPH_DELTA,
    GRAPH_MAILBOX,
    GRAPH_TOKEN,
    IMPERSONATION,
    REP_DOMAIN,
    REP_LOGIN,
    REP_MAILBOX,
    SERVER_ADDRESS,
    SERVICE_ACCOUNT,
    STEP_NAMES,
    SYNC_TOKENS,
    ConnectionTestResult,
    Step,
)
from crmsync.store import RepCredentials

__all__ = [
    "CONTACTS_FOLDER",
    "DEFAULT_CALENDAR",
    "EXCHANGE_VERSION",
    "GOOGLE_CALENDAR",
    "GOOGLE_CONTACTS",
    "GOOGLE_DELEGATION",
    "GOOGLE_KEY",
    "GOOGLE_USER",
    "GRAPH_DELTA",
    "GRAPH_MAILBOX",
    "GRAPH_TOKEN",
    "IMPERSONATION",
    "REP_DOMAIN",
    "REP_LOGIN",
    "REP_MAILBOX",
    "SERVER_ADDRESS",
    "SERVICE_ACCOUNT",
    "STEP_NAMES",
    "SYNC_TOKENS",
    "ConnectionTestResult",
    "Step",
    "run_connection_test",
]


def run_connection_test(
    settings: OrgSettings,
    password: str | None,
    email: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: float = 10.0,
    service_account_only: bool = False,
    rep_credentials: RepCredentials | None = None,
) -> ConnectionTestResult:
    """Test whether crmsync can reach the mail server as the service account and find
    the folders of the rep with ``email``, writing nothing anywhere. With
    ``service_account_only``, only the steps that need no rep run (the setup page's
    "service account recognized": for Exchange, whose sign-in is tested as a rep, that is
    the server address).

    Never raises for what it finds on the server (that is a failed `Step`); the password
    appears in no step's text and no log line. ``timeout`` bounds each connect and
    request, ``retry`` is the policy for transient HTTP failures. With per-rep sign-in
    (DAV), ``rep_credentials`` is the rep's stored login: its step takes the service
    account's (`REP_LOGIN`).
    """
    email = email.strip()
    probe: ConnectionProbe
    if settings.connection_method is ConnectionMethod.EWS:
        probe = ExchangeProbe(settings, password, email, retry, timeout)
    elif settings.connection_method is ConnectionMethod.GRAPH:
        probe = GraphProbe(settings, password, email, retry, timeout)
    elif settings.connection_method is ConnectionMethod.GOOGLE:
        probe = GoogleProbe(settings, password, email, retry, timeout)
    else:
        probe = DavProbe(settings, password, email, retry, timeout, rep_credentials)
    try:
        checks = probe.checks()
        if service_account_only:
            last = max(i for i, (name, _) in enumerate(checks) if name in ACCOUNT_STEPS)
            checks = checks[: last + 1]
        steps = probe.run(checks)
    finally:
        probe.close()
    return ConnectionTestResult(shown_url(settings.server_url), email, steps)
