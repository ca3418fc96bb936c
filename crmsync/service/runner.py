"""One rep's sync cycle end to end: configuration, mailbox, both kinds, statuses.

`SyncService` wires the org's CRM (the built-in one, or a Salesforce org shared by every
service of the process, see `crms`), the state store and the mail server together; the
CLI, the demo, the console and the scheduler call it. A failure of one rep is recorded on that
rep and never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator

from crmsync.domain.contact_fields import ContactFieldMap, contact_field_map, is_custom
from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import (
    ContactOwnership,
    OrgSettings,
    SyncConfig,
    configuration_problems,
    configuration_warnings,
    stored_password_applies,
)
from crmsync.engine.executor import utc_now
from crmsync.engine.planner import DeleteGuard, Policy
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import RetryPolicy
from crmsync.service.crms import (
    DEFAULT_POLL_INTERVAL,
    SALESFORCE_SECRET,
    Crm,
    CrmApiState,
    OrgCrm,
)
from crmsync.service.deployment import Deployment
from crmsync.service.mailbox_claims import MailboxClaims, claimed_mailboxes
from crmsync.service.mailboxes import SERVICE_PASSWORD, MailServer, RepMailbox
from crmsync.service.policies import policy_for
from crmsync.service.preview import RepPreview, preview_rep
from crmsync.service.rep_cycle import (
    InvalidConfiguration,
    NextDue,
    RepActionListener,
    RepReport,
    run_cycle,
)
from crmsync.service.rep_sign_in import RepSignIn, sign_in_of
from crmsync.store import (
    ConfigConflict,
    MailPause,
    OrgSnapshot,
    RepCycleRecord,
    ResetStatus,
    StateStore,
)

__all__ = ["InvalidConfiguration", "RepPreview", "RepReport", "SyncService"]


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
        # The org's settings version the mail server and CRM were last checked against,
        # and the CRM section's problems then (`open_cycle`); or what stopped the last
        # check (a secret that cannot be decrypted, the database away), which the cycle
        # reports (`check_settings`).
        self._checked_version: int | None = None
        self._crm_problems: list[str] = []
        self._check_failure: Exception | None = None
        self._claims = MailboxClaims(self, lambda other: SyncService(other, self.retry, self.clock))

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._org_crm.close()
        self.store.close()

    @property
    def crm(self) -> Crm:
        """The org's CRM: `BuiltinCrm`, or the process's shared `SalesforceCrm`."""
        return self._org_crm.crm

    def open_cycle(self, rep_id: str, fence: int | None = None) -> RepCycleRecord:
        """What the rep's cycle starts from (`StateStore.open_cycle`, `LeaseLost` when
        ``fence`` no longer holds the rep's lease), with the mail server and CRM made to
        match the settings and secrets it was read with.

        They are checked only when the org's settings version moved since the last
        check (every save of settings, CRM section, service password or Salesforce key
        moves it, in this process or another), so a long-lived service's quiet cycle
        reads nothing more. The mail server connection is kept while its settings and
        password are unchanged: what it discovered makes a quiet cycle cheap. (Other
        orgs' claims refresh on their own clock.) A check that fails is not raised here
        but by the cycle's `check_settings`, as the rep's error, and runs again at the
        next opening."""
        record = self.store.open_cycle(rep_id, fence=fence)
        assert record.org is not None  # read by open_cycle
        if record.org.version != self._checked_version:
            try:
                self._check_settings(record.org)
            except Exception as failure:  # raised where the cycle reports its failures
                self._check_failure = failure
        return record

    def follow_settings(self) -> bool:
        """Make the mail server and CRM match the org's saved settings and secrets, as a
        cycle's opening does, for a service that opens no cycle (the schedulers'
        dispatchers, once per round): one read while the settings version stands.
        Returns whether it moved (the users listed before may be another CRM's); raises
        what stops the check."""
        org = self.store.org_snapshot()
        if org.version == self._checked_version:
            return False
        self._check_settings(org)
        return True

    def _check_settings(self, org: OrgSnapshot) -> None:
        if self._server is not None and self._server_key not in (None, self._mail_key(org)):
            self._server.close()
            self._server = None
        self._org_crm.refresh(org.crm)
        self._crm_problems = self.crm_problems(org.crm)
        self._check_failure = None
        self._checked_version = org.version

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

    def kept_password(self, settings: OrgSettings) -> str | None:
        """The stored service password (app secret, key) when it may sign ``settings`` in:
        the method and account it was saved for (`stored_password_applies`); else None."""
        if not stored_password_applies(self.org_settings(), settings):
            return None
        return self.store.get_secret(SERVICE_PASSWORD)

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

    def crm_problems(self, saved: CrmSettings | None = None) -> list[str]:
        """Why the saved CRM section (``saved``, when the caller read it) cannot work
        (empty: it may)."""
        return self._org_crm.problems(saved)

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

    def mail_pause(self, email: str) -> MailPause | None:
        """The pause the mail server asked for the rep in this process, if any: Google
        parks a rep whose calendar hit its usage limits for hours."""
        return self._server.pause(email, self.clock()) if self._server is not None else None

    def _mail_key(self, org: OrgSnapshot | None = None) -> tuple[OrgSettings, str | None]:
        """The settings (``org``'s, else read) and password the mail server is made with."""
        settings = self.org_settings() if org is None else org.settings
        return settings, self.store.get_secret(SERVICE_PASSWORD)

    # -- per-rep sign-in (DAV) -----------------------------------------------------------
    def set_rep_sign_in(self, email: str, login: str, password: str) -> None:
        """Store the rep's own login and app password (encrypted); a rep that needed
        attention is tried again at once."""
        self.store.set_rep_credentials(email, login, password)
        user = self.crm.get_user_by_email(email)
        if user is not None:
            self.store.set_rep_checks(user.id, recognized=None)
            self.store.make_due(user.id, self.clock())

    def rep_sign_in(self, email: str) -> RepSignIn:
        """The rep's stored login and whether the server refused it (never the password)."""
        return sign_in_of(self.store, email)

    # -- configurations ------------------------------------------------------------------
    def contact_fields(self, config: SyncConfig) -> ContactFieldMap:
        """The configuration's contact field map; `InvalidConfiguration` if a custom field
        it names is gone from the CRM. The CRM is asked for its custom fields only when a
        mapping names one (a query, or a Salesforce call, saved on every other cycle)."""
        mappings = config.contacts.field_mappings
        names_custom = any(is_custom(m.crm_field) for m in mappings)
        custom_types = self.crm.custom_field_types() if names_custom else {}
        try:
            return contact_field_map(mappings, custom_types)
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
                self.store.make_due(user.id, self.clock())

    def configuration_problems(self, configs: list[SyncConfig]) -> list[str]:
        """Why ``configs`` cannot be saved together (empty: they can)."""
        return self._setting_problems(configs) + self._claims.conflicts(configs)

    def _setting_problems(self, configs: list[SyncConfig]) -> list[str]:
        custom_types = self.crm.custom_field_types()
        return [
            f"configuration {config.name!r}: {problem}"
            for config in configs
            for problem in configuration_problems(config, custom_types)
        ]

    def _check(self, configs: list[SyncConfig]) -> None:
        problems = self._setting_problems(configs)
        if problems:
            raise ValueError("; ".join(problems))
        conflicts = self._claims.conflicts(configs)
        if conflicts:
            raise ConfigConflict(conflicts[0])

    def claimed_mailboxes(self) -> dict[str, str]:
        """Each mailbox an active configuration of this org syncs, with that configuration."""
        return claimed_mailboxes(self)

    def claimed_elsewhere(self) -> dict[str, tuple[str, str]]:
        """Mailboxes other orgs' active configurations sync (re-read every minute)."""
        return self._claims.elsewhere()

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
        self.store.make_due(user.id, self.clock())  # the scheduler takes the rep at once

    def confirm_deletes(self, user: User) -> None:
        """Let the rep's next cycle, due at once, carry out the deletions held back."""
        self.store.confirm_deletes(user.id)
        self.store.make_due(user.id, self.clock())

    # -- preview ---------------------------------------------------------------------------
    def preview_rep(self, user: User, config: SyncConfig | None = None) -> RepPreview:
        """What the rep's next cycle would do under ``config`` (default: the rep's active
        configuration), reading both sides and writing nothing anywhere."""
        return preview_rep(self, user, config)

    # -- what a cycle is made of ---------------------------------------------------------
    def sides(
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

    def policy(
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

    def delete_guard(self, settings: OrgSettings, *, confirmed: bool) -> DeleteGuard | None:
        """The mass-delete guard, none when the admin let the held deletions through."""
        if confirmed:
            return None
        return DeleteGuard(
            settings.mass_delete_percent, settings.mass_delete_count, settings.mass_delete_minimum
        )

    # -- cycles --------------------------------------------------------------------------
    def sync_all(self, on_action: RepActionListener | None = None) -> list[RepReport]:
        retention = dt.timedelta(days=self.org_settings().audit_retention_days)
        self.store.prune_audit(self.clock() - retention)
        return [self.sync_rep(user, on_action) for user in self.reps()]

    def sync_rep(
        self,
        user: User,
        on_action: RepActionListener | None = None,
        *,
        fence: int | None = None,
        next_due: NextDue | None = None,
        opened: RepCycleRecord | None = None,
    ) -> RepReport:
        """Run one cycle for ``user``; failures end up in the error report, not raised.

        ``fence``: the rep's lease (`StateStore.claim_rep`), which every write of the
        cycle requires and its end gives up. ``next_due``: sets the rep's next-due time
        from its consecutive failures, in the cycle's closing write. ``opened``: the
        rep's record if the caller opened the cycle already (`open_cycle`).
        """
        return run_cycle(self, user, on_action, fence=fence, next_due=next_due, opened=opened)

    def check_settings(self) -> None:
        """Raise what stopped the last `open_cycle`'s check of the settings and secrets (a
        secret that cannot be decrypted, the database away), or `InvalidConfiguration` if
        the CRM section it read cannot work (checked only when the settings version
        moved); the cycle calls it where its failures become the rep's error row."""
        if self._check_failure is not None:
            raise self._check_failure
        problems = self._crm_problems
        if problems:
            raise InvalidConfiguration(
                f"the Salesforce setup is incomplete: {'; '.join(problems)}",
                "Complete it with `crmsync setup salesforce` or on the Setup page.",
            )

    def crm_api_state(self) -> CrmApiState | None:
        """The org's metered CRM's API numbers; ``None`` for the built-in CRM."""
        return self._org_crm.api_state()

    def count_crm_cycles(self, cycles: int) -> None:
        """Record the metered CRM's calls since last recorded, and ``cycles`` rep cycles."""
        self._org_crm.count_calls(cycles=cycles)
