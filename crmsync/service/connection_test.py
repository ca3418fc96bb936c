"""The admin's connection test: can crmsync reach the mail server and one rep's folders?

`run_connection_test` walks the path a sync cycle takes for one rep (server address,
service account, domains, the rep's principal, default calendar, contacts folder, sync
tokens) and reports each as a `Step` saying what it found and, when something is wrong,
what the admin can do about it.

It only reads. The DAV connection is read-only, so a folder a cycle would create is
reported as "the first sync creates it", never created here.

Step states: ``passed`` is ``True`` or ``False``; after a failure the later steps are not
run (``passed=None``). A step that passed but found something the admin should know
(the server offers no sync tokens, accepts requests without a sign-in, or does not say
whether the service account may create folders) has ``warning=True``. Warnings do not
fail the test, because syncing works regardless.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx

from crmsync.domain.settings import ConnectionMethod, DavSignIn, OrgSettings
from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable, SyncError
from crmsync.groupware.dav import DavConnection, RetryPolicy
from crmsync.groupware.dav.multistatus import (
    DAV,
    MultistatusError,
    parse_multistatus,
    propfind_body,
    tag,
)
from crmsync.groupware.dav.probe import FolderLookup, MailboxProbe, Principal, may_create_in
from crmsync.service.domains import domains_of, mailbox_in_domains
from crmsync.store import RepCredentials

log = logging.getLogger(__name__)

SERVER_ADDRESS = "Server address"
SERVICE_ACCOUNT = "Service account recognized"
# Per-rep sign-in (DAV): the rep's own login takes the service account's place.
REP_LOGIN = "Rep's login recognized"
REP_DOMAIN = "Rep's email in the service account's domains"
REP_MAILBOX = "Rep's mailbox found"
DEFAULT_CALENDAR = "Default calendar found"
CONTACTS_FOLDER = "Contacts folder found or can be created"
SYNC_TOKENS = "Sync tokens supported"
# Exchange Server (EWS) and Microsoft 365 (Graph) steps.
EXCHANGE_VERSION = "Service account recognized; mailbox on a supported Exchange version"
IMPERSONATION = "Service account may impersonate the rep"
GRAPH_TOKEN = "App registration recognized (token with admin consent)"
GRAPH_MAILBOX = "Rep's calendar and contacts folder reachable"
GRAPH_DELTA = "Delta queries supported"
STEP_NAMES = (
    SERVER_ADDRESS,
    SERVICE_ACCOUNT,
    REP_DOMAIN,
    REP_MAILBOX,
    DEFAULT_CALENDAR,
    CONTACTS_FOLDER,
    SYNC_TOKENS,
)

_NOT_RUN = "Not run: an earlier step failed."
# OpenSSL's reasons when the peer answered a ClientHello with something other than TLS.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"})
_CURRENT_PRINCIPAL = tag(DAV, "current-user-principal")


@dataclass(frozen=True)
class Step:
    """One check of the connection test.

    ``passed`` is ``None`` when the step was not run because an earlier one failed.
    ``detail`` says what was found; ``fix`` what the admin can do (set on failures and
    warnings). ``warning`` marks a passed step with a caveat.
    """

    name: str
    passed: bool | None
    detail: str = ""
    fix: str = ""
    warning: bool = False

    @property
    def status(self) -> str:
        """``"passed"``, ``"warning"``, ``"failed"`` or ``"not_run"``."""
        if self.passed is None:
            return "not_run"
        if not self.passed:
            return "failed"
        return "warning" if self.warning else "passed"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "warning": self.warning,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class ConnectionTestResult:
    """The steps of one connection test, in order (one per name in `STEP_NAMES`).

    ``server_url`` is shown without any user name or password it may hold.
    """

    server_url: str
    email: str
    steps: tuple[Step, ...]

    @property
    def passed(self) -> bool:
        """Whether every step that ran passed (warnings included)."""
        return all(step.passed is not False for step in self.steps)

    @property
    def warnings(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.status == "warning")

    def step(self, name: str) -> Step:
        """The step called ``name``; `KeyError` if there is none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def as_dict(self) -> dict[str, object]:
        """Plain values only, for a JSON API."""
        return {
            "server_url": self.server_url,
            "email": self.email,
            "passed": self.passed,
            "steps": [step.as_dict() for step in self.steps],
        }


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
    test = _ConnectionTest(settings, password, email.strip(), retry, timeout, rep_credentials)
    try:
        if settings.connection_method is ConnectionMethod.EWS:
            checks = test.exchange_checks()
        elif settings.connection_method is ConnectionMethod.GRAPH:
            checks = test.graph_checks()
        else:
            checks = test.dav_checks()
        if service_account_only:
            checks = checks[: 1 + max(i for i, (name, _) in enumerate(checks) if name in _ACCOUNT)]
        steps = test.run(checks)
    finally:
        test.close()
    return ConnectionTestResult(_shown_url(settings.server_url), email.strip(), steps)


