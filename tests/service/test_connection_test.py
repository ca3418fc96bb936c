"""The admin's connection test against real servers: Radicale, Xandikos, a Radicale behind
a rule proxy, and small TLS listeners started here with certificates made here.

Every run checks that the steps come in order and that the password appears nowhere in
the result; tests that expect nothing to change on the server list every collection and
item before and after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import re
import select
import socket
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crmsync.domain.settings import OrgSettings
from crmsync.groupware.dav import RetryPolicy
from crmsync.groupware.dav.local_server import free_port
from crmsync.service.connection_test import (
    CONTACTS_FOLDER,
    DEFAULT_CALENDAR,
    REP_DOMAIN,
    REP_MAILBOX,
    SERVER_ADDRESS,
    SERVICE_ACCOUNT,
    STEP_NAMES,
    SYNC_TOKENS,
    ConnectionTestResult,
    run_connection_test,
)
from tests.servers import (
    REP_EMAIL,
    REP_PASSWORD,
    DavServerInfo,
    dav_server,
    running_dav_server,
    start_radicale,
)
from tests.service.http_proxy import Request, Rule, RuleProxy

__all__ = ["dav_server"]

NO_RETRY = RetryPolicy(max_attempts=1)
LATER_STEPS_NOT_RUN = ["not_run"] * 5


def run(
    settings: OrgSettings, password: str | None, email: str = REP_EMAIL
) -> ConnectionTestResult:
    result = run_connection_test(settings, password, email, retry=NO_RETRY)
    assert [step.name for step in result.steps] == list(STEP_NAMES)
    rendered = json.dumps(result.as_dict())
    if password:
        assert password not in rendered
    assert json.loads(rendered)["passed"] is result.passed
    return result


def statuses(result: ConnectionTestResult) -> list[str]:
    return [step.status for step in result.steps]


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


# -- what is on the server ----------------------------------------------------------------

_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:">'
    "<d:prop><d:resourcetype/></d:prop></d:propfind>"
)


def server_tree(info: DavServerInfo) -> list[str]:
    """Every collection and item on the server the service account can see."""
    seen: set[str] = set()
    todo = ["/"]
    with httpx.Client(base_url=info.url, auth=(info.username, info.password)) as client:
        while todo:
            path = todo.pop()
            response = client.request(
                "PROPFIND",
                path,
                content=_PROPFIND,
                headers={"Depth": "1", "Content-Type": "application/xml"},
            )
            assert response.status_code == 207, (path, response.status_code)
            for element in ET.fromstring(response.content).iter("{DAV:}response"):
                href = unquote(urlsplit(element.findtext("{DAV:}href", "")).path)
                if href == unquote(path) or href in seen:
                    continue
                seen.add(href)
                if element.find(".//{DAV:}resourcetype/{DAV:}collection") is not None:
                    todo.append(href)
    return sorted(seen)


def rep_home(info: DavServerInfo, kind: str) -> str:
    if info.name == "xandikos":
        return "/user/calendars/" if kind == "calendar" else "/user/contacts/"
    if info.name == "sabredav":
        return f"/{'calendars' if kind == 'calendar' else 'addressbooks'}/{info.email}/"
    return f"/{info.email}/"


def create_folder(info: DavServerInfo, kind: str, name: str) -> str:
    """Create a calendar or address book as the rep would, with their own client."""
    path = rep_home(info, kind) + name + "/"
    if kind == "calendar":
        method = "MKCALENDAR"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set>'
            f"<d:prop><d:displayname>{name}</d:displayname></d:prop></d:set></c:mkcalendar>"
        )
    else:
        method = "MKCOL"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<d:mkcol xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>'
            "<d:resourcetype><d:collection/><a:addressbook/></d:resourcetype>"
            f"<d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>"
        )
    response = httpx.request(
        method,
        info.url + path,
        content=body,
        headers={"Content-Type": "application/xml"},
        auth=info.rep_auth or (REP_EMAIL, REP_PASSWORD),
    )
    assert response.status_code in (200, 201), response.text
    return path


# -- TLS ----------------------------------------------------------------------------------


def make_certificate(folder: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (an IP address or host name) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alt = x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsFront:
    """A TLS listener on 127.0.0.1 that forwards the decrypted bytes to ``upstream_port``
    (without one, it only completes handshakes)."""

    def __init__(self, cert: Path, key: Path, upstream_port: int | None = None) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(raw)
            try:
                tls = stack.enter_context(self._context.wrap_socket(raw, server_side=True))
            except OSError:
                return  # the client gave up on the handshake: what some tests want
            if self._upstream_port is None:
                return
            upstream = stack.enter_context(
                socket.create_connection(("127.0.0.1", self._upstream_port))
            )
            # One thread per connection: an SSL socket must not be read and written at
            # once from two threads.
            with contextlib.suppress(OSError):
                while True:
                    ready = [tls] if tls.pending() else select.select([tls, upstream], [], [])[0]
                    for source in ready:
                        data = source.recv(65536)
                        if not data:
                            return
                        (upstream if source is tls else tls).sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


@contextlib.contextmanager
def tls_front(cert: Path, key: Path, upstream_port: int | None = None) -> Iterator[TlsFront]:
    front = TlsFront(cert, key, upstream_port)
    try:
        yield front
    finally:
        front.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


# -- everything passes --------------------------------------------------------------------


def test_all_steps_pass_and_nothing_is_created(dav_server: DavServerInfo) -> None:
    if dav_server.name == "radicale":
        calendar = create_folder(dav_server, "calendar", "work")
    elif dav_server.name == "sabredav":
        calendar = f"/calendars/{dav_server.email}/default/"  # made with the user
    else:
        calendar = "/user/calendars/calendar/"  # made by xandikos --defaults
    before = server_tree(dav_server)

    result = run(dav_server.settings(), dav_server.password, dav_server.email)

    assert result.passed, result.as_dict()
    assert server_tree(dav_server) == before
    assert not any(path.endswith("/CRM_Sync/") for path in before)
    assert unquote(calendar) in unquote(result.step(DEFAULT_CALENDAR).detail)
    contacts = result.step(CONTACTS_FOLDER)
    assert contacts.status == "passed"
    assert "does not exist yet; the first sync creates it" in contacts.detail
    assert rep_home(dav_server, "contacts") in unquote(contacts.detail)
    tokens = result.step(SYNC_TOKENS)
    assert tokens.status == "passed"
    assert "calendar answers sync-collection" in tokens.detail
    # Xandikos runs without authentication here: the test says the password went unchecked.
    account = result.step(SERVICE_ACCOUNT)
    if dav_server.name == "xandikos":
        assert account.status == "warning"
        assert "password was not checked" in account.detail
        assert "require a sign-in" in account.fix
    else:
        assert account.status == "passed"
    assert result.as_dict()["steps"][0] == {
        "name": SERVER_ADDRESS,
        "status": "passed",
        "passed": True,
        "warning": False,
        "detail": result.steps[0].detail,
        "fix": "",
    }


def test_existing_folders_are_found_and_checked_for_sync_tokens(
    dav_server: DavServerInfo,
) -> None:
    if dav_server.name == "radicale":
        create_folder(dav_server, "calendar", "calendar")
    contacts = create_folder(dav_server, "contacts", "CRM_Sync")
    before = server_tree(dav_server)

    result = run(dav_server.settings(), dav_server.password, dav_server.email)

    assert result.passed, result.as_dict()
    assert server_tree(dav_server) == before
    assert result.step(CONTACTS_FOLDER).detail.startswith("Found the address book 'CRM_Sync'")
    assert unquote(contacts) in unquote(result.step(CONTACTS_FOLDER).detail)
    tokens = result.step(SYNC_TOKENS)
    assert tokens.status == "passed"
    assert tokens.detail == (
        "The calendar answers sync-collection; the contacts folder answers sync-collection."
    )


def test_empty_mailbox_passes_with_folders_the_first_sync_creates(
    radicale: DavServerInfo,
) -> None:
    before = server_tree(radicale)

    result = run(radicale.settings(), radicale.password)

    assert statuses(result) == ["passed"] * 6 + ["warning"]
    assert server_tree(radicale) == before
    for name in (DEFAULT_CALENDAR, CONTACTS_FOLDER):
        assert "does not exist yet; the first sync creates it" in result.step(name).detail
        assert "may create folders there" in result.step(name).detail
    assert "not checked" in result.step(SYNC_TOKENS).detail
    assert result.passed


# -- server address -----------------------------------------------------------------------


def test_unknown_host_fails_on_dns(tmp_path: Path) -> None:
    settings = OrgSettings(server_url="http://no-such-host.invalid/dav/", service_account="svc")

    result = run(settings, "secret-password")

    assert statuses(result) == ["failed"] + ["not_run"] * 6
    address = result.step(SERVER_ADDRESS)
    assert "no-such-host.invalid could not be resolved" in address.detail
    assert "DNS" in address.detail
    assert "host name" in address.fix
    assert not result.passed
    assert result.step(SYNC_TOKENS).detail == "Not run: an earlier step failed."


def test_closed_port_fails_to_connect() -> None:
    port = free_port()  # nothing listens on it
    settings = OrgSettings(server_url=f"http://127.0.0.1:{port}/", service_account="svc")

    result = run(settings, "secret-password")

    assert statuses(result) == ["failed"] + ["not_run"] * 6
    address = result.step(SERVER_ADDRESS)
    assert f"Could not connect to 127.0.0.1 on port {port}: " in address.detail
    assert "refused" in address.detail.lower()
    assert "port" in address.fix


def test_https_to_a_plain_http_port_fails_the_tls_handshake(radicale: DavServerInfo) -> None:
    url = radicale.url.replace("http://", "https://")

    result = run(radicale.settings(server_url=url), radicale.password)

    assert statuses(result) == ["failed"] + ["not_run"] * 6
    address = result.step(SERVER_ADDRESS)
    assert address.detail.startswith(f"The TLS handshake with 127.0.0.1 on port {port_of(url)}")
    assert "not TLS" in address.detail
    assert "http://" in address.fix


def test_self_signed_certificate_is_not_trusted(certificate: tuple[Path, Path]) -> None:
    with tls_front(*certificate) as front:
        settings = OrgSettings(server_url=f"https://127.0.0.1:{front.port}/", service_account="s")
        result = run(settings, "secret-password")

    assert statuses(result) == ["failed"] + ["not_run"] * 6
    address = result.step(SERVER_ADDRESS)
    assert address.detail.startswith("The TLS certificate of 127.0.0.1 is not trusted")
    assert re.search(r"self[- ]signed", address.detail), address.detail
    assert "certificate authority" in address.fix


def test_certificate_for_another_host_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = make_certificate(tmp_path, "mail.example.com")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, but names another host
    with tls_front(cert, key) as front:
        settings = OrgSettings(server_url=f"https://127.0.0.1:{front.port}/", service_account="s")
        result = run(settings, "secret-password")

    address = result.step(SERVER_ADDRESS)
    assert address.status == "failed"
    assert "not trusted" in address.detail
    assert "mismatch" in address.detail.lower(), address.detail


def test_trusted_certificate_passes_over_https(
    radicale: DavServerInfo, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with tls_front(*certificate, upstream_port=port_of(radicale.url)) as front:
        url = f"https://127.0.0.1:{front.port}"
        result = run(radicale.settings(server_url=url), radicale.password)

    assert result.passed, result.as_dict()
    address = result.step(SERVER_ADDRESS)
    assert "the TLS handshake succeeded (TLSv1." in address.detail
    assert "certificate is valid for 127.0.0.1" in address.detail
    assert result.server_url == url


def test_http_to_a_tls_port_fails_without_an_http_answer(
    certificate: tuple[Path, Path],
) -> None:
    with tls_front(*certificate) as front:
        settings = OrgSettings(server_url=f"http://127.0.0.1:{front.port}/", service_account="s")
        result = run(settings, "secret-password")

    assert statuses(result) == ["failed"] + ["not_run"] * 6
    address = result.step(SERVER_ADDRESS)
    assert "accepts connections" in address.detail
    assert "no usable HTTP answer" in address.detail
    assert "https://" in address.fix


# -- service account ----------------------------------------------------------------------


def test_wrong_password_fails_the_service_account_step(radicale: DavServerInfo) -> None:
    result = run(radicale.settings(), "not-the-password")

    assert statuses(result) == ["passed", "failed", *LATER_STEPS_NOT_RUN]
    account = result.step(SERVICE_ACCOUNT)
    assert (
        "refused the service account 'crmsync-service' (HTTP 401; basic authentication)"
        in account.detail
    )
    assert "user name and password" in account.fix
    assert "try" not in account.fix  # a plain user name: no other format to suggest
    assert "not-the-password" not in json.dumps(result.as_dict())


def test_missing_password_fails_the_service_account_step(radicale: DavServerInfo) -> None:
    result = run(radicale.settings(), None)

    assert statuses(result) == ["passed", "failed", *LATER_STEPS_NOT_RUN]
    assert "No password is stored" in result.step(SERVICE_ACCOUNT).detail


@pytest.mark.parametrize(
    "challenge, suggested",
    [
        ("NTLM", "try crmsync-service@example.com"),  # Exchange-style: the format matters
        ('Basic realm="dav"', None),  # a CalDAV server: no DOMAIN\\user guess
    ],
)
def test_refused_domain_backslash_account_gets_a_format_hint_only_where_it_helps(
    radicale: DavServerInfo, challenge: str, suggested: str | None
) -> None:
    proxy = RuleProxy(radicale.url, _refuse_with(challenge))
    try:
        settings = radicale.settings(
            server_url=proxy.url, service_account="example.com\\crmsync-service"
        )
        result = run(settings, "x-pass")
    finally:
        proxy.close()

    account = result.step(SERVICE_ACCOUNT)
    assert account.status == "failed"
    assert challenge.split()[0].lower() in account.detail
    if suggested:
        assert suggested in account.fix
    else:
        assert "DOMAIN" not in account.fix and "try" not in account.fix
    assert result.step(REP_DOMAIN).status == "not_run"


def test_refused_user_at_domain_account_on_ntlm_suggests_domain_backslash(
    radicale: DavServerInfo,
) -> None:
    proxy = RuleProxy(radicale.url, _refuse_with("Negotiate"))
    try:
        settings = radicale.settings(
            server_url=proxy.url, service_account="crmsync-service@example.com"
        )
        result = run(settings, "x-pass")
    finally:
        proxy.close()

    account = result.step(SERVICE_ACCOUNT)
    assert account.status == "failed"
    assert "try example.com\\crmsync-service" in account.fix


def _refuse_with(challenge: str) -> Rule:
    """A rule answering every signed-in request 401 with ``challenge``."""

    def rule(request: Request) -> tuple[int, dict[str, str]] | None:
        return (401, {"WWW-Authenticate": challenge}) if request.signed_in else None

    return rule


# -- domains and the rep's mailbox --------------------------------------------------------


def test_rep_outside_the_domains_fails_the_domain_step(radicale: DavServerInfo) -> None:
    settings = radicale.settings(additional_domains=("example.net", "example.org"))

    result = run(settings, radicale.password)

    assert statuses(result) == ["passed", "passed", "failed"] + ["not_run"] * 4
    domain = result.step(REP_DOMAIN)
    assert domain.detail == (
        "example.com is not one of the service account's domains (example.net, example.org)."
    )
    assert "add it to the additional domains" in domain.fix


def test_rep_in_an_additional_domain_passes(radicale: DavServerInfo) -> None:
    settings = radicale.settings(additional_domains=("Example.COM",))

    result = run(settings, radicale.password)

    assert result.step(REP_DOMAIN).detail == (
        "example.com is one of the service account's domains (example.com)."
    )
    assert result.passed


def test_unknown_principal_fails_the_mailbox_step(dav_server: DavServerInfo) -> None:
    # Radicale knows no such user; Xandikos has only /user/.
    settings = dav_server.settings(principal_path="/{email}/")
    before = server_tree(dav_server)

    result = run(settings, dav_server.password, "nobody@example.com")

    account = "warning" if dav_server.name == "xandikos" else "passed"
    assert statuses(result) == ["passed", account, "passed", "failed"] + ["not_run"] * 3
    mailbox = result.step(REP_MAILBOX)
    assert mailbox.status == "failed"
    assert mailbox.detail == (
        "No principal for nobody@example.com at /nobody%40example.com/ (HTTP 404)."
    )
    assert "principal path" in mailbox.fix
    assert server_tree(dav_server) == before  # a sync would have tried MKCOL here


def test_service_account_without_access_to_the_rep_fails_the_mailbox_step(
    tmp_path: Path,
) -> None:
    server = start_radicale(tmp_path, {"other@example.com": "other-secret"})
    try:
        settings = OrgSettings(server_url=server.url, service_account="other@example.com")
        result = run(settings, "other-secret")
    finally:
        server.stop()

    assert statuses(result) == ["passed", "passed", "passed", "failed"] + ["not_run"] * 3
    mailbox = result.step(REP_MAILBOX)
    assert "may not read /rep%40example.com/" in mailbox.detail
    assert "Give the service account access to the rep's calendars" in mailbox.fix


# -- sync tokens --------------------------------------------------------------------------


def test_server_refusing_sync_collection_passes_with_a_warning(radicale: DavServerInfo) -> None:
    create_folder(radicale, "calendar", "calendar")
    proxy = RuleProxy(radicale.url, lambda request: 501 if request.method == "REPORT" else None)
    try:
        result = run(radicale.settings(server_url=proxy.url), radicale.password)
    finally:
        proxy.close()

    assert result.passed
    assert statuses(result) == ["passed"] * 6 + ["warning"]
    tokens = result.step(SYNC_TOKENS)
    assert tokens.detail == (
        "The calendar reports a sync-token but refused sync-collection (HTTP 501); "
        "the contacts folder does not exist yet, so it was not checked."
    )
    assert "lists every item" in tokens.fix
    assert [request.method for request, _ in proxy.answered] == ["REPORT"]
    assert result.warnings == (tokens,)
