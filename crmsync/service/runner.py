"""One rep's sync cycle end to end: configuration, mailbox, both kinds, statuses.

`SyncService` wires the org's CRM (the built-in one, or a Salesforce org shared by every
service of the process, see `crms`), the state store and the mail server together; the
CLI, the demo, the console and the scheduler call it. A failure of one rep is recorded on that
rep and never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from crmsync.domain.contact_fields import ContactFieldMap, contact_field_map
from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import (
    ContactOwnership,
    Direction,
    OrgSettings,
    SyncConfig,
    configuration_problems,
    configuration_warnings,
)
from crmsync.domain.sync import ErrorEntry, ErrorType, FolderMissing, SyncError
from crmsync.engine.cycle import preview_kind, sync_kind
from crmsync.engine.executor import ActionListener, KindReport, utc_now
from crmsync.engine.planner import Action, DeleteGuard, Policy
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import RetryPolicy, WouldWrite
from crmsync.service.crms import DEFAULT_POLL_INTERVAL, SALESFORCE_SECRET, Crm, OrgCrm
from crmsync.service.deployment import Deployment
from crmsync.service.domains import NotInDomains, mailbox_in_domains
from crmsync.service.mailboxes import SERVICE_PASSWORD, MailServer, RepMailbox
from crmsync.service.policies import direction_of, policy_for
from crmsync.service.rep_sign_in import RepSignIn, note_failure, parked_because, sign_in_of
from crmsync.store import FLOWS, ConfigConflict, ResetStatus, StateStore, SyncStatus

log = logging.getLogger(__name__)

KINDS = (ItemKind.CONTACT, ItemKind.EVENT)
# How stale the other orgs' active configurations may be when a cycle checks a mailbox.
CLAIMS_MAX_AGE = 60.0

RepActionListener = Callable[[User], ActionListener]

# Which status check a missing folder fails (the spec's Tables 4-6).
_FOLDER_CHECKS = {
    "principal": "recognized",
    "calendar": "calendar_found",
    "contacts": "contacts_folder_found",
}


@dataclass
class RepPreview:
    """The actions a rep's next cycle would take per kind, or why none can be listed."""

    rep: User
    config: SyncConfig | None
    kinds: dict[ItemKind, list[Action]] = field(default_factory=dict)
    note: str | None = None


@dataclass
class RepReport:
    """What one cycle did for one rep; ``error`` is set when the rep could not sync."""

    rep: User
    kinds: dict[ItemKind, KindReport] = field(default_factory=dict)
    error: str | None = None
    configured: bool = True
    # API calls the org's metered CRM (Salesforce) answered while the cycle ran (with
    # several workers, their overlapping cycles' calls too); None for the built-in CRM.
    crm_calls: int | None = None

    @property
    def writes(self) -> int:
        return sum(report.total_writes for report in self.kinds.values())


