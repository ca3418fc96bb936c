"""Configuration as code: the org's settings and configurations as one YAML document.

`export_text` writes what is saved; `read_document` turns a document back into values,
collecting every problem (unknown keys with a suggestion, wrong types, unknown reps or
profiles) instead of stopping at the first. Reps appear by email and profiles by name, so
a file carries from a sandbox to production. Secrets are never written: the document may
name an environment variable that holds the service account's password, and one that
holds the Salesforce app's private key or consumer secret.

The ``crm`` section says which CRM the org syncs (written when it is not the built-in
CRM); a document without one leaves the CRM as saved. A document that switches the CRM
has its reps, profiles and custom fields checked against the CRM it switches to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from crmsync.admin.crm_validation import crm_settings_problems
from crmsync.admin.validation import configuration_name_problem, org_settings_problems
from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.settings import ContactSettings, EventSettings, OrgSettings, SyncConfig
from crmsync.domain.sync import SyncError
from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.runner import SyncService
from crmsync.store.codec import from_json, to_json

PASSWORD_ENV_KEY = "service_password_env"
SECRET_ENV_KEY = "secret_env"
_HEADER = (
    "# crmsync configuration: org settings and sync configurations.\n"
    "# Apply with `crmsync config apply FILE`. The service account's password is never\n"
    f"# written here; to set it, add `{PASSWORD_ENV_KEY}: VARIABLE` under `org` and put the\n"
    "# password in that environment variable (the Salesforce key or secret likewise:\n"
    f"# `{SECRET_ENV_KEY}: VARIABLE` under `crm`). With per-rep sign-in each rep's login is\n"
    "# listed under `reps`; give its app password with `password_env: VARIABLE` there.\n"
)
REP_PASSWORD_ENV_KEY = "password_env"


@dataclass
class Document:
    """What a configuration document asks for."""

    org: OrgSettings
    configs: list[SyncConfig]
    password: str | None = None
    # None: the document leaves the CRM section (and its secret) as saved.
    crm: CrmSettings | None = None
    crm_secret: str | None = None
    # Per-rep sign-in (DAV): (email, login, app password) to store.
    rep_logins: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


class DocumentError(ValueError):
    """The document cannot be applied; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def export_text(service: SyncService) -> str:
    """The org's saved settings and configurations as a YAML document."""
    saved = service.org_settings(), service.crm_settings(), service.store.configs()
    return _HEADER + _dump(service, *saved)


def document_text(service: SyncService, document: Document) -> str:
    """``document`` written the way `export_text` writes, for an exact diff."""
    crm = document.crm or service.crm_settings()
    with _crm_of(service, document):
        return _HEADER + _dump(service, document.org, crm, document.configs)


def _dump(
    service: SyncService, org: OrgSettings, crm: CrmSettings, configs: list[SyncConfig]
) -> str:
    names = _names(service)
    data: dict[str, Any] = {"org": to_json(org)}
    if crm != CrmSettings():
        data["crm"] = to_json(crm)
    data["configurations"] = [_configuration(config, *names) for config in configs]
    logins = [(e, service.store.rep_credentials(e)) for e in service.store.reps_with_credentials()]
    if logins:  # the logins only: app passwords are never written out
        data["reps"] = [{"email": e, "login": c.login} for e, c in logins if c is not None]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@contextlib.contextmanager
def _crm_of(service: SyncService, document: Document) -> Iterator[None]:
    """Within the block the service's CRM is the one ``document`` leaves the org with."""
    if document.crm is None or (
        document.crm == service.crm_settings() and document.crm_secret is None
    ):
        yield
        return
    secret = document.crm_secret or service.store.get_secret(SALESFORCE_SECRET)
    with service.crm_as(document.crm, secret):
        yield


def _names(service: SyncService) -> tuple[dict[str, str], dict[str, str]]:
    emails = {user.id: user.email for user in service.crm.list_users()}
    profiles = {profile.id: profile.name for profile in service.crm.list_profiles()}
    return emails, profiles


def _configuration(
    config: SyncConfig, emails: dict[str, str], profiles: dict[str, str]
) -> dict[str, Any]:
    return {
        "name": config.name,
        "active": config.active,
        "description": config.description,
        "users": sorted(emails.get(i, i) for i in config.user_ids),
        "profiles": sorted(profiles.get(i, i) for i in config.profile_ids),
        "contacts": to_json(config.contacts),
        "events": to_json(config.events),
    }


def configuration_data(service: SyncService, config: SyncConfig) -> dict[str, Any]:
    """One configuration as the document (and the REST API) writes it."""
    return _configuration(config, *_names(service))


