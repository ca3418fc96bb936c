"""What an admin may save, checked the same way by the REST API, the console's forms and
the CLI (`setup ...`, `config add`, `config apply`).

Each rule returns every problem it finds, each tied to the setting it is about, so every
caller can list them all at once (the API as 422 entries, the forms above the form, the
CLI one line each).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from crmsync.domain.principal_path import principal_path_problems
from crmsync.domain.settings import ConnectionMethod, DavSignIn, OrgSettings

CONFIGURATION_NAME_MAX = 200
# Besides letters and digits (of any script): the punctuation names of teams and regions
# use. Left out on purpose: "/" (the name is one segment of the console's and the API's
# URLs), "\" (browsers turn it into "/"), "?", "#" and "%" (URL syntax), and quotes other
# than the apostrophe.
_NAME_PUNCTUATION = " -_.,'&()+"
CONFIGURATION_NAME_RULE = (
    f"a configuration name is 1 to {CONFIGURATION_NAME_MAX} characters: letters, digits, "
    "spaces and - _ . , ' & ( ) +, starting with a letter or digit and not ending with a "
    'space; "new" is taken by the console\'s page for a new configuration'
)
# The console's page for a new configuration is /configurations/new.
_RESERVED_NAMES = frozenset({"new"})


def configuration_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be given to a new (or renamed) configuration, or ``None``.

    Configurations saved before this rule keep their names: callers check only names
    that are not stored yet.
    """
    valid = (
        0 < len(name) <= CONFIGURATION_NAME_MAX
        and name[0].isalnum()
        and not name[-1].isspace()
        and all(c.isalnum() or c in _NAME_PUNCTUATION for c in name)
        and name not in _RESERVED_NAMES
    )
    return None if valid else f"{name!r} cannot be used: {CONFIGURATION_NAME_RULE}"


# Which settings each connection method cannot work without.
_REQUIRED = {
    ConnectionMethod.DAV: {
        "server_url": "the CalDAV/CardDAV server's URL is required",
        "service_account": "the service account's user name is required",
    },
    ConnectionMethod.EWS: {
        "service_account": "the service account (user@domain or DOMAIN\\user) is required",
    },
    ConnectionMethod.GRAPH: {
        "graph_tenant_id": "the Microsoft Entra tenant id (or domain) is required",
        "graph_client_id": "the app registration's client id is required",
    },
    ConnectionMethod.GOOGLE: {},
}
GOOGLE_COLORS = tuple(str(n) for n in range(1, 12))


def org_settings_problems(
    settings: OrgSettings, *, password_known: bool, password: str | None = None
) -> list[tuple[str, str]]:
    """Why ``settings`` cannot be saved, as (setting, problem) pairs (empty: they can).

    ``password_known``: a password (or app secret) is given with the settings or already
    stored; without one no connection method can sign in, except DAV with per-rep sign-in
    (each rep's login and app password are entered per rep). ``password``, when given
    with the settings, is checked where its form is known (Google: a service account's
    JSON key; the problem never quotes it).
    """
    problems: list[tuple[str, str]] = []
    method = settings.connection_method
    if method not in _REQUIRED:
        problems.append(("connection_method", f"{method.value!r} is not available yet"))
        return problems
    per_rep = method is ConnectionMethod.DAV and settings.dav_sign_in is DavSignIn.PER_REP
    for name, message in _REQUIRED[method].items():
        # With per-rep sign-in each rep's own login is used: no service account.
        if per_rep and name == "service_account":
            continue
        if not str(getattr(settings, name)).strip():
            problems.append((name, message))
    url = settings.server_url.strip()
    if url and (problem := url_problem(url)):
        problems.append(("server_url", problem))
    if method is ConnectionMethod.DAV:
        problems += [
            ("principal_path", p) for p in principal_path_problems(settings.principal_path)
        ]
    if method is ConnectionMethod.GOOGLE:
        problems += _google_problems(settings, password)
    for name in ("contacts_folder", "event_category"):
        if not getattr(settings, name).strip():
            problems.append((name, "must not be empty"))
    problems += _number_problems(settings)
    if not password_known and not per_rep:
        problems.append(
            (
                "password",
                "no password (or app secret) is stored for this connection method and "
                "account: give one with the setup",
            )
        )
    return problems


def url_problem(url: str) -> str | None:
    """Why ``url`` is no server URL crmsync can use, or ``None``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return "not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "must name a host, e.g. https://dav.example.com/"
    return credentials_in_url_problem(url)


def credentials_in_url_problem(url: str) -> str | None:
    """Refuse ``user:password@`` in a URL: a URL is shown on pages, printed and exported
    to configuration files, while a password belongs in its own, encrypted field."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    return (
        "must not hold a user name or password (user:password@...): enter them in their "
        "own fields, where they are stored encrypted and never shown"
    )


# (setting, lowest, highest or None): the same bounds the API's schema declares.
NUMBER_BOUNDS = (
    ("mass_delete_percent", 1, 100),
    ("mass_delete_count", 1, None),
    ("mass_delete_minimum", 0, None),
    ("audit_retention_days", 1, 3650),
    ("overdue_after_minutes", 1, 1440),
)


def _number_problems(settings: OrgSettings) -> list[tuple[str, str]]:
    problems = []
    for name, low, high in NUMBER_BOUNDS:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((name, f"must be a whole number, not {value!r}"))
        elif value < low or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            problems.append((name, f"must be {bounds}, not {value}"))
    return problems


def _google_problems(settings: OrgSettings, key_json: str | None) -> list[tuple[str, str]]:
    problems = []
    if not any(d.strip() for d in settings.additional_domains):
        problems.append(
            ("additional_domains", "list the Workspace's email domain(s) the reps' addresses use")
        )
    for domain in settings.additional_domains:
        if "@" in domain or " " in domain.strip() or "." not in domain:
            problems.append(("additional_domains", f"{domain!r} is not an email domain"))
    if settings.google_event_color and settings.google_event_color not in GOOGLE_COLORS:
        problems.append(("google_event_color", "a Google event colour id, 1 to 11 (empty: none)"))
    url = settings.server_url.strip()
    if url and urlsplit(url).scheme == "http" and urlsplit(url).hostname != "127.0.0.1":
        # An address override exists for test doubles only; Google is reached over https.
        problems.append(("server_url", "leave it empty for Google (http only for 127.0.0.1)"))
    if key_json:
        from crmsync.domain.sync import SyncError
        from crmsync.groupware.google import parse_key

        try:
            parse_key(key_json)
        except SyncError as refused:
            problems.append(("password", f"{refused.message}. {refused.suggestion}"))
    return problems
