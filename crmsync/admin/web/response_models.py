"""The REST API's answers for statuses, the error report, previews and the connection test.

`views` builds these answers as plain dicts (the pages render the same dicts); the routes
declare these models so the OpenAPI document types every field, and the API returns what
`views` says (tests/admin/web/test_response_models.py checks that no field is dropped).
Times are ISO 8601 strings as `views` writes them.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema

from crmsync.domain.crm_settings import CrmKind
from crmsync.domain.records import ItemKind
from crmsync.domain.settings import ConnectionMethod
from crmsync.domain.sync import ErrorType

Instant = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
T = TypeVar("T")


# ---- connection test --------------------------------------------------------------------------


class ConnectionTestStep(BaseModel):
    name: str
    status: Literal["passed", "warning", "failed", "not_run"]
    passed: bool | None = Field(description="None: not run, because an earlier step failed.")
    warning: bool
    detail: str = Field(description="What was found.")
    fix: str = Field(description="What the admin can do (on failures and warnings).")


class ConnectionTestAnswer(BaseModel):
    """Each step of reaching the rep's mailbox (then, for Salesforce, the CRM), in order."""

    server_url: str = Field(description="Without any user name or password it may hold.")
    email: str
    passed: bool = Field(description="Every step that ran passed (warnings included).")
    steps: list[ConnectionTestStep]


# ---- org status -------------------------------------------------------------------------------


class HourCount(BaseModel):
    hour: Instant
    count: int


class KindActivity(BaseModel):
    """The spec's Tables 2 and 3 (contacts, events)."""

    last_sync_activity: Instant | None
    synced_last_60_minutes: int
    synced_last_24_hours: int
    hourly: list[HourCount] = Field(description="Records synced per hour, the last 24 hours.")


class OrgSetupStatus(BaseModel):
    """The spec's Table 1."""

    connection_method: ConnectionMethod
    server_url: str
    service_account: str | None
    service_account_recognized: bool | None = Field(description="None until a rep's cycle has run.")
    event_category: str
    reps: int
    reps_with_a_configuration: int
    linked_users: int


class ApiUsage(BaseModel):
    used: int
    limit: int
    share: float


class CrmStatus(BaseModel):
    """Which CRM the org syncs; the fields after ``error`` come for Salesforce only."""

    kind: CrmKind
    reachable: bool
    error: str | None
    my_domain_url: str | None = None
    api_calls_last_24_hours: int | None = None
    cycles_last_24_hours: int | None = None
    api_calls_per_cycle: float | None = None
    api_usage: ApiUsage | None = None
    writes_paused: bool | None = None
    writes_paused_note: str | None = None


class OrgStatus(BaseModel):
    setup: OrgSetupStatus
    contacts: KindActivity
    events: KindActivity
    crm: CrmStatus


# ---- reps ---------------------------------------------------------------------------------


class FlowStatuses(BaseModel):
    """The sync status each way, in the spec's words ("In sync", "Not started" ...)."""

    crm_to_mail: str
    mail_to_crm: str


class PerKind(BaseModel, Generic[T]):
    contact: T
    event: T


class MailPause(BaseModel):
    """The mail server asked crmsync to leave the rep alone until ``until``."""

    by: str = Field(description='The server, e.g. "Google".')
    until: Instant
    because: str


class RepSummary(BaseModel):
    """One rep's line of the reps list."""

    email: str
    name: str
    configuration: str | None = Field(description="The configuration that applies, if any.")
    flows: PerKind[FlowStatuses]
    records_in_sync: PerKind[int]
    reset_status: str | None
    last_error: str | None
    last_cycle_finished: Instant | None
    errors: int = Field(description="The rep's rows in the error report.")
    failing_items: int = Field(description="Items that failed in the rep's latest cycle.")
    held_deletes: bool = Field(
        description="The mass-delete guard held deletions back, not confirmed yet."
    )
    attention: list[str] = Field(
        description='What to look at, as the console says it ("Deletions held", '
        '"Sign-in refused", "Overdue: due 12 min ago" ...).'
    )
    other_attention: list[str] = Field(
        description="`attention` without a pause (`paused` holds the pause's details)."
    )
    sign_in_refused: bool = Field(
        description="Per-rep sign-in: the mail server refused the rep's stored login."
    )
    next_due: Instant | None = Field(
        description="When the rep's next cycle is due (null: due now, as for a new rep)."
    )
    overdue: bool = Field(
        description="Due longer ago than the org's `overdue_after_minutes` (default 5) and "
        "no worker holds the rep's lease."
    )
    running_on: str | None = Field(
        description="The worker holding the rep's lease (its cycle runs), if any."
    )
    paused: MailPause | None = Field(
        description="A pause the mail server asked for (Google's usage limits), while it lasts."
    )


class RepChecks(BaseModel):
    """The spec's Table 6; None until a cycle has checked."""

    mailbox_supported: bool | None
    recognized: bool | None
    contacts_folder_found: bool | None
    calendar_found: bool | None
    addresses_linked: bool | None


class AuditLine(BaseModel):
    at: Instant
    kind: ItemKind
    action: str
    target: Literal["crm", "mail"] | None
    crm_id: str | None
    mail_id: str | None
    rule: str
    error: str | None


class RepStatus(RepSummary):
    """The spec's Tables 4-6 for one rep, and its recent audit trail (newest first)."""

    checks: RepChecks
    consecutive_failures: int
    audit: list[AuditLine]


# ---- error report and preview -------------------------------------------------------------


class ErrorRow(BaseModel):
    at: Instant
    rep: str = Field(description="The rep's email (its CRM id if the user is gone).")
    kind: ItemKind | None
    item: str | None
    operation: str
    error_type: ErrorType
    message: str
    suggestion: str
    occurrences: int = Field(description="How many cycles met this error since first_at.")
    first_at: Instant | None


class PreviewAction(BaseModel):
    kind: ItemKind
    action: str = Field(description="create, update, delete, pair, relink, unlink or skip.")
    writes_to: Literal["CRM", "mail server"] | None
    item: str = Field(description="The record's subject or name, else its id.")
    rule: str = Field(description="Why, in the configuration's words.")


class RepPreviewAnswer(BaseModel):
    """What the rep's next cycle would do; nothing is written."""

    rep: str
    configuration: str | None
    note: str | None
    actions: list[PreviewAction]
