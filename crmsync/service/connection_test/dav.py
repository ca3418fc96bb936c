"""Connection-test steps for CalDAV/CardDAV servers, in order: the server address (DNS,
TCP, TLS, an anonymous OPTIONS), the service account's (or, per-rep, the rep's own) login,
the rep's domain, the rep's principal, the default calendar, the contacts folder, and
sync-collection on both. The connection is read-only: a folder a cycle would create is
reported as "the first sync creates it", never created here.
"""

from __future__ import annotations

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
from crmsync.service.connection_test.probe import (
    Check,
    ConnectionProbe,
    Outcome,
    as_sentence,
    fail,
    ok,
    sentence,
)
from crmsync.service.connection_test.result import (
    CONTACTS_FOLDER,
    DEFAULT_CALENDAR,
    REP_DOMAIN,
    REP_LOGIN,
    REP_MAILBOX,
    SERVER_ADDRESS,
    SERVICE_ACCOUNT,
    SYNC_TOKENS,
)
from crmsync.store import RepCredentials

_CURRENT_PRINCIPAL = tag(DAV, "current-user-principal")


class DavProbe(ConnectionProbe):
    """With per-rep sign-in, ``rep_credentials`` (the rep's stored login) take the
    service account's place (`REP_LOGIN`)."""

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        email: str,
        retry: RetryPolicy | None,
        timeout: float,
        rep_credentials: RepCredentials | None = None,
    ) -> None:
        self.per_rep = (
            settings.connection_method is ConnectionMethod.DAV
            and settings.dav_sign_in is DavSignIn.PER_REP
        )
        self.rep_credentials = rep_credentials
        if self.per_rep:
            password = rep_credentials.password if rep_credentials else None
        super().__init__(settings, password, email, retry, timeout)
        self.anonymous: DavConnection | None = None
        self.connection: DavConnection | None = None
        self.probe: MailboxProbe | None = None
        self.principal: Principal | None = None
        self.calendar: FolderLookup | None = None
        self.contacts: FolderLookup | None = None
        self.anonymous_kinds_missing = False

    def checks(self) -> list[Check]:
        return [
            (SERVER_ADDRESS, self._server_address),
            (REP_LOGIN if self.per_rep else SERVICE_ACCOUNT, self._service_account),
            (REP_DOMAIN, self.rep_domain),
            (REP_MAILBOX, self._rep_mailbox),
            (DEFAULT_CALENDAR, self._default_calendar),
            (CONTACTS_FOLDER, self._contacts_folder),
            (SYNC_TOKENS, self._sync_tokens),
        ]

    # -- 1. server address ----------------------------------------------------------------
    def _server_address(self) -> Outcome:
        method = self.settings.connection_method
        if method is not ConnectionMethod.DAV:
            return fail(
                f"The connection method {method.value!r} is not available yet; this test "
                "checks CalDAV/CardDAV servers.",
                "Choose the DAV connection method in the org settings.",
            )
        url = self.settings.server_url.strip()
        if not url:
            return fail(
                "No server URL is set.",
                "Enter the CalDAV/CardDAV server's address in the org settings, for "
                "example https://mail.example.com/dav/.",
            )
        reached = self.reach(url)
        if isinstance(reached, Outcome):
            return reached
        found, host, port = reached
        answer = self._http_answer(url, host, port)
        if isinstance(answer, Outcome):
            return answer
        note, warning = answer
        found.append(note)
        fix = (
            "If the next steps fail, check the path in the server URL: it must point at "
            "the CalDAV/CardDAV server."
            if warning
            else ""
        )
        return ok(sentence(found), warning=warning, fix=fix)

    def _http_answer(self, url: str, host: str, port: int) -> Outcome | tuple[str, bool]:
        """One OPTIONS request without credentials: does the address speak HTTP, DAV?"""
        self.anonymous = DavConnection(url, retry=self.retry, timeout=self.timeout, read_only=True)
        self.connections.append(self.anonymous)
        try:
            response = self.anonymous.request("OPTIONS", self.anonymous.base_path + "/")
        except AuthenticationFailed:
            return "it answers HTTP and asks for a sign-in", False
        except ServerUnavailable as exc:
            return fail(
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
    def _service_account(self) -> Outcome:
        if self.per_rep:
            account = self.rep_credentials.login if self.rep_credentials else ""
            whose = f"the login {account!r} of {self.email}"
            if self.rep_credentials is None:
                return fail(
                    f"No login is stored for {self.email}; this org signs in with each rep's "
                    "own login and app password.",
                    "Enter the rep's login and an app password on the rep's page (or with "
                    "`crmsync rep-login`, or under reps: in `crmsync config apply`).",
                )
        else:
            account = self.settings.service_account.strip()
            whose = f"the service account {account!r}"
            if not account:
                return fail(
                    "No service account user name is set.",
                    "Enter the service account's user name in the org settings.",
                )
            if self.password is None:
                return fail(
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
        self.connections.append(self.connection)
        base = self.connection.base_path + "/"
        body = propfind_body(_CURRENT_PRINCIPAL)
        open_server = self._answers_anonymously(base, body)
        try:
            response = self.connection.request(
                "PROPFIND", base, body=body, headers={"Depth": "0"}, xml=True
            )
        except AuthenticationFailed:
            scheme = self._scheme()
            return fail(
                f"The server refused {whose} (HTTP 401{scheme}): the user name or the "
                "password is wrong.",
                _credentials_fix(account, self.connection.challenge, self.per_rep),
            )
        if response.status_code == 403:
            return fail(
                f"The server refused {whose} access to {base} (HTTP 403).",
                "Check that the account is enabled and allowed to use CalDAV and "
                "CardDAV on the mail server. "
                + _credentials_fix(account, self.connection.challenge, self.per_rep),
            )
        if response.status_code != 207:
            return fail(
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
            return ok(
                detail + " It does not announce CalDAV or CardDAV in its DAV header, even "
                "to a signed-in client.",
                warning=True,
                fix="If the next steps fail, check the path in the server URL: it must point "
                "at the CalDAV/CardDAV server.",
            )
        if open_server:
            return ok(
                detail + " The server also answers without any sign-in, so the password "
                "was not checked.",
                warning=True,
                fix="Make the mail server require a sign-in: as it is, anyone who can reach "
                "it can read and change every rep's calendar and contacts.",
            )
        return ok(detail)

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

    # -- 4. principal ---------------------------------------------------------------------
    def _rep_mailbox(self) -> Outcome:
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
            return fail(
                as_sentence(exc.message),
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
        return ok(f"Found the principal of {self.email} at {principal.path}; {homes}.")

    # -- 5. calendar ----------------------------------------------------------------------
    def _default_calendar(self) -> Outcome:
        assert self.probe is not None and self.principal is not None
        lookup = self.calendar = self.probe.calendar(self.principal)
        if lookup.source == "default":
            return ok(f"The server names {lookup.path} as the rep's default calendar.")
        if lookup.source == "found":
            return ok(
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
    def _contacts_folder(self) -> Outcome:
        assert self.probe is not None and self.principal is not None
        lookup = self.contacts = self.probe.contacts_folder(self.principal)
        folder = self.settings.contacts_folder
        if lookup.exists:
            return ok(f"Found the address book {folder!r} at {lookup.path}.")
        return self._creatable(
            f"The address book {folder!r}",
            lookup.home,
            f"Create an address book named {folder} for this rep on the mail server, or "
            f"give the service account write access to {lookup.home}.",
        )

    def _creatable(self, what: str, home: str, create_fix: str) -> Outcome:
        """A missing folder: fine if the service account may create it in ``home``."""
        assert self.probe is not None
        allowed = may_create_in(self.probe.privileges(home))
        if allowed is False:
            return fail(
                f"{what} does not exist, and the server says the service account may not "
                f"create folders under {home}.",
                create_fix,
            )
        detail = f"{what} does not exist yet; the first sync creates it under {home}"
        if allowed:
            return ok(detail + " (the service account may create folders there).")
        return ok(
            detail + ". The server does not report the service account's privileges, so "
            "whether it may create the folder shows only then.",
            warning=True,
            fix="If the first sync reports the folder missing: " + create_fix,
        )

    # -- 7. sync tokens -------------------------------------------------------------------
    def _sync_tokens(self) -> Outcome:
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
        detail = sentence(found)
        if lacking:
            return ok(
                detail,
                warning=True,
                fix="Nothing blocks syncing: without sync tokens crmsync lists every item "
                "of the folder each cycle, which is slower and loads the server more. "
                "Turn on WebDAV sync (RFC 6578) on the server if it offers it.",
            )
        if all(lookup is None or lookup.path is None for _, lookup in folders):
            return ok(
                detail + " Run the test again after the first sync to check them.",
                warning=True,
                fix="Nothing to do now: without sync tokens crmsync would list every item "
                "each cycle, which works but is slower.",
            )
        return ok(detail)


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