def configuration_from(service: SyncService, item: dict[str, Any]) -> SyncConfig:
    """A configuration from its document form; raises `DocumentError` with every problem
    (it is not checked against the other configurations: saving does that)."""
    problems: list[str] = []
    users = {user.email.casefold(): user.id for user in service.crm.list_users()}
    profiles = {profile.name: profile.id for profile in service.crm.list_profiles()}
    config = _config(item, "the configuration", users, profiles, problems)
    if config is None or problems:
        raise DocumentError(problems or ["the configuration cannot be read"])
    return config


def diff(current: str, wanted: str, name: str) -> str:
    """A unified diff from the saved state to the document (empty: nothing changes)."""
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            "saved",
            name,
        )
    )


def read_document(service: SyncService, text: str) -> Document:
    """The document's values; raises `DocumentError` with every problem found."""
    data = _load(text)
    problems: list[str] = []
    _unknown_keys(data, {"org", "crm", "configurations", "reps"}, "", problems)
    rep_logins = _rep_logins(service, data.get("reps"), problems)
    crm, crm_secret = _crm_section(service, data.get("crm"), problems)
    if problems:
        raise DocumentError(problems)
    document = Document(OrgSettings(), [], None, crm, crm_secret)
    try:
        with _crm_of(service, document):
            org, configs, password = _org_and_configurations(service, data, problems)
    except SyncError as failure:  # the CRM switched to cannot be read
        problems.append(f"crm: {failure.message} ({failure.suggestion})")
    if problems:
        raise DocumentError(problems)
    return Document(org, configs, password, crm, crm_secret, rep_logins)


def _rep_logins(
    service: SyncService, section: Any, problems: list[str]
) -> list[tuple[str, str, str]]:
    """``reps: [{email, login, password_env}]``: each rep's own sign-in. Without
    ``password_env`` the stored app password is kept (it is never exported)."""
    found: list[tuple[str, str, str]] = []
    for index, item in enumerate(section or []):
        where = f"reps[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping with email, login, password_env")
            continue
        _unknown_keys(item, {"email", "login", REP_PASSWORD_ENV_KEY}, where, problems)
        email, login = str(item.get("email") or "").strip(), str(item.get("login") or "").strip()
        if not email or not login:
            problems.append(f"{where}: email and login are required")
            continue
        password = _secret(item.get(REP_PASSWORD_ENV_KEY), where, REP_PASSWORD_ENV_KEY, problems)
        if password is None and item.get(REP_PASSWORD_ENV_KEY) is None:
            stored = service.store.rep_credentials(email)
            if stored is None:
                problems.append(
                    f"{where}: no app password is stored for {email}: add "
                    f"{REP_PASSWORD_ENV_KEY}: VARIABLE"
                )
                continue
            if stored.login == login:
                continue  # as saved
            password = stored.password
        if password:
            found.append((email, login, password))
    return found