class SyncService:
    """Runs sync cycles for the reps of one org of a deployment."""

    def __init__(
        self,
        deployment: Deployment,
        retry: RetryPolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        *,
        crm_poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        """``crm_poll_interval``: how long one read of a Salesforce org's change feed
        serves every rep (the org is polled once per interval, not once per rep)."""
        self.deployment = deployment
        self.retry = retry
        self.clock = clock
        self.store = StateStore(deployment.state_url, deployment.secrets_key_path)
        self._org_crm = OrgCrm(deployment, self.store, crm_poll_interval)
        self._server: MailServer | None = None
        # The settings and password the mail server was made with (None: given from
        # outside by `use_mail_server`, kept as it is).
        self._server_key: tuple[OrgSettings, str | None] | None = None
        self._elsewhere: dict[str, tuple[str, str]] = {}
        self._elsewhere_read_at: float | None = None

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._org_crm.close()
        self.store.close()

    @property
    def crm(self) -> Crm:
        """The org's CRM: `BuiltinCrm`, or the process's shared `SalesforceCrm`."""
        return self._org_crm.crm

    def refresh(self) -> None:
        """Make a long-lived service see the current settings and password, and the CRM
        section and key. The mail server connection is kept while its settings and
        password are unchanged: what it discovered makes a quiet cycle cheap. (Other
        orgs' claims refresh on their own clock.)"""
        if self._server is not None and self._server_key not in (None, self._mail_key()):
            self._server.close()
            self._server = None
        self._org_crm.refresh()

    def __enter__(self) -> SyncService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup ---------------------------------------------------------------------------
    def org_settings(self) -> OrgSettings:
        return self.store.org_settings()

    def configure_server(self, settings: OrgSettings, password: str) -> None:
        """Save how to reach the mail server; the password is stored encrypted."""
        self.store.save_org_settings(settings)
        if password:  # per-rep sign-in (DAV) has none: each rep's own login is used
            self.store.set_secret(SERVICE_PASSWORD, password)
        self._server = None

    def crm_settings(self) -> CrmSettings:
        return self.store.crm_settings()

    def configure_crm(self, settings: CrmSettings, secret: str | None = None) -> None:
        """Save the org's CRM section; ``secret`` (the Salesforce private key or consumer
        secret), when given, is stored encrypted. The CRM is reopened on next use."""
        self.store.save_crm_settings(settings)
        if secret is not None:
            self.store.set_secret(SALESFORCE_SECRET, secret)
        self._org_crm.close()

    @contextlib.contextmanager
    def crm_as(self, settings: CrmSettings, secret: str | None) -> Iterator[Crm]:
        """Within the block, ``self.crm`` is the CRM ``settings`` and ``secret`` describe
        (not saved, not shared): configurations are checked against the CRM a document
        switches to before anything is saved."""
        saved = self._org_crm
        self._org_crm = OrgCrm(self.deployment, self.store, fixed=(settings, secret))
        try:
            yield self._org_crm.crm
        finally:
            self._org_crm.close()
            self._org_crm = saved

    def crm_problems(self) -> list[str]:
        """Why the saved CRM section cannot work (empty: it may)."""
        return self._org_crm.problems()

    def use_mail_server(self, server: MailServer) -> None:
        """Reach the mail server through ``server`` from now on (embedding, tests)."""
        self._server = server

    def mail_server(self) -> MailServer:
        if self._server is None:
            self._server_key = settings, password = self._mail_key()
            self._server = MailServer(
                settings, password, self.retry, rep_credentials=self.store.rep_credentials
            )
        return self._server

    def _mail_key(self) -> tuple[OrgSettings, str | None]:
        return self.org_settings(), self.store.get_secret(SERVICE_PASSWORD)

    # -- per-rep sign-in (DAV) -----------------------------------------------------------
    def set_rep_sign_in(self, email: str, login: str, password: str) -> None:
        """Store the rep's own login and app password (encrypted); a rep that needed
        attention is tried again at once."""
        self.store.set_rep_credentials(email, login, password)
        user = self.crm.get_user_by_email(email)
        if user is not None:
            self.store.set_rep_checks(user.id, recognized=None)
            self.store.set_next_due(user.id, None)

    def rep_sign_in(self, email: str) -> RepSignIn:
        """The rep's stored login and whether the server refused it (never the password)."""
        return sign_in_of(self.store, email)

    # -- configurations ------------------------------------------------------------------
    def contact_fields(self, config: SyncConfig) -> ContactFieldMap:
        """The configuration's contact field map; `InvalidConfiguration` if a custom field
        it names is gone from the CRM."""
        try:
            return contact_field_map(config.contacts.field_mappings, self.crm.custom_field_types())
        except ValueError as exc:
            raise InvalidConfiguration(
                f"the field mappings of configuration {config.name!r} are invalid: {exc}",
                "Fix the configuration's field mappings (or define the custom field again).",
            ) from None

    def save_config(self, config: SyncConfig) -> list[str]:
        """Validate and save ``config``; returns its warnings.

        Raises `ValueError` naming every problem, or `ConfigConflict` when an assignment
        clashes within the org or a covered mailbox is in an active configuration of
        another org of the deployment (the spec's sandbox / production warning).
        """
        self._check([config])
        self.store.save_config(config)
        self._due_now([config])
        return configuration_warnings(config)

    def replace_configs(self, configs: list[SyncConfig]) -> dict[str, list[str]]:
        """Make ``configs`` the org's configurations, all or nothing, after the checks of
        `save_config`; returns each configuration's warnings."""
        self._check(configs)
        self.store.replace_configs(configs)
        self._due_now(configs)
        return {config.name: configuration_warnings(config) for config in configs}

    def _due_now(self, configs: list[SyncConfig]) -> None:
        """A changed configuration applies from its reps' next cycle, which is due now
        (even for a rep backing off after failures)."""
        for user in self.reps():
            if any(
                user.id in c.user_ids or (user.profile_id and user.profile_id in c.profile_ids)
                for c in configs
            ):
                self.store.set_next_due(user.id, None)

    def configuration_problems(self, configs: list[SyncConfig]) -> list[str]:
        """Why ``configs`` cannot be saved together (empty: they can)."""
        return self._setting_problems(configs) + self._mailbox_conflicts(configs)

    def _setting_problems(self, configs: list[SyncConfig]) -> list[str]:
        custom_types = self.crm.custom_field_types()
        return [
            f"configuration {config.name!r}: {problem}"
            for config in configs
            for problem in configuration_problems(config, custom_types)
        ]

    def _mailbox_conflicts(self, configs: list[SyncConfig]) -> list[str]:
        active = [config for config in configs if config.active]
        if not active:
            return []
        covered = {config.name: self._covered_mailboxes(config) for config in active}
        conflicts = []
        for org, claims in self._other_orgs_claims():
            for config in active:
                for email in sorted(covered[config.name] & claims.keys()):
                    conflicts.append(
                        f"{email} is already in the active configuration {claims[email]!r} "
                        f"of org {org!r}; a mailbox may be in only one active configuration "
                        "across the deployment's orgs, or its items would sync twice"
                    )
        return conflicts

    def _check(self, configs: list[SyncConfig]) -> None:
        problems = self._setting_problems(configs)
        if problems:
            raise ValueError("; ".join(problems))
        conflicts = self._mailbox_conflicts(configs)
        if conflicts:
            raise ConfigConflict(conflicts[0])

    def _covered_mailboxes(self, config: SyncConfig) -> set[str]:
        users = set(config.user_ids)
        profiles = set(config.profile_ids)
        return {
            user.email.casefold()
            for user in self.reps()
            if user.id in users or (user.profile_id is not None and user.profile_id in profiles)
        }

    def claimed_mailboxes(self) -> dict[str, str]:
        """Each mailbox an active configuration of this org syncs, with that configuration."""
        claims = {}
        for user in self.reps():
            config = self.store.effective_config(user)
            if config is not None:
                claims[user.email.casefold()] = config.name
        return claims

    def _claimed_elsewhere(self) -> dict[str, tuple[str, str]]:
        """Mailboxes other orgs' active configurations sync: email → (org, configuration).

        Read at most every `CLAIMS_MAX_AGE` seconds: it opens every other org's databases,
        too much for each rep's cycle.
        """
        now = time.monotonic()
        if self._elsewhere_read_at is None or now - self._elsewhere_read_at > CLAIMS_MAX_AGE:
            self._elsewhere = {
                email: (org, config)
                for org, claims in self._other_orgs_claims()
                for email, config in claims.items()
            }
            self._elsewhere_read_at = now
        return self._elsewhere

    def _other_orgs_claims(self) -> Iterator[tuple[str, dict[str, str]]]:
        for other in self.deployment.orgs():
            if other.org == self.deployment.org:
                continue
            with SyncService(other, self.retry, self.clock) as service:
                yield other.org, service.claimed_mailboxes()

    # -- reps ----------------------------------------------------------------------------
    def reps(self) -> list[User]:
        """Every active CRM user, whether or not a configuration covers them."""
        return self.crm.list_users(active=True)

    def rep_by_email(self, email: str) -> User:
        user = self.crm.get_user_by_email(email)
        if user is None:
            raise LookupError(f"no CRM user has the email {email}")
        return user

    def mark_for_reset(self, user: User) -> None:
        """The spec's Reset Sync: the next cycle re-pairs the rep's items from scratch."""
        self.store.set_reset_status(user.id, ResetStatus.MARKED)
        self.store.set_next_due(user.id, None)  # the scheduler takes the rep at once

    def confirm_deletes(self, user: User) -> None:
        """Let the rep's next cycle, due at once, carry out the deletions held back."""
        self.store.confirm_deletes(user.id)
        self.store.set_next_due(user.id, None)

    # -- preview -------------------------------------------------------------------------
    def preview_rep(self, user: User, config: SyncConfig | None = None) -> RepPreview:
        """What the rep's next cycle would do under ``config`` (default: the rep's active
        configuration), reading both sides and writing nothing anywhere."""
        config = config or self.store.effective_config(user)
        preview = RepPreview(user, config)
        if config is None:
            preview.note = "no active configuration covers this rep"
            return preview
        settings = self.org_settings()
        try:
            server = MailServer(
                settings,
                self.store.get_secret(SERVICE_PASSWORD),
                self.retry,
                read_only=True,
                rep_credentials=self.store.rep_credentials,
            )
        except SyncError as failure:
            preview.note = f"{failure.message} ({failure.suggestion})"
            return preview
        try:
            fields = self.contact_fields(config)
            mailbox = server.open(user.email, fields, user.time_zone, _kinds(config))
            guard = self._delete_guard(user, settings)
            for kind in KINDS:
                if direction_of(config, kind) is Direction.NONE:
                    continue
                preview.kinds[kind] = preview_kind(
                    user.id,
                    kind,
                    *self._sides(user, kind, config, fields, mailbox),
                    self.store,
                    self._policy(config, kind, user, settings, guard, fields),
                )
        except (WouldWrite, FolderMissing) as missing:
            # DAV refuses the write; the Microsoft backends report the folder as missing.
            if isinstance(missing, FolderMissing) and missing.folder != "contacts":
                preview.note = f"{missing.message} ({missing.suggestion})"
            else:
                preview.note = (
                    "the rep's calendar or contacts folder does not exist yet: the "
                    "first cycle creates it, then copies the rep's CRM items there"
                )
        except SyncError as failure:
            preview.note = f"{failure.message} ({failure.suggestion})"
        finally:
            server.close()
        return preview

    def _sides(
        self,
        user: User,
        kind: ItemKind,
        config: SyncConfig,
        fields: ContactFieldMap,
        mailbox: RepMailbox,
    ) -> tuple[ItemSide, ItemSide]:
        """The rep's CRM side and mail side of ``kind``."""
        all_contacts = (
            kind is ItemKind.CONTACT and config.contacts.ownership is ContactOwnership.ALL
        )
        crm_side = self.crm.side(
            user.id,
            kind,
            auto_relate=config.events.auto_relate,
            all_owners=all_contacts,
            field_map=fields,
        )
        return crm_side, mailbox.contacts if kind is ItemKind.CONTACT else mailbox.events

    def _policy(
        self,
        config: SyncConfig,
        kind: ItemKind,
        user: User,
        settings: OrgSettings,
        guard: DeleteGuard | None,
        fields: ContactFieldMap,
    ) -> Policy:
        return policy_for(
            config,
            kind,
            now=self.clock(),
            rep_zone=user.time_zone,
            event_category=settings.event_category,
            delete_guard=guard,
            contact_fields=fields,
        )

    def _delete_guard(self, user: User, settings: OrgSettings) -> DeleteGuard | None:
        if self.store.deletes_confirmed(user.id):
            return None
        return DeleteGuard(
            settings.mass_delete_percent, settings.mass_delete_count, settings.mass_delete_minimum
        )

    # -- cycles --------------------------------------------------------------------------
    def sync_all(self, on_action: RepActionListener | None = None) -> list[RepReport]:
        retention = dt.timedelta(days=self.org_settings().audit_retention_days)
        self.store.prune_audit(self.clock() - retention)
        return [self.sync_rep(user, on_action) for user in self.reps()]

    def sync_rep(self, user: User, on_action: RepActionListener | None = None) -> RepReport:
        """Run one cycle for ``user``; failures end up in the error report, not raised."""
        report = RepReport(user)
        config = self.store.effective_config(user)
        if config is None:
            report.configured = False
            for kind in KINDS:
                self._set_flows(user, kind, Direction.NONE)
            return report
        parked = parked_because(self.store, self.org_settings(), user.email, self.clock())
        if parked is not None:
            report.error = parked  # no request to the server, no new error row
            return report
        self.store.cycle_started(user.id)
        calls_before = self._org_crm.api_state()
        try:
            self._check_crm()
            self._run(user, config, report, on_action)
        except SyncError as failure:
            report.error = failure.message
            note_failure(self.store, self.org_settings(), user.email, failure)
            self._record(
                user, None, "sync", failure.error_type, failure.message, failure.suggestion
            )
        except Exception as bug:  # one rep's bug must not stop the others
            log.exception("sync of rep %s failed", user.id)
            report.error = f"{type(bug).__name__}: {bug}"
            self._record(
                user,
                None,
                "sync",
                ErrorType.INTERNAL,
                report.error,
                "This is a crmsync bug: report it with this row.",
            )
        calls_after = self._org_crm.api_state()
        if calls_after is not None:
            report.crm_calls = calls_after.calls_made - (
                calls_before.calls_made if calls_before else 0
            )
            self._org_crm.count_calls(cycles=1)
        self.store.cycle_finished(user.id, error=report.error)
        return report

    def _check_crm(self) -> None:
        problems = self.crm_problems()
        if problems:
            raise InvalidConfiguration(
                f"the Salesforce setup is incomplete: {'; '.join(problems)}",
                "Complete it with `crmsync setup salesforce` or on the Setup page.",
            )

    def _run(
        self, user: User, config: SyncConfig, report: RepReport, on_action: RepActionListener | None
    ) -> None:
        settings = self.org_settings()
        linked = mailbox_in_domains(user.email, settings)
        self.store.set_rep_checks(user.id, addresses_linked=linked)
        if not linked:
            raise NotInDomains(user.email, settings)
        if self.store.rep_status(user.id).reset_status is not None:
            self._start_reset(user)
        elsewhere = self._claimed_elsewhere().get(user.email.casefold())
        if elsewhere is not None:
            org, other = elsewhere
            raise InvalidConfiguration(
                f"{user.email} is also in the active configuration {other!r} of org {org!r}; "
                "it does not sync here until it is in only one",
                "Remove the rep from one of the two configurations (or deactivate one).",
            )
        fields = self.contact_fields(config)
        try:
            kinds = _kinds(config)
            mailbox = self.mail_server().open(user.email, fields, user.time_zone, kinds)
        except FolderMissing as missing:
            check = _FOLDER_CHECKS.get(missing.folder)
            if check:
                self.store.set_rep_checks(user.id, **{check: False})
            raise
        except SyncError as failure:
            recognized = failure.error_type is not ErrorType.AUTHENTICATION
            self.store.set_rep_checks(user.id, recognized=recognized)
            raise
        # A folder a kind that does not sync was not looked for: its check stays unknown.
        self.store.set_rep_checks(
            user.id,
            recognized=True,
            mailbox_supported=True,
            contacts_folder_found=True if "contacts" in kinds else None,
            calendar_found=True if "events" in kinds else None,
        )
        listener = on_action(user) if on_action else None
        confirmed = self.store.deletes_confirmed(user.id)
        guard = self._delete_guard(user, settings)
        for kind in KINDS:
            direction = direction_of(config, kind)
            self._set_flows(user, kind, direction)
            if direction is Direction.NONE:
                continue
            for flow in _flows(direction):
                self.store.mark_sync_started(user.id, kind, flow)
            kind_report = sync_kind(
                user.id,
                kind,
                *self._sides(user, kind, config, fields, mailbox),
                self.store,
                self._policy(config, kind, user, settings, guard, fields),
                self.clock,
                listener,
            )
            report.kinds[kind] = kind_report
            if kind_report.held_deletes and report.error is None:
                report.error = (
                    f"{kind_report.held_deletes} {kind.value} deletions held back "
                    "by the mass-delete guard (see the error report)"
                )
            if kind_report.total_writes:
                self.store.record_synced(kind, kind_report.total_writes)
            if kind_report.transient_failures:
                # Not synced yet: the flows stay "in progress" and the rep shows the error.
                report.error = (
                    f"{kind_report.transient_failures} {kind.value} change(s) could not be "
                    "written for a passing reason (see the error report); they are retried "
                    "next cycle."
                )
                continue
            for flow in _flows(direction):
                self.store.mark_sync_finished(user.id, kind, flow)
        self.store.set_reset_status(user.id, None)
        if confirmed:
            self.store.clear_deletes_confirmation(user.id)

    def _start_reset(self, user: User) -> None:
        """Forget the rep's links and cursors; the cycle then re-pairs by marker and content."""
        self.store.set_reset_status(user.id, ResetStatus.IN_PROGRESS)
        self.store.clear_rep(user.id)
        for kind in KINDS:
            for flow in FLOWS:
                self.store.set_sync_status(user.id, kind, flow, SyncStatus.NOT_STARTED)

    def _set_flows(self, user: User, kind: ItemKind, direction: Direction) -> None:
        for flow in FLOWS:
            if flow not in _flows(direction):
                self.store.set_sync_status(user.id, kind, flow, SyncStatus.NOT_CONFIGURED)

    def _record(
        self,
        user: User,
        kind: ItemKind | None,
        operation: str,
        error_type: ErrorType,
        message: str,
        suggestion: str,
    ) -> None:
        self.store.record_error(
            ErrorEntry(
                user.id, kind, None, operation, error_type, message, suggestion, self.clock()
            )
        )


class InvalidConfiguration(SyncError):
    error_type = ErrorType.CONFIGURATION


def _kinds(config: SyncConfig) -> frozenset[str]:
    """The mail folders a configuration syncs: "contacts", "events" (DAV opens no other)."""
    return frozenset(
        name
        for kind, name in ((ItemKind.CONTACT, "contacts"), (ItemKind.EVENT, "events"))
        if direction_of(config, kind) is not Direction.NONE
    )


def _flows(direction: Direction) -> tuple[Direction, ...]:
    return tuple(
        flow
        for flow, on in (
            (Direction.CRM_TO_MAIL, direction.to_mail),
            (Direction.MAIL_TO_CRM, direction.to_crm),
        )
        if on
    )