class _Outcome(NamedTuple):
    passed: bool
    detail: str
    fix: str = ""
    warning: bool = False


Check = tuple[str, Callable[[], _Outcome]]
# The steps that test the service account itself, whichever the backend.
_ACCOUNT = (SERVER_ADDRESS, SERVICE_ACCOUNT, REP_LOGIN, GRAPH_TOKEN)


def _ok(detail: str, *, warning: bool = False, fix: str = "") -> _Outcome:
    return _Outcome(True, detail, fix, warning)


def _fail(detail: str, fix: str) -> _Outcome:
    return _Outcome(False, detail, fix)


class _ConnectionTest:
    """One run: each check may use what the checks before it found."""

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        email: str,
        retry: RetryPolicy | None,
        timeout: float,
        rep_credentials: RepCredentials | None = None,
    ) -> None:
        self.settings = settings
        self.per_rep = (
            settings.connection_method is ConnectionMethod.DAV
            and settings.dav_sign_in is DavSignIn.PER_REP
        )
        self.rep_credentials = rep_credentials
        if self.per_rep:
            password = rep_credentials.password if rep_credentials else None
        self.password = password
        self.email = email
        self.retry = retry
        self.timeout = timeout
        self.anonymous: DavConnection | None = None
        self.connection: DavConnection | None = None
        self.probe: MailboxProbe | None = None
        self.principal: Principal | None = None
        self.calendar: FolderLookup | None = None
        self.contacts: FolderLookup | None = None
        self.microsoft: Any = None
        self.anonymous_kinds_missing = False

    def dav_checks(self) -> list[Check]:
        return [
            (SERVER_ADDRESS, self._server_address),
            (REP_LOGIN if self.per_rep else SERVICE_ACCOUNT, self._service_account),
            (REP_DOMAIN, self._rep_domain),
            (REP_MAILBOX, self._rep_mailbox),
            (DEFAULT_CALENDAR, self._default_calendar),
            (CONTACTS_FOLDER, self._contacts_folder),
            (SYNC_TOKENS, self._sync_tokens),
        ]

    def exchange_checks(self) -> list[Check]:
        """Exchange Server over EWS: the address (unless Autodiscover), the rep's domain,
        then real EWS requests as the rep (authentication, version, impersonation)."""
        return [
            (SERVER_ADDRESS, self._exchange_address),
            (REP_DOMAIN, self._rep_domain),
            (EXCHANGE_VERSION, lambda: self._microsoft("version")),
            (IMPERSONATION, lambda: self._microsoft("impersonation")),
        ]

    def graph_checks(self) -> list[Check]:
        """Microsoft 365 over Graph: a token for the app, the rep's domain, the rep's
        folders, delta queries."""
        return [
            (GRAPH_TOKEN, lambda: self._microsoft("token")),
            (REP_DOMAIN, self._rep_domain),
            (GRAPH_MAILBOX, lambda: self._microsoft("mailbox")),
            (GRAPH_DELTA, lambda: self._microsoft("delta")),
        ]

    def run(self, checks: list[Check]) -> tuple[Step, ...]:
        steps: list[Step] = []
        for name, check in checks:
            if steps and not steps[-1].passed:
                steps.append(Step(name, None, _NOT_RUN))
                continue
            try:
                outcome = check()
            except SyncError as exc:
                outcome = _fail(_as_sentence(exc.message), exc.suggestion)
            step = Step(
                name,
                outcome.passed,
                self._redact(outcome.detail),
                self._redact(outcome.fix),
                outcome.warning,
            )
            log.info("connection test for %s: %s: %s", self.email, name, step.status)
            steps.append(step)
        return tuple(steps)

    def close(self) -> None:
        for connection in (self.anonymous, self.connection, self.microsoft):
            if connection is not None:
                connection.close()

    # -- Exchange Server and Microsoft 365 ------------------------------------------------
    def _exchange_address(self) -> _Outcome:
        if not self.settings.server_url.strip():
            return _ok(
                "No EWS URL is set: crmsync finds the server with Autodiscover from the "
                "service account's address.",
                warning=True,
                fix="If the next steps cannot reach the server, enter the EWS URL, e.g. "
                "https://mail.example.com/EWS/Exchange.asmx.",
            )
        return self._network(self.settings.server_url.strip())

    def _microsoft(self, check: str) -> _Outcome:
        """One of the backends' own checks, each a real request as the service account."""
        if not self.password:
            return _fail(
                "No password (or app secret) is stored.",
                "Enter it on the Setup page.",
            )
        from crmsync.service.mailboxes import MailServer

        if self.microsoft is None:
            self.microsoft = MailServer(self.settings, self.password).connection
        if self.settings.connection_method is ConnectionMethod.EWS:
            from crmsync.groupware.ews import check_impersonation, check_server_version

            run = check_server_version if check == "version" else check_impersonation
            passed, detail, fix = run(self.microsoft, self.email)
        else:
            from crmsync.groupware.graph import probe

            if check == "token":
                passed, detail, fix = probe.check_token(self.microsoft)
            elif check == "mailbox":
                passed, detail, fix = probe.check_mailbox(
                    self.microsoft, self.email, self.settings.contacts_folder
                )
            else:
                passed, detail, fix = probe.check_delta(self.microsoft, self.email)
        return _ok(detail) if passed else _fail(detail, fix)

    def _redact(self, text: str) -> str:
        # Server and library messages could echo a secret back (a password typed into
        # the URL or the account field); none may reach the admin page or the log.
        secrets = [self.password, urlsplit(self.settings.server_url.strip()).password]
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    # -- 1. server address ----------------------------------------------------------------
    def _server_address(self) -> _Outcome:
        method = self.settings.connection_method
        if method is not ConnectionMethod.DAV:
            return _fail(
                f"The connection method {method.value!r} is not available yet; this test "
                "checks CalDAV/CardDAV servers.",
                "Choose the DAV connection method in the org settings.",
            )
        url = self.settings.server_url.strip()
        if not url:
            return _fail(
                "No server URL is set.",
                "Enter the CalDAV/CardDAV server's address in the org settings, for "
                "example https://mail.example.com/dav/.",
            )
        reached = self._reach(url)
        if isinstance(reached, _Outcome):
            return reached
        found, host, port = reached
        answer = self._http_answer(url, host, port)
        if isinstance(answer, _Outcome):
            return answer
        note, warning = answer
        found.append(note)
        fix = (
            "If the next steps fail, check the path in the server URL: it must point at "
            "the CalDAV/CardDAV server."
            if warning
            else ""
        )
        return _ok(_sentence(found), warning=warning, fix=fix)

    def _reach(self, url: str) -> _Outcome | tuple[list[str], str, int]:
        """DNS, TCP and (for https) TLS to ``url``'s host: a failed step, or what was
        found with the host and port."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            return _fail(
                f"{_shown_url(url)!r} is not a valid http:// or https:// URL.",
                "Enter the server address as https://host[:port]/path, for example "
                "https://mail.example.com/dav/.",
            )
        host = parts.hostname
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            return _fail(
                f"The host name {host} could not be resolved: the DNS lookup failed "
                f"({_os_error(exc)}).",
                "Check the host name in the server URL for typos, and that the machine "
                "crmsync runs on can resolve it (its DNS servers or hosts file).",
            )
        resolved = ", ".join(sorted({str(a[4][0]) for a in addresses}))
        where = host if resolved == host else f"{host} ({resolved})"
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        except TimeoutError:
            return _fail(
                f"{where} did not accept a connection on port {port} within {self.timeout:g} s.",
                "Check that the server is running, and that no firewall between crmsync "
                "and the server drops the connection.",
            )
        except OSError as exc:
            return _fail(
                f"Could not connect to {where} on port {port}: {_os_error(exc)}.",
                "Check the port in the server URL, and that the server is running and "
                "listening on it; a firewall may also refuse the connection.",
            )
        found = [f"{where} accepts connections on port {port}"]
        with sock:
            if parts.scheme == "https":
                tls = _tls_handshake(sock, host, port)
                if isinstance(tls, _Outcome):
                    return tls
                found.append(tls)
        return found, host, port

    def _network(self, url: str) -> _Outcome:
        reached = self._reach(url)
        if isinstance(reached, _Outcome):
            return reached
        return _ok(_sentence(reached[0]))

    def _http_answer(self, url: str, host: str, port: int) -> _Outcome | tuple[str, bool]:
        """One OPTIONS request without credentials: does the address speak HTTP, DAV?"""
        self.anonymous = DavConnection(url, retry=self.retry, timeout=self.timeout, read_only=True)
        try:
            response = self.anonymous.request("OPTIONS", self.anonymous.base_path + "/")
        except AuthenticationFailed:
            return "it answers HTTP and asks for a sign-in", False
        except ServerUnavailable as exc:
            return _fail(
                f"{host} accepts connections on port {port} but gives no usable HTTP "
                f"answer ({exc.message}).",
                "Check the scheme and port of the server URL: a server speaking HTTPS "
                "needs https://, and the port must be the CalDAV/CardDAV server's.",
            )
        classes = {c.strip().casefold() for c in response.headers.get("DAV", "").split(",")}
        kinds = [
            name
            for dav_class, name in (("calendar-access", "CalDAV"), ("addressbook", "CardDAV"))
            if dav_class in classes
        ]
        if kinds:
            return f"it answers HTTP and announces {' and '.join(kinds)}", False
        # Many servers announce CalDAV only to a signed-in client: the next step asks again
        # with the credentials before calling this no CalDAV/CardDAV server.
        self.anonymous_kinds_missing = True
        return f"it answers HTTP ({response.status_code})", False

    # -- 2. service account ---------------------------------------------------------------
    def _service_account(self) -> _Outcome:
        if self.per_rep:
            account = self.rep_credentials.login if self.rep_credentials else ""
            whose = f"the login {account!r} of {self.email}"
            if self.rep_credentials is None:
                return _fail(
                    f"No login is stored for {self.email}; this org signs in with each rep's "
                    "own login and app password.",
                    "Enter the rep's login and an app password on the rep's page (or with "
                    "`crmsync rep-login`, or under reps: in `crmsync config apply`).",
                )
        else:
            account = self.settings.service_account.strip()
            whose = f"the service account {account!r}"
            if not account:
                return _fail(
                    "No service account user name is set.",
                    "Enter the service account's user name in the org settings.",
                )
            if self.password is None:
                return _fail(
                    f"No password is stored for the service account {account!r}.",
                    "Enter the service account's password in the org settings "
                    "(`crmsync setup dav`).",
                )
        assert self.password is not None
        self.connection = DavConnection(
            self.settings.server_url,
            account,
            self.password,
            retry=self.retry,
            timeout=self.timeout,
            read_only=True,
            who=whose,
        )
        base = self.connection.base_path + "/"
        body = propfind_body(_CURRENT_PRINCIPAL)
        open_server = self._answers_anonymously(base, body)
        try:
            response = self.connection.request(
                "PROPFIND", base, body=body, headers={"Depth": "0"}, xml=True
            )
        except AuthenticationFailed:
            scheme = self._scheme()
            return _fail(
                f"The server refused {whose} (HTTP 401{scheme}): the user name or the "
                "password is wrong.",
                _credentials_fix(account, self.connection.challenge, self.per_rep),
            )
        if response.status_code == 403:
            return _fail(
                f"The server refused {whose} access to {base} (HTTP 403).",
                "Check that the account is enabled and allowed to use CalDAV and "
                "CardDAV on the mail server. "
                + _credentials_fix(account, self.connection.challenge, self.per_rep),
            )
        if response.status_code != 207:
            return _fail(
                f"The server answered PROPFIND {base} with HTTP {response.status_code}, "
                "not with WebDAV properties.",
                "Check the path in the server URL: it must be the root of the CalDAV/CardDAV "
                "server (for example https://mail.example.com/dav/).",
            )
        principal = _current_principal(response.content)
        detail = f"The server accepted {whose}{self._scheme(' with')}" + (
            f" (its principal is {principal})." if principal else "."
        )
        if self.anonymous_kinds_missing and not self._announces_dav():
            return _ok(
                detail + " It does not announce CalDAV or CardDAV in its DAV header, even "
                "to a signed-in client.",
                warning=True,
                fix="If the next steps fail, check the path in the server URL: it must point "
                "at the CalDAV/CardDAV server.",
            )
        if open_server:
            return _ok(
                detail + " The server also answers without any sign-in, so the password "
                "was not checked.",
                warning=True,
                fix="Make the mail server require a sign-in: as it is, anyone who can reach "
                "it can read and change every rep's calendar and contacts.",
            )
        return _ok(detail)

    def _scheme(self, lead: str = ";") -> str:
        """`` with Digest authentication``-style words naming the scheme the server uses."""
        assert self.connection is not None
        if self.connection.auth_scheme == "Digest" or "digest" in self.connection.challenge:
            return f"{lead} Digest authentication"
        if self.connection.challenge:
            return f"{lead} {' or '.join(self.connection.challenge)} authentication"
        return ""

    def _announces_dav(self) -> bool:
        assert self.connection is not None
        try:
            response = self.connection.request("OPTIONS", self.connection.base_path + "/")
        except SyncError:
            return False
        classes = {c.strip().casefold() for c in response.headers.get("DAV", "").split(",")}
        return bool(classes & {"calendar-access", "addressbook"})

    def _answers_anonymously(self, path: str, body: str) -> bool:
        """Whether the server grants an anonymous client anything: a 207 naming an
        unauthenticated principal, or no principal at all, grants nothing."""
        assert self.anonymous is not None
        try:
            response = self.anonymous.request(
                "PROPFIND", path, body=body, headers={"Depth": "0"}, xml=True
            )
        except AuthenticationFailed:
            return False
        return response.status_code == 207 and _current_principal(response.content) is not None

    # -- 3. domains -----------------------------------------------------------------------
    def _rep_domain(self) -> _Outcome:
        local, at, domain = self.email.rpartition("@")
        if not (local and at and domain) or " " in self.email:
            return _fail(
                f"{self.email!r} is not an email address.",
                "Enter the full email address of a rep set up to sync, such as rep@example.com.",
            )
        domains = domains_of(self.settings)
        if not domains:
            return _ok(
                "The service account's name holds no domain and no additional domains are "
                f"set, so every address is accepted, {domain} included."
            )
        listed = ", ".join(sorted(domains))
        if mailbox_in_domains(self.email, self.settings):
            return _ok(f"{domain} is one of the service account's domains ({listed}).")
        return _fail(
            f"{domain} is not one of the service account's domains ({listed}).",
            f"If reps' addresses use {domain}, add it to the additional domains in the org "
            "settings; otherwise check the rep's email address.",
        )

    # -- 4. principal ---------------------------------------------------------------------
    def _rep_mailbox(self) -> _Outcome:
        assert self.connection is not None
        login = self.rep_credentials.login if self.rep_credentials else ""
        self.probe = MailboxProbe(
            self.connection,
            self.settings,
            self.email,
            login=login,
            signed_in_as_rep=self.per_rep,
        )
        try:
            principal = self.principal = self.probe.principal()
        except AuthenticationFailed as exc:
            # Step 2 showed the account signs in: what is missing is access to this rep.
            return _fail(
                _as_sentence(exc.message),
                "Give the service account access to the rep's calendars and address books "
                "on the mail server (read and write, as for every rep who syncs).",
            )
        if principal.calendar_home == principal.addressbook_home:
            homes = f"its calendars and address books live under {principal.calendar_home}"
        else:
            homes = (
                f"its calendars live under {principal.calendar_home}, its address books "
                f"under {principal.addressbook_home}"
            )
        return _ok(f"Found the principal of {self.email} at {principal.path}; {homes}.")

    # -- 5. calendar ----------------------------------------------------------------------
    def _default_calendar(self) -> _Outcome:
        assert self.probe is not None and self.principal is not None
        lookup = self.calendar = self.probe.calendar(self.principal)
        if lookup.source == "default":
            return _ok(f"The server names {lookup.path} as the rep's default calendar.")
        if lookup.source == "found":
            return _ok(
                f"The server names no default calendar; crmsync uses {lookup.path}, the "
                f"rep's event calendar under {lookup.home}."
            )
        return self._creatable(
            "The rep's calendar",
            lookup.home,
            "Create a calendar for this rep on the mail server, or give the service "
            f"account write access to {lookup.home}.",
        )

    # -- 6. contacts folder ---------------------------------------------------------------
    def _contacts_folder(self) -> _Outcome:
        assert self.probe is not None and self.principal is not None
        lookup = self.contacts = self.probe.contacts_folder(self.principal)
        folder = self.settings.contacts_folder
        if lookup.exists:
            return _ok(f"Found the address book {folder!r} at {lookup.path}.")
        return self._creatable(
            f"The address book {folder!r}",
            lookup.home,
            f"Create an address book named {folder} for this rep on the mail server, or "
            f"give the service account write access to {lookup.home}.",
        )

    def _creatable(self, what: str, home: str, create_fix: str) -> _Outcome:
        """A missing folder: fine if the service account may create it in ``home``."""
        assert self.probe is not None
        allowed = may_create_in(self.probe.privileges(home))
        if allowed is False:
            return _fail(
                f"{what} does not exist, and the server says the service account may not "
                f"create folders under {home}.",
                create_fix,
            )
        detail = f"{what} does not exist yet; the first sync creates it under {home}"
        if allowed:
            return _ok(detail + " (the service account may create folders there).")
        return _ok(
            detail + ". The server does not report the service account's privileges, so "
            "whether it may create the folder shows only then.",
            warning=True,
            fix="If the first sync reports the folder missing: " + create_fix,
        )

    # -- 7. sync tokens -------------------------------------------------------------------
    def _sync_tokens(self) -> _Outcome:
        assert self.probe is not None
        folders = (("calendar", self.calendar), ("contacts folder", self.contacts))
        found: list[str] = []
        lacking = False
        for label, lookup in folders:
            if lookup is None or lookup.path is None:
                found.append(f"the {label} does not exist yet, so it was not checked")
                continue
            support = self.probe.sync_support(lookup.path)
            if support.supported:
                found.append(f"the {label} answers sync-collection")
            elif support.has_token:
                lacking = True
                found.append(
                    f"the {label} reports a sync-token but refused sync-collection "
                    f"(HTTP {support.report_status})"
                )
            else:
                lacking = True
                found.append(f"the {label} reports no sync-token")
        detail = _sentence(found)
        if lacking:
            return _ok(
                detail,
                warning=True,
                fix="Nothing blocks syncing: without sync tokens crmsync lists every item "
                "of the folder each cycle, which is slower and loads the server more. "
                "Turn on WebDAV sync (RFC 6578) on the server if it offers it.",
            )
        if all(lookup is None or lookup.path is None for _, lookup in folders):
            return _ok(
                detail + " Run the test again after the first sync to check them.",
                warning=True,
                fix="Nothing to do now: without sync tokens crmsync would list every item "
                "each cycle, which works but is slower.",
            )
        return _ok(detail)


def _tls_handshake(sock: socket.socket, host: str, port: int) -> _Outcome | str:
    # The same trust store as the sync's HTTP client (certifi, or SSL_CERT_FILE/DIR).
    context = httpx.create_ssl_context()
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return _fail(
            f"The TLS certificate of {host} is not trusted: "
            f"{str(exc.verify_message or exc.reason or exc).rstrip('.')}.",
            f"Give the server a certificate for {host} from a certificate authority "
            "crmsync trusts, that has not expired; for a private CA, add it to crmsync's "
            "trust store (SSL_CERT_FILE). The host name in the URL must be one the "
            "certificate names.",
        )
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or _os_error(exc)
        if reason in _NOT_TLS_REASONS:
            reason += ": the server's answer was not TLS (plain HTTP, typically)"
        return _fail(
            f"The TLS handshake with {host} on port {port} failed ({reason}).",
            "Check that this port serves HTTPS: if the server speaks plain HTTP there, "
            "write the URL with http://, or use the server's HTTPS port.",
        )
    return f"the TLS handshake succeeded ({version}) and the certificate is valid for {host}"


def _credentials_fix(account: str, offered: tuple[str, ...] = (), per_rep: bool = False) -> str:
    if per_rep:
        fix = (
            "Check the rep's login and app password on the rep's page: on Nextcloud, iCloud "
            "and Fastmail an app password (made in the account's security settings) is "
            "needed, and a revoked one must be replaced."
        )
    else:
        fix = (
            "Check the service account's user name and password in the org settings, and "
            "that the account is enabled on the mail server."
        )
    if "digest" in offered and "basic" not in offered:
        return fix + (
            " The server wants Digest authentication (Baïkal's default), which crmsync "
            "uses: the user name must be exactly the one the server knows (on Baïkal and "
            "Nextcloud often the full email address)."
        )
    if not ({"ntlm", "negotiate"} & set(offered)):
        return fix
    if "\\" in account:
        domain, _, user = account.partition("\\")
        other = f"{user}@{domain}" if "." in domain else f"{user}@ followed by your email domain"
        return fix + (
            " Some servers want the user name as user@domain rather than DOMAIN\\user: "
            f"try {other}."
        )
    if "@" in account:
        user, _, domain = account.rpartition("@")
        return fix + (
            " Some servers want the user name as DOMAIN\\user rather than user@domain: "
            f"try {domain}\\{user}."
        )
    return fix


def _current_principal(content: bytes) -> str | None:
    try:
        status = parse_multistatus(content)
    except MultistatusError:
        return None
    for response in status.responses:
        for href in response.hrefs(_CURRENT_PRINCIPAL):
            return href
    return None


def _sentence(parts: list[str]) -> str:
    return _as_sentence("; ".join(parts))


def _as_sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _shown_url(url: str) -> str:
    """``url`` without the user name and password it may carry."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip()
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
