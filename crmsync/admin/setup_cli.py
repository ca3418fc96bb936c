"""`crmsync setup ...`: how crmsync reaches the mail server, one command per connection
method, and the org's CRM (`setup salesforce`, `setup builtin-crm`). Each checks the
settings with the same rules as the Setup page and the API.

A connection command replaces the connection (`CONNECTION_FIELDS`) and keeps the org's
policy settings (the mass-delete guard, audit retention, ...) as they are stored. Run
again for the method the org already uses, it changes only what it is given: an option
left out (None) keeps its stored value, and without the password variable the stored
password is kept for the same account. Switching methods, options left out take their
defaults and the password must be given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from crmsync.admin.crm_validation import crm_settings_problems
from crmsync.admin.validation import org_settings_problems
from crmsync.crm.salesforce import SalesforceCrm
from crmsync.crm.salesforce.field_setup import create_marker_fields
from crmsync.domain.crm_settings import (
    SALESFORCE_API_VERSION,
    SALESFORCE_MARKER_FIELD,
    CrmKind,
    CrmSettings,
    SalesforceFlow,
)
from crmsync.domain.settings import (
    ConnectionMethod,
    DavSignIn,
    ExchangeAuth,
    OrgSettings,
    with_connection,
)
from crmsync.domain.sync import SyncError
from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

console = Console()

setup_app = typer.Typer(
    help="Connect crmsync to the mail server and to the CRM.", no_args_is_help=True
)


def _or_stored(help_text: str, default: str) -> str:
    """``help_text`` for an option that keeps its stored value when left out."""
    return f"{help_text} Default: the stored value, else {default}."


# Without its variable, the stored password is kept (see `_save_setup`).
_KEPT_PASSWORD = "; unset: the stored one is kept (same method and account)."


@setup_app.command("dav")
def setup_dav(
    url: Annotated[str, typer.Argument(help="The CalDAV/CardDAV server's base URL.")],
    service_account: Annotated[
        str, typer.Option(help="Service account user name (none with --per-rep).")
    ] = "",
    password_env: Annotated[
        str,
        typer.Option(
            help="Environment variable holding the service account's password" + _KEPT_PASSWORD
        ),
    ] = "CRMSYNC_SERVICE_PASSWORD",
    principal_path: Annotated[
        str | None,
        typer.Option(
            help=_or_stored(
                "Where a rep's principal lives, with {email}, {local} or {user}.", "/{email}/"
            )
        ),
    ] = None,
    per_rep: Annotated[
        bool,
        typer.Option(
            "--per-rep",
            help="Sign in with each rep's own login and app password (Nextcloud, Baïkal, "
            "iCloud, Fastmail); set them with `crmsync setup rep-login`.",
        ),
    ] = False,
    contacts_folder: Annotated[
        str | None, typer.Option(help=_or_stored("Address book reps sync.", "CRM_Sync"))
    ] = None,
    additional_domains: Annotated[
        str | None,
        typer.Option(
            help=_or_stored(
                "Comma-separated rep email domains besides the service account's.", "none"
            )
        ),
    ] = None,
) -> None:
    """Save the CalDAV/CardDAV connection; the password is read from the environment."""
    connection = dict(
        server_url=url.rstrip("/"),
        service_account=service_account,
        principal_path=principal_path,
        dav_sign_in=DavSignIn.PER_REP if per_rep else DavSignIn.SERVICE_ACCOUNT,
        contacts_folder=contacts_folder,
        additional_domains=_domains(additional_domains),
    )
    settings = _save_setup(
        ConnectionMethod.DAV,
        connection,
        password_env,
        password_needed=not per_rep,
    )
    who = "each rep's own login" if per_rep else service_account
    console.print(f"Saved the connection to {settings.server_url} as {who}.")


@setup_app.command("rep-login")
def setup_rep_login(
    email: Annotated[str, typer.Argument(help="The rep's email address.")],
    login: Annotated[str, typer.Option(help="The rep's user name on the DAV server.")],
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the rep's app password.")
    ] = "CRMSYNC_REP_PASSWORD",
) -> None:
    """Store a rep's own login and app password (per-rep sign-in), encrypted; it is never
    shown again. A rep that needed attention is synced again at once."""
    password = os.environ.get(password_env)
    if not password or not login.strip():
        console.print(f"[red]error:[/red] set {password_env} to the rep's app password")
        raise typer.Exit(1)
    with SyncService(Deployment.from_env()) as service:
        service.set_rep_sign_in(email.strip(), login.strip(), password)
    console.print(f"Saved the login {login.strip()!r} for {email.strip()}.")


def _save_setup(
    method: ConnectionMethod,
    connection: dict[str, Any],
    password_env: str,
    *,
    password_needed: bool = True,
) -> OrgSettings:
    """Connect by ``method`` with ``connection`` and the password from ``password_env``
    (see `_save_checked`). Without the variable, the stored password is kept while it
    applies (`stored_password_applies`: the same method and account)."""
    password = os.environ.get(password_env) or ""
    how = f"set {password_env} to the password"
    return _save_checked(
        method, connection, password, password_needed, how, may_keep_stored=True
    )


def _save_checked(
    method: ConnectionMethod,
    connection: dict[str, Any],
    password: str,
    needed: bool,
    how: str,
    *,
    may_keep_stored: bool = False,
) -> OrgSettings:
    """Save the stored settings connected by ``method`` with ``connection`` (the org's
    policy kept), if the rules the API and the console apply allow them; otherwise print
    every problem and exit 1. ``how``: what to do when a ``needed`` password is missing
    and no stored one is kept (only with ``may_keep_stored``, see `_save_setup`)."""
    with SyncService(Deployment.from_env()) as service:
        stored = service.org_settings()
        settings = with_connection(stored, method, **connection)
        problems = org_settings_problems(settings, password_known=True, password=password or None)
        keeps = may_keep_stored and service.kept_password(settings) is not None
        if not password and needed and not keeps:
            problems.append(("password", how))
        if problems:
            _fail(problems)
        service.configure_server(settings, password)
    return settings


def _domains(text: str | None) -> tuple[str, ...] | None:
    """The comma-separated domains in ``text``; None (left out) stays None."""
    if text is None:
        return None
    return tuple(d.strip() for d in text.split(",") if d.strip())


@setup_app.command("exchange")
def setup_exchange(
    service_account: Annotated[
        str, typer.Option(help="The service account: user@domain or DOMAIN\\user.")
    ],
    ews_url: Annotated[
        str | None,
        typer.Option(
            help=_or_stored(
                "The EWS URL; empty: Autodiscover from the account's address.", "Autodiscover"
            )
        ),
    ] = None,
    auth: Annotated[
        ExchangeAuth | None, typer.Option(help=_or_stored("How the account signs in.", "ntlm"))
    ] = None,
    password_env: Annotated[
        str,
        typer.Option(help="Environment variable holding the account's password" + _KEPT_PASSWORD),
    ] = "CRMSYNC_SERVICE_PASSWORD",
    contacts_folder: Annotated[
        str | None, typer.Option(help=_or_stored("Contacts subfolder reps sync.", "CRM_Sync"))
    ] = None,
    additional_domains: Annotated[
        str | None,
        typer.Option(
            help=_or_stored("Comma-separated rep email domains besides the account's.", "none")
        ),
    ] = None,
) -> None:
    """Save the Exchange Server (EWS) connection: a service account with impersonation."""
    connection = dict(
        server_url=None if ews_url is None else ews_url.strip(),
        service_account=service_account,
        exchange_auth=auth,
        contacts_folder=contacts_folder,
        additional_domains=_domains(additional_domains),
    )
    _save_setup(ConnectionMethod.EWS, connection, password_env)
    console.print(f"Saved the Exchange connection as {service_account}.")


@setup_app.command("m365")
def setup_m365(
    tenant: Annotated[str, typer.Option(help="The Microsoft Entra tenant id or domain.")],
    client_id: Annotated[str, typer.Option(help="The app registration's client id.")],
    certificate_thumbprint: Annotated[
        str | None,
        typer.Option(
            help=_or_stored(
                "Use a certificate: its thumbprint (the secret is its PEM key); empty: a "
                "client secret.",
                "none",
            )
        ),
    ] = None,
    secret_env: Annotated[
        str,
        typer.Option(
            help="Environment variable holding the client secret or PEM key" + _KEPT_PASSWORD
        ),
    ] = "CRMSYNC_SERVICE_PASSWORD",
    contacts_folder: Annotated[
        str | None, typer.Option(help=_or_stored("Contacts folder reps sync.", "CRM_Sync"))
    ] = None,
    additional_domains: Annotated[
        str | None,
        typer.Option(help=_or_stored("Comma-separated rep email domains (empty: any).", "empty")),
    ] = None,
    notify_attendees_on_crm_edits: Annotated[
        bool | None,
        typer.Option(
            help=_or_stored("Let CRM edits update meetings (Graph mails attendees).", "off")
        ),
    ] = None,
) -> None:
    """Save the Microsoft 365 connection: an app registration with admin consent."""
    connection = dict(
        graph_tenant_id=tenant,
        graph_client_id=client_id,
        graph_certificate_thumbprint=certificate_thumbprint,
        contacts_folder=contacts_folder,
        additional_domains=_domains(additional_domains),
        notify_attendees_on_crm_edits=notify_attendees_on_crm_edits,
    )
    _save_setup(ConnectionMethod.GRAPH, connection, secret_env)
    console.print(f"Saved the Microsoft 365 connection for tenant {tenant}.")


@setup_app.command("google")
def setup_google(
    key_file: Annotated[
        Path, typer.Option(help="The service account's JSON key, as the Cloud console saved it.")
    ],
    domain: Annotated[
        list[str], typer.Option(help="A Workspace email domain of the reps (repeat for more).")
    ],
    event_color: Annotated[
        str | None,
        typer.Option(
            help=_or_stored(
                "Google event colour id (1-11) that marks an event for the CRM "
                '("Events users select"); empty: none.',
                "none",
            )
        ),
    ] = None,
    contacts_folder: Annotated[
        str | None, typer.Option(help=_or_stored("Contact group reps sync.", "CRM_Sync"))
    ] = None,
    notify_attendees_on_crm_edits: Annotated[
        bool | None,
        typer.Option(
            help=_or_stored("Let CRM edits update meetings (Google mails attendees).", "off")
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(hidden=True, help="One address standing in for Google's (tests)."),
    ] = None,
) -> None:
    """Save the Google Workspace connection: a service account with domain-wide delegation.

    The key is stored encrypted and never shown again."""
    try:
        key_json = key_file.read_text()
    except OSError as exc:
        _fail([("key_file", f"cannot read {key_file}: {exc.strerror or exc}")])
    connection = dict(
        server_url=None if api_url is None else api_url.strip(),
        additional_domains=_domains(",".join(domain)),
        google_event_color=None if event_color is None else event_color.strip(),
        contacts_folder=contacts_folder,
        notify_attendees_on_crm_edits=notify_attendees_on_crm_edits,
    )
    settings = _save_checked(
        ConnectionMethod.GOOGLE, connection, key_json, True, "the key file is empty"
    )
    console.print(
        f"Saved the Google Workspace connection for {', '.join(settings.additional_domains)}. "
        "Check it with `crmsync connection-test --rep EMAIL`.",
        highlight=False,
    )


@setup_app.command("salesforce")
def setup_salesforce(
    my_domain_url: Annotated[
        str, typer.Argument(help="The org's My Domain URL, e.g. https://acme.my.salesforce.com.")
    ],
    client_id: Annotated[str, typer.Option(help="The app's consumer key.")],
    flow: Annotated[SalesforceFlow, typer.Option(help="The OAuth 2.0 flow.")] = (
        SalesforceFlow.JWT_BEARER
    ),
    username: Annotated[
        str, typer.Option(help="The integration user's username (JWT bearer).")
    ] = "",
    key_file: Annotated[
        Path | None,
        typer.Option(help="JWT bearer: the PEM private key of the app's certificate."),
    ] = None,
    secret_env: Annotated[
        str,
        typer.Option(help="Client credentials: environment variable holding the consumer secret."),
    ] = "CRMSYNC_SF_CLIENT_SECRET",
    sandbox: Annotated[bool, typer.Option(help="The org is a sandbox.")] = False,
    api_version: Annotated[str, typer.Option(help="REST API version.")] = SALESFORCE_API_VERSION,
    marker_field: Annotated[
        str, typer.Option(help="External-id field for crmsync's marker on Contact and Event.")
    ] = SALESFORCE_MARKER_FIELD,
    create_fields: Annotated[
        bool,
        typer.Option(
            help="Create the marker field on Contact and Event (Tooling API) and give the "
            "integration user read and edit access to it (a permission set)."
        ),
    ] = False,
) -> None:
    """Sync a Salesforce org: the key or secret is stored encrypted, never shown again.

    Without --key-file (or the secret variable) the stored one is kept."""
    settings = CrmSettings(
        kind=CrmKind.SALESFORCE,
        my_domain_url=my_domain_url.strip().rstrip("/"),
        api_version=api_version.strip(),
        flow=flow,
        client_id=client_id.strip(),
        username=username.strip(),
        sandbox=sandbox,
        marker_field=marker_field.strip(),
    )
    secret = None
    if flow is SalesforceFlow.JWT_BEARER and key_file is not None:
        try:
            secret = key_file.read_text()
        except OSError as exc:
            _fail([("key_file", f"cannot read {key_file}: {exc.strerror or exc}")])
    elif flow is SalesforceFlow.CLIENT_CREDENTIALS:
        secret = os.environ.get(secret_env) or None
    with SyncService(Deployment.from_env()) as service:
        stored = service.store.get_secret(SALESFORCE_SECRET) is not None
        problems = crm_settings_problems(settings, secret=secret, secret_stored=stored)
        if problems:
            if any(name == "secret" for name, _ in problems):
                how = "--key-file" if flow is SalesforceFlow.JWT_BEARER else f"${secret_env}"
                problems.append(("secret", f"give it with {how}"))
            _fail(problems)
        service.configure_crm(settings, secret)
        console.print(
            f"Saved the Salesforce org {settings.my_domain_url} ({flow.value}).", highlight=False
        )
        crm = service.crm
        if create_fields and isinstance(crm, SalesforceCrm):
            _create_marker_fields(crm)
    console.print("Check it with `crmsync connection-test --rep EMAIL`.", highlight=False)


def _create_marker_fields(crm: SalesforceCrm) -> None:
    try:
        steps = create_marker_fields(crm)
    except SyncError as failure:
        _fail(
            [
                ("create-fields", failure.message),
                ("create-fields", failure.suggestion),
                ("create-fields", "or create the fields by hand: admin guide, section 5a"),
            ]
        )
    for step in steps:
        console.print(f"  {step.name}: {step.detail}", highlight=False)


@setup_app.command("builtin-crm")
def setup_builtin_crm() -> None:
    """Sync the built-in CRM again (the Salesforce setup and its key are forgotten)."""
    with SyncService(Deployment.from_env()) as service:
        service.configure_crm(CrmSettings())
        service.store.delete_secret(SALESFORCE_SECRET)
    console.print("The org syncs the built-in CRM.")


def _fail(problems: list[tuple[str, str]]) -> NoReturn:
    for name, problem in problems:
        console.print(f"[red]error:[/red] {name}: {problem}", highlight=False)
    raise typer.Exit(1)
