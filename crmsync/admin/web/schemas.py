"""The REST API's request and response bodies, and the error answers each route declares.

Error bodies follow one of two shapes, as the OpenAPI document says: ``{"detail": "..."}``
(`Problem`) for 400, 401, 403, 404, 409 and 413, and FastAPI's validation shape
``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`` for every 422, whether the
schema or a rule of ours refused the request (see `invalid`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, Field, field_validator

from crmsync.admin.validation import CONFIGURATION_NAME_MAX, CONFIGURATION_NAME_RULE
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import (
    ConnectionMethod,
    ContactSettings,
    DavSignIn,
    EventSettings,
    ExchangeAuth,
)
from crmsync.domain.sync import ErrorType
from crmsync.store import ErrorSort


class Problem(BaseModel):
    """Why the request was refused, in a sentence."""

    detail: str


_ANSWERS = {
    400: "The body is not JSON in UTF-8.",
    401: "No valid session cookie or API token (``Authorization: Bearer TOKEN``).",
    403: "The caller lacks a permission this needs, or a session cookie came without its "
    "``X-CSRF-Token``.",
    404: "Not found.",
    409: "Conflicts with what is saved.",
    413: "The body is larger than the server accepts (`crmsync serve --max-body-bytes`).",
}


def answers(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error ``codes`` (a `Problem` body each); a description
    may be given as ``e404="..."``."""
    return {
        code: {"model": Problem, "description": descriptions.get(f"e{code}", _ANSWERS[code])}
        for code in codes
    }


# Every route: a caller may be unknown or lack a permission.
SIGNED_IN = answers(401, 403)
# Every route with a JSON body.
WITH_BODY = answers(400, 413)


def invalid(problems: Iterable[tuple[str, str]], *, where: str = "body") -> RequestValidationError:
    """A 422 in FastAPI's validation shape, one entry per (setting, problem); an empty
    setting stands for the whole ``where``."""
    return RequestValidationError(
        [
            {
                "loc": (where, name) if name else (where,),
                "msg": message,
                "type": "value_error",
                "input": None,
            }
            for name, message in problems
        ]
    )


def _strictly_typed(cls: type) -> BeforeValidator:
    """Refuse a settings object whose true/false or whole-number fields come as anything
    else (pydantic would take ``0``, ``"yes"`` or ``"3"``; the schema promises booleans
    and integers)."""
    hints = typing.get_type_hints(cls)
    scalars = {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for name, kind in scalars.items():
            if name not in value:
                continue
            given = value[name]
            if kind is bool and not isinstance(given, bool):
                raise ValueError(f"{name} is true or false, not {given!r}")
            if kind is int and (isinstance(given, bool) or not isinstance(given, int)):
                raise ValueError(f"{name} is a whole number, not {given!r}")
        return value

    return BeforeValidator(check)


class Me(BaseModel):
    username: str
    permissions: list[str]


class Setup(BaseModel):
    """How crmsync reaches the mail server. The password is write-only.

    Required per connection method: ``dav`` needs ``server_url`` and ``service_account``;
    ``ews`` needs ``service_account`` (an empty ``server_url`` means Autodiscover);
    ``graph`` needs ``graph_tenant_id`` and ``graph_client_id``; ``google`` needs the
    Workspace's domains in ``additional_domains`` and takes ``google_event_color`` ("1" to
    "11", the colour that marks "events users select"; empty: none). A ``server_url`` is an
    http:// or https:// URL with a host; ``principal_path`` contains a placeholder
    (``{email}``, ``{local}`` or ``{user}``) and no other; a password must be given unless
    one is stored. With ``dav_sign_in`` ``per_rep`` (Nextcloud, Baïkal, iCloud, Fastmail)
    no service account or password is needed: each rep's login is set at
    ``/api/v1/reps/{email}/sign-in``.
    """

    connection_method: ConnectionMethod = ConnectionMethod.DAV
    server_url: str = Field("", max_length=2000)
    service_account: str = Field("", max_length=500)
    principal_path: str = Field("/{email}/", max_length=500)
    dav_sign_in: DavSignIn = DavSignIn.SERVICE_ACCOUNT
    additional_domains: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list, max_length=200
    )
    contacts_folder: str = Field("CRM_Sync", min_length=1, max_length=200)
    event_category: str = Field("CRM", min_length=1, max_length=200)
    mass_delete_percent: int = Field(10, ge=1, le=100, strict=True)
    mass_delete_count: int = Field(50, ge=1, strict=True)
    mass_delete_minimum: int = Field(5, ge=0, strict=True)
    audit_retention_days: int = Field(30, ge=1, le=3650, strict=True)
    overdue_after_minutes: int = Field(5, ge=1, le=1440, strict=True)
    exchange_auth: ExchangeAuth = ExchangeAuth.NTLM
    graph_tenant_id: str = Field("", max_length=200)
    graph_client_id: str = Field("", max_length=200)
    graph_certificate_thumbprint: str = Field("", max_length=200)
    notify_attendees_on_crm_edits: bool = Field(False, strict=True)
    google_event_color: str = Field("", max_length=2)


class SetupIn(Setup):
    password: str | None = Field(
        None,
        max_length=20_000,
        description="The service account's password (Microsoft 365: the app's client secret "
        "or, with a certificate thumbprint, its PEM private key; Google Workspace: the "
        "service account's JSON key, the whole file); omit to keep it.",
    )


class SetupOut(Setup):
    password_stored: bool


class ConnectionTestIn(BaseModel):
    email: str = Field(..., min_length=3, max_length=320, description="A rep's email.")


class Configuration(BaseModel):
    """A configuration; reps by email and profiles by name (as `crmsync config export`)."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=CONFIGURATION_NAME_MAX,
        description=f"Unique in the org. A new name (or a rename) must follow the rule: "
        f"{CONFIGURATION_NAME_RULE}. Names saved before the rule stay as they are.",
    )
    active: bool = Field(True, strict=True)
    description: str = Field("", max_length=2000)
    users: list[Annotated[str, Field(max_length=320)]] = Field(default_factory=list)
    profiles: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    contacts: Annotated[ContactSettings, _strictly_typed(ContactSettings)] = Field(
        default_factory=ContactSettings
    )
    events: Annotated[EventSettings, _strictly_typed(EventSettings)] = Field(
        default_factory=EventSettings
    )


class SavedConfiguration(Configuration):
    warnings: list[str] = Field(default_factory=list)


# A date, or a date and time, as ISO 8601 writes it (pydantic would also take a number of
# seconds since 1970, which the schema's "date-time" does not promise).
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class ErrorExportFilters(BaseModel):
    """Which error-report rows, in which order (an export holds every matching row)."""

    rep: str | None = Field(None, max_length=320)
    kind: ItemKind | None = None
    error_type: ErrorType | None = None
    since: dt.datetime | None = Field(None, description="ISO 8601, e.g. 2026-11-20T10:00:00Z")
    sort: ErrorSort = ErrorSort.TIME
    descending: bool = True

    @field_validator("since", mode="before")
    @classmethod
    def _iso_only(cls, value: Any) -> Any:
        if isinstance(value, str | int | float) and not _ISO_DATE.match(str(value)):
            raise ValueError("expected an ISO 8601 date and time, e.g. 2026-11-20T10:00:00Z")
        return value


class ErrorFilters(ErrorExportFilters):
    """`ErrorExportFilters` and a page of the rows."""

    limit: int = Field(200, ge=1, le=10_000)
    offset: int = Field(0, ge=0, le=10_000_000)
