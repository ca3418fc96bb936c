"""What every backend's connection test shares: running checks in order, the network
reach of an address, the rep's domain, and keeping secrets out of what is shown."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx

from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import SyncError
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.connection_test.result import Step
from crmsync.service.domains import domains_of, mailbox_in_domains

log = logging.getLogger("crmsync.service.connection_test")

NOT_RUN = "Not run: an earlier step failed."
# OpenSSL's reasons when the peer answered a ClientHello with something other than TLS.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"})


class Outcome(NamedTuple):
    passed: bool
    detail: str
    fix: str = ""
    warning: bool = False


Check = tuple[str, Callable[[], Outcome]]


def ok(detail: str, *, warning: bool = False, fix: str = "") -> Outcome:
    return Outcome(True, detail, fix, warning)


def fail(detail: str, fix: str) -> Outcome:
    return Outcome(False, detail, fix)


class ConnectionProbe:
    """One run of one backend's checks: each may use what the checks before it found.

    Subclasses list their checks in `checks` and put what needs closing in
    ``self.connections``.
    """

    def __init__(
        self,
        settings: OrgSettings,
        password: str | None,
        email: str,
        retry: RetryPolicy | None,
        timeout: float,
    ) -> None:
        self.settings = settings
        self.password = password
        self.email = email
        self.retry = retry
        self.timeout = timeout
        self.connections: list[Any] = []

    def checks(self) -> list[Check]:
        raise NotImplementedError

    def run(self, checks: list[Check]) -> tuple[Step, ...]:
        steps: list[Step] = []
        for name, check in checks:
            if steps and not steps[-1].passed:
                steps.append(Step(name, None, NOT_RUN))
                continue
            try:
                outcome = check()
            except SyncError as exc:
                outcome = fail(as_sentence(exc.message), exc.suggestion)
            step = Step(
                name,
                outcome.passed,
                self.redact(outcome.detail),
                self.redact(outcome.fix),
                outcome.warning,
            )
            log.info("connection test for %s: %s: %s", self.email, name, step.status)
            steps.append(step)
        return tuple(steps)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def secrets(self) -> list[str | None]:
        """What must never be shown: the password and one typed into the server URL."""
        return [self.password, urlsplit(self.settings.server_url.strip()).password]

    def redact(self, text: str) -> str:
        # Server and library messages could echo a secret back (a password typed into
        # the URL or the account field); none may reach the admin page or the log.
        for secret in self.secrets():
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def reach(self, url: str) -> Outcome | tuple[list[str], str, int]:
        """DNS, TCP and (for https) TLS to ``url``'s host: a failed step, or what was
        found with the host and port."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            return fail(
                f"{shown_url(url)!r} is not a valid http:// or https:// URL.",
                "Enter the server address as https://host[:port]/path, for example "
                "https://mail.example.com/dav/.",
            )
        host = parts.hostname
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            return fail(
                f"The host name {host} could not be resolved: the DNS lookup failed "
                f"({os_error(exc)}).",
                "Check the host name in the server URL for typos, and that the machine "
                "crmsync runs on can resolve it (its DNS servers or hosts file).",
            )
        resolved = ", ".join(sorted({str(a[4][0]) for a in addresses}))
        where = host if resolved == host else f"{host} ({resolved})"
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        except TimeoutError:
            return fail(
                f"{where} did not accept a connection on port {port} within {self.timeout:g} s.",
                "Check that the server is running, and that no firewall between crmsync "
                "and the server drops the connection.",
            )
        except OSError as exc:
            return fail(
                f"Could not connect to {where} on port {port}: {os_error(exc)}.",
                "Check the port in the server URL, and that the server is running and "
                "listening on it; a firewall may also refuse the connection.",
            )
        found = [f"{where} accepts connections on port {port}"]
        with sock:
            if parts.scheme == "https":
                tls = tls_handshake(sock, host, port)
                if isinstance(tls, Outcome):
                    return tls
                found.append(tls)
        return found, host, port

    def network(self, url: str) -> Outcome:
        reached = self.reach(url)
        if isinstance(reached, Outcome):
            return reached
        return ok(sentence(reached[0]))

    def rep_domain(self) -> Outcome:
        local, at, domain = self.email.rpartition("@")
        if not (local and at and domain) or " " in self.email:
            return fail(
                f"{self.email!r} is not an email address.",
                "Enter the full email address of a rep set up to sync, such as rep@example.com.",
            )
        domains = domains_of(self.settings)
        if not domains:
            return ok(
                "The service account's name holds no domain and no additional domains are "
                f"set, so every address is accepted, {domain} included."
            )
        listed = ", ".join(sorted(domains))
        if mailbox_in_domains(self.email, self.settings):
            return ok(f"{domain} is one of the service account's domains ({listed}).")
        return fail(
            f"{domain} is not one of the service account's domains ({listed}).",
            f"If reps' addresses use {domain}, add it to the additional domains in the org "
            "settings; otherwise check the rep's email address.",
        )


def tls_handshake(sock: socket.socket, host: str, port: int) -> Outcome | str:
    # The same trust store as the sync's HTTP client (certifi, or SSL_CERT_FILE/DIR).
    context = httpx.create_ssl_context()
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return fail(
            f"The TLS certificate of {host} is not trusted: "
            f"{str(exc.verify_message or exc.reason or exc).rstrip('.')}.",
            f"Give the server a certificate for {host} from a certificate authority "
            "crmsync trusts, that has not expired; for a private CA, add it to crmsync's "
            "trust store (SSL_CERT_FILE). The host name in the URL must be one the "
            "certificate names.",
        )
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or os_error(exc)
        if reason in _NOT_TLS_REASONS:
            reason += ": the server's answer was not TLS (plain HTTP, typically)"
        return fail(
            f"The TLS handshake with {host} on port {port} failed ({reason}).",
            "Check that this port serves HTTPS: if the server speaks plain HTTP there, "
            "write the URL with http://, or use the server's HTTPS port.",
        )
    return f"the TLS handshake succeeded ({version}) and the certificate is valid for {host}"


def sentence(parts: list[str]) -> str:
    return as_sentence("; ".join(parts))


def as_sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def shown_url(url: str) -> str:
    """``url`` without the user name and password it may carry."""
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip()
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