def _load(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentError([f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise DocumentError(["the document must be a mapping with `org` and `configurations`"])
    return data


def _crm_section(
    service: SyncService, section: Any, problems: list[str]
) -> tuple[CrmSettings | None, str | None]:
    if section is None:
        return None, None
    if not isinstance(section, dict):
        problems.append("crm: expected a mapping")
        return None, None
    section = dict(section)
    secret = _secret(section.pop(SECRET_ENV_KEY, None), "crm", SECRET_ENV_KEY, problems)
    crm = _decode(CrmSettings, section, "crm", problems)
    if crm is None:
        return None, None
    if crm != service.crm_settings() or secret is not None:
        stored = service.store.get_secret(SALESFORCE_SECRET) is not None
        for name, problem in crm_settings_problems(crm, secret=secret, secret_stored=stored):
            problems.append(f"crm.{name}: {problem}")
    return crm, secret


def _org_and_configurations(
    service: SyncService, data: dict[str, Any], problems: list[str]
) -> tuple[OrgSettings, list[SyncConfig], str | None]:
    org_data = dict(data.get("org") or {})
    password = _secret(org_data.pop(PASSWORD_ENV_KEY, None), "org", PASSWORD_ENV_KEY, problems)
    org = _decode(OrgSettings, org_data, "org", problems) or service.org_settings()
    if org != service.org_settings() or password is not None:
        # The same rules as the Setup page and the API; org settings the file leaves as
        # they are saved (e.g. a new deployment's empty ones) are not saved anew.
        effective = password or service.kept_password(org)
        for name, problem in org_settings_problems(
            org, password_known=bool(effective), password=effective
        ):
            problems.append(f"org.{name}: {problem}")
    stored_names = {config.name for config in service.store.configs()}
    configs = []
    users = {user.email.casefold(): user.id for user in service.crm.list_users()}
    profiles = {profile.name: profile.id for profile in service.crm.list_profiles()}
    seen_names: set[str] = set()
    for index, item in enumerate(data.get("configurations") or []):
        where = f"configurations[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        config = _config(item, where, users, profiles, problems)
        if config is None:
            continue
        if config.name in seen_names:
            problems.append(f"{where}: the name {config.name!r} is used twice")
        if config.name not in stored_names and (
            name_problem := configuration_name_problem(config.name)
        ):
            problems.append(f"{where}: {name_problem}")
        seen_names.add(config.name)
        configs.append(config)
    problems += _shared_assignments(configs)
    if not problems:
        problems += service.configuration_problems(configs)
    return org, configs, password


def _config(
    item: dict[str, Any],
    where: str,
    users: dict[str, str],
    profiles: dict[str, str],
    problems: list[str],
) -> SyncConfig | None:
    before = len(problems)
    keys = {"name", "active", "description", "users", "profiles", "contacts", "events"}
    _unknown_keys(item, keys, where, problems)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: a configuration needs a name")
        return None
    where = f"configuration {name!r}"
    user_ids = []
    for email in item.get("users") or []:
        found = users.get(str(email).casefold())
        if found is None:
            problems.append(f"{where}: no CRM user has the email {email}")
        else:
            user_ids.append(found)
    profile_ids = []
    for profile in item.get("profiles") or []:
        found = profiles.get(str(profile))
        if found is None:
            problems.append(f"{where}: no profile is named {profile!r}")
        else:
            profile_ids.append(found)
    contacts = _decode(ContactSettings, item.get("contacts") or {}, f"{where}, contacts", problems)
    events = _decode(EventSettings, item.get("events") or {}, f"{where}, events", problems)
    active, description = item.get("active", True), item.get("description", "")
    if not isinstance(active, bool):
        problems.append(f"{where}: active is true or false, not {active!r}")
    if not isinstance(description, str):
        problems.append(f"{where}: description must be text")
    if contacts is None or events is None or len(problems) > before:
        return None
    return SyncConfig(
        name, active, description, tuple(user_ids), tuple(profile_ids), contacts, events
    )


def _decode(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping")
        return None
    before = len(problems)
    _check_keys(cls, data, where, problems)
    if len(problems) > before:
        return None
    try:
        return from_json(cls, data)
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None


def _check_keys(cls: type, data: dict[str, Any], where: str, problems: list[str]) -> None:
    """Unknown keys at any depth of a settings dataclass (a typo must not pass silently)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _unknown_keys(data, set(fields), where, problems)
    hints = _nested_types(cls)
    for key, value in data.items():
        inner = hints.get(key)
        if inner is None:
            continue
        items = value if isinstance(value, list) else [value]
        for index, element in enumerate(items):
            if isinstance(element, dict):
                suffix = f"[{index}]" if isinstance(value, list) else ""
                _check_keys(inner, element, f"{where}.{key}{suffix}", problems)


def _nested_types(cls: type) -> dict[str, type]:
    """Fields holding dataclasses (or tuples of them), with that dataclass."""
    found = {}
    for name, hint in typing.get_type_hints(cls).items():
        candidates = [hint, *typing.get_args(hint)]
        for candidate in candidates:
            if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
                found[name] = candidate
    return found


def _unknown_keys(data: dict[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{where + ': ' if where else ''}unknown setting {key!r}{hint}")


def _secret(variable: Any, where: str, key: str, problems: list[str]) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(str(variable))
    if not value:
        problems.append(
            f"{where}: {key} names {variable}, but that environment variable is not set"
        )
    return value


def _shared_assignments(configs: list[SyncConfig]) -> list[str]:
    problems = []
    owner: dict[tuple[str, str], str] = {}
    for config in configs:
        for subject, ids in (("user", config.user_ids), ("profile", config.profile_ids)):
            for subject_id in ids:
                other = owner.setdefault((subject, subject_id), config.name)
                if other != config.name:
                    problems.append(
                        f"a {subject} is assigned to both {other!r} and {config.name!r}; "
                        "each belongs to one configuration"
                    )
    return problems


def apply_document(service: SyncService, document: Document) -> dict[str, list[str]]:
    """Save the document: org settings (and password, if given), then all configurations
    at once. Returns each configuration's warnings."""
    if document.crm is not None and (
        document.crm != service.crm_settings() or document.crm_secret is not None
    ):
        service.configure_crm(document.crm, document.crm_secret)
    if document.password is not None:
        service.configure_server(document.org, document.password)
    else:
        service.store.save_org_settings(document.org)
    for email, login, password in document.rep_logins:
        service.set_rep_sign_in(email, login, password)
    return service.replace_configs(document.configs)
