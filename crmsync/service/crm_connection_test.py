"""The connection test's CRM side, for an org that syncs Salesforce.

`run_crm_connection_test` walks what a cycle needs of the org, each a `Step` with what it
found and, when something is wrong, what the admin can do: a token for the app, the API
version, API access and the object permissions a cycle uses, crmsync's marker field on
Contact and Event, whether Shared Activities is on, the day's API usage, and the rep as a
Salesforce user. It only reads, with a `SalesforceCrm` of its own (a fresh token, no
cached describe), and costs about eight API calls. The key or secret appears in no step
and no log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from crmsync.crm.salesforce import SalesforceCrm
from crmsync.domain.crm_settings import CrmSettings, SalesforceFlow
from crmsync.domain.sync import SyncError
from crmsync.service.connection_test import Step
from crmsync.service.crms import salesforce_config

log = logging.getLogger(__name__)

TOKEN = "Salesforce token minted"
API_VERSION = "Salesforce API version available"
OBJECT_ACCESS = "API access and object permissions"
CONTACT_MARKER = "Marker field on Contact"
EVENT_MARKER = "Marker field on Event"
SHARED_ACTIVITIES = "Shared Activities"
API_USAGE = "Salesforce API usage read (last 24 hours)"
REP_USER = "Rep is a Salesforce user"
CRM_STEP_NAMES = (
    TOKEN,
    API_VERSION,
    OBJECT_ACCESS,
    CONTACT_MARKER,
    EVENT_MARKER,
    SHARED_ACTIVITIES,
    API_USAGE,
    REP_USER,
)
# What a cycle does to each object: contacts and person accounts (through Account) and
# events are created, edited and deleted; leads are only read (auto-relate).
WRITTEN_OBJECTS = ("Contact", "Account", "Event")
READ_OBJECTS = ("Lead",)
# Above this share of the daily allocation the usage step warns.
USAGE_WARNING = 0.8
_NOT_RUN = "Not run: an earlier step failed."

Outcome = tuple[bool, str, str, bool]  # passed, detail, fix, warning


def run_crm_connection_test(
    settings: CrmSettings,
    secret: str | None,
    email: str,
    *,
    make: Callable[..., SalesforceCrm] = SalesforceCrm,
) -> tuple[Step, ...]:
    """The CRM steps for the rep with ``email`` (``""``: the steps that need no rep).
    Never raises for what it finds in Salesforce: that is a failed step."""
    config = salesforce_config(settings, secret)
    problems = config.problems()
    if problems:
        first = Step(
            TOKEN,
            False,
            "The Salesforce setup is incomplete: " + "; ".join(problems) + ".",
            "Complete it with `crmsync setup salesforce` or on the Setup page.",
        )
        return (first, *(Step(name, None, _NOT_RUN) for name in CRM_STEP_NAMES[1:]))
    crm = make(config, poll_interval=0.0)
    try:
        test = _CrmTest(crm, settings, email.strip())
        checks: list[tuple[str, Callable[[], Outcome]]] = [
            (TOKEN, test.token),
            (API_VERSION, test.api_version),
            (OBJECT_ACCESS, test.object_access),
            (CONTACT_MARKER, lambda: test.marker("Contact")),
            (EVENT_MARKER, lambda: test.marker("Event")),
            (SHARED_ACTIVITIES, test.shared_activities),
            (API_USAGE, test.usage),
        ]
        if email.strip():
            checks.append((REP_USER, test.rep))
        return _run(checks, secret)
    finally:
        crm.close()


def _run(checks: list[tuple[str, Callable[[], Outcome]]], secret: str | None) -> tuple[Step, ...]:
    steps: list[Step] = []
    blocked = False  # every later step needs a token and the API version
    for name, check in checks:
        if blocked:
            steps.append(Step(name, None, _NOT_RUN))
            continue
        try:
            passed, detail, fix, warning = check()
        except SyncError as failure:
            passed, detail, fix, warning = False, failure.message, failure.suggestion, False
        step = Step(name, passed, _redact(detail, secret), _redact(fix, secret), warning)
        log.info("connection test: %s: %s", name, step.status)
        steps.append(step)
        blocked = name in (TOKEN, API_VERSION) and not passed
    return tuple(steps)


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


class _CrmTest:
    def __init__(self, crm: SalesforceCrm, settings: CrmSettings, email: str) -> None:
        self.crm = crm
        self.settings = settings
        self.email = email

    def token(self) -> Outcome:
        self.crm.conn.tokens.token()
        who = (
            f"the integration user {self.settings.username}"
            if self.settings.flow is SalesforceFlow.JWT_BEARER
            else "the app's Run-As user"
        )
        return True, f"Salesforce issued an access token for {who} ({self.crm.url}).", "", False

    def api_version(self) -> Outcome:
        wanted = self.settings.api_version
        try:
            response = self.crm.conn.client.get(
                f"{self.crm.url}/services/data/", timeout=self.crm.config.timeout
            )
            offered = [str(v.get("version")) for v in response.json() if isinstance(v, dict)]
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            return (
                False,
                "The list of API versions could not be read from the My Domain URL.",
                "Check the My Domain URL: it is the org's address, e.g. "
                "https://acme.my.salesforce.com.",
                False,
            )
        if wanted in offered:
            return True, f"The org offers API version {wanted}.", "", False
        newest = max(offered, key=lambda v: float(v) if v.replace(".", "").isdigit() else 0.0)
        return (
            False,
            f"The org does not offer API version {wanted} (its newest is {newest}).",
            f"Set the API version to {newest} (or an older one it lists).",
            False,
        )

    def object_access(self) -> Outcome:
        """The first describe calls: an API-disabled user fails here (ApiDisabled)."""
        missing = []
        for sobject in WRITTEN_OBJECTS + READ_OBJECTS:
            info = self.crm.describe.get(sobject)
            if info is None:
                missing.append(f"{sobject}: not visible")
                continue
            if sobject in WRITTEN_OBJECTS:
                lacking = [
                    verb
                    for verb, allowed in (
                        ("Create", info.createable),
                        ("Edit", info.updateable),
                        ("Delete", info.deletable),
                    )
                    if not allowed
                ]
                if lacking:
                    missing.append(f"{sobject}: no {', '.join(lacking)}")
        if missing:
            return (
                False,
                "The integration user lacks object permissions: " + "; ".join(missing) + ".",
                "Give the integration user (through a permission set) Read, Create, Edit and "
                "Delete (with View All and Modify All) on Contact, Account and events, and "
                "Read on Lead, as the admin guide's 'Connect Salesforce' section lists.",
                False,
            )
        return (
            True,
            "API access works; the integration user may create, edit and delete contacts, "
            "accounts and events, and read leads.",
            "",
            False,
        )

    def shared_activities(self) -> Outcome:
        if self.crm.shared_activities():
            detail = (
                "On: an event from the mail server is related to up to 50 contacts (EventWhoIds)."
            )
        else:
            detail = (
                "Off: an event from the mail server is related to one contact (WhoId); "
                "turn Shared Activities on in Setup > Activity Settings to relate more."
            )
        return True, detail, "", False

    def marker(self, sobject: str) -> Outcome:
        field = self.settings.marker_field
        info = self.crm.describe.get(sobject)
        found = info.field(field) if info is not None else None
        # Event holds the marker as plain text (upsert is not dependable for events).
        keyed = sobject != "Event"
        how = (
            "Run `crmsync setup salesforce ... --create-fields`, or by hand: "
            f"in Setup > Object Manager > {'Activity' if sobject == 'Event' else sobject} > "
            "Fields & Relationships, create a Text "
            f"field of length 255 named {field.removesuffix('__c')} ({field})"
            + (", tick External ID and Unique," if keyed else "")
            + " and give the integration user read and edit access to it (field-level "
            "security); the admin guide's 'Connect Salesforce' section shows each step."
        )
        if found is None:
            return (
                False,
                f"{sobject} has no field {field} the integration user can see.",
                how,
                False,
            )
        if not (found.createable and found.updateable):
            return (
                False,
                f"{sobject}.{field} exists but the integration user may not edit it.",
                f"Give the integration user edit access to {sobject}.{field}.",
                False,
            )
        if keyed and not found.external_id:
            return (
                True,
                f"{sobject}.{field} exists but is not marked External ID.",
                f"Mark {sobject}.{field} as External ID: crmsync finds a create repeated "
                "after a crash by it.",
                True,
            )
        kind = "an External ID" if keyed else "a text field"
        return True, f"{sobject}.{field} exists, is {kind} and can be edited.", "", False

    def usage(self) -> Outcome:
        usage = self.crm.api_usage()
        share = usage.used / usage.limit if usage.limit else 1.0
        detail = (
            f"{usage.used:,} of the org's {usage.limit:,} daily API calls are used "
            f"({usage.left:,} left, {share:.0%} used)."
        )
        if usage.used >= usage.limit:
            return (
                False,
                detail,
                "The allocation is used up: crmsync pauses writes until usage drops. Buy more "
                "API calls or lower what other integrations use.",
                False,
            )
        if share >= USAGE_WARNING:
            return (
                True,
                detail,
                "Little is left today: other integrations compete for the same allocation.",
                True,
            )
        return True, detail, "", False

    def rep(self) -> Outcome:
        user = self.crm.get_user_by_email(self.email)
        if user is None:
            return (
                False,
                f"No Salesforce user has the email {self.email}.",
                "Reps sync under their Salesforce user, matched by email: give the rep a "
                "Salesforce user with this email (or check the address).",
                False,
            )
        if not user.active:
            return (
                False,
                f"The Salesforce user {user.name} ({self.email}) is inactive.",
                "Activate the user in Salesforce, or take the rep out of the configuration.",
                False,
            )
        return True, f"{user.name} ({user.id}) is an active Salesforce user.", "", False
