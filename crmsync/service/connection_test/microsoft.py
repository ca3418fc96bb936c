"""Connection-test steps for Exchange Server (EWS) and Microsoft 365 (Graph): each a
real request as the service account, through the backends' own checks."""

from __future__ import annotations

from crmsync.service.connection_test.probe import Check, ConnectionProbe, Outcome, fail, ok
from crmsync.service.connection_test.result import (
    EXCHANGE_VERSION,
    GRAPH_DELTA,
    GRAPH_MAILBOX,
    GRAPH_TOKEN,
    IMPERSONATION,
    REP_DOMAIN,
    SERVER_ADDRESS,
)


class MicrosoftProbe(ConnectionProbe):
    """The backend's connection, made once for every step that needs it."""

    backend: object = None

    def connection(self) -> object:
        if self.backend is None:
            from crmsync.service.mailboxes import MailServer

            self.backend = MailServer(self.settings, self.password).connection
            self.connections.append(self.backend)
        return self.backend

    def outcome(self, found: tuple[bool, str, str]) -> Outcome:
        passed, detail, fix = found
        return ok(detail) if passed else fail(detail, fix)

    def no_password(self) -> Outcome | None:
        if self.password:
            return None
        return fail("No password (or app secret) is stored.", "Enter it on the Setup page.")


class ExchangeProbe(MicrosoftProbe):
    def checks(self) -> list[Check]:
        """The address (unless Autodiscover), the rep's domain, then real EWS requests as
        the rep (authentication, version, impersonation)."""
        return [
            (SERVER_ADDRESS, self._address),
            (REP_DOMAIN, self.rep_domain),
            (EXCHANGE_VERSION, lambda: self._check("version")),
            (IMPERSONATION, lambda: self._check("impersonation")),
        ]

    def _address(self) -> Outcome:
        if not self.settings.server_url.strip():
            return ok(
                "No EWS URL is set: crmsync finds the server with Autodiscover from the "
                "service account's address.",
                warning=True,
                fix="If the next steps cannot reach the server, enter the EWS URL, e.g. "
                "https://mail.example.com/EWS/Exchange.asmx.",
            )
        return self.network(self.settings.server_url.strip())

    def _check(self, check: str) -> Outcome:
        if missing := self.no_password():
            return missing
        from crmsync.groupware.ews import check_impersonation, check_server_version

        run = check_server_version if check == "version" else check_impersonation
        return self.outcome(run(self.connection(), self.email))


class GraphProbe(MicrosoftProbe):
    def checks(self) -> list[Check]:
        """A token for the app, the rep's domain, the rep's folders, delta queries."""
        return [
            (GRAPH_TOKEN, lambda: self._check("token")),
            (REP_DOMAIN, self.rep_domain),
            (GRAPH_MAILBOX, lambda: self._check("mailbox")),
            (GRAPH_DELTA, lambda: self._check("delta")),
        ]

    def _check(self, check: str) -> Outcome:
        if missing := self.no_password():
            return missing
        from crmsync.groupware.graph import probe

        connection = self.connection()
        if check == "token":
            return self.outcome(probe.check_token(connection))
        if check == "mailbox":
            return self.outcome(
                probe.check_mailbox(connection, self.email, self.settings.contacts_folder)
            )
        return self.outcome(probe.check_delta(connection, self.email))
