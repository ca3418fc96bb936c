"""Connection-test steps for Google Workspace, in order: the stored service account key,
the rep's domain, domain-wide delegation for each scope (a refusal names the scope and
where to grant it), the rep as a user of the Workspace, the primary calendar (and its
sync tokens), the contact group, and the contacts' sync tokens. Nothing is created: a
missing contact group is reported as made by the first sync.
"""

from __future__ import annotations

import json

from crmsync.domain.sync import FolderMissing, SyncError
from crmsync.groupware.google import probe
from crmsync.groupware.google.config import SCOPES
from crmsync.groupware.google.connection import GoogleConnection
from crmsync.groupware.google.tokens import DelegationMissing, delegation_fix
from crmsync.service.connection_test.probe import (
    Check,
    ConnectionProbe,
    Outcome,
    as_sentence,
    fail,
    ok,
)
from crmsync.service.connection_test.result import (
    GOOGLE_CALENDAR,
    GOOGLE_CONTACTS,
    GOOGLE_DELEGATION,
    GOOGLE_KEY,
    GOOGLE_USER,
    REP_DOMAIN,
    SYNC_TOKENS,
)


class GoogleProbe(ConnectionProbe):
    connection: GoogleConnection | None = None
    # Each scope's token request for the rep: None (issued) or Google's refusal.
    minted: dict[str, SyncError | None] | None = None

    def checks(self) -> list[Check]:
        return [
            (GOOGLE_KEY, self._key),
            (REP_DOMAIN, self.rep_domain),
            (GOOGLE_DELEGATION, self._delegation),
            (GOOGLE_USER, self._user),
            (GOOGLE_CALENDAR, self._calendar),
            (GOOGLE_CONTACTS, self._contacts),
            (SYNC_TOKENS, self._sync_tokens),
        ]

    def secrets(self) -> list[str | None]:
        # The key's private key is the secret; any line of it would give it away.
        try:
            private = str(json.loads(self.password or "{}").get("private_key") or "")
        except (ValueError, AttributeError):
            private = ""
        lines = [line for line in private.splitlines() if len(line) >= 16]
        return [*super().secrets(), *lines]

    def _key(self) -> Outcome:
        if not self.password:
            return fail(
                "No service account key is stored.",
                "Store the service account's JSON key on the Setup page (or with "
                "`crmsync setup google --key-file KEY.json`).",
            )
        from crmsync.service.mailboxes import google_config

        config = google_config(self.settings, self.password)
        passed, detail, fix = probe.check_key(config)
        if not passed:
            return fail(detail, fix)
        self.connection = GoogleConnection(config)
        self.connections.append(self.connection)
        return ok(f"The key belongs to the {detail}.")

    def _mint(self) -> dict[str, SyncError | None]:
        if self.minted is None:
            assert self.connection is not None
            self.minted = {}
            for api in SCOPES:
                try:
                    self.connection.tokens.token(self.email, api)
                except SyncError as refused:
                    self.minted[api] = refused
                else:
                    self.minted[api] = None
        return self.minted

    def _delegation(self) -> Outcome:
        refusals = self._mint()
        missing = [
            SCOPES[api]
            for api, refused in refusals.items()
            if isinstance(refused, DelegationMissing)
        ]
        assert self.connection is not None
        if missing:
            granted = [scope for scope in SCOPES.values() if scope not in missing]
            return fail(
                f"Domain-wide delegation lacks {' and '.join(missing)}"
                + (f" (granted: {', '.join(granted)})" if granted else "")
                + ".",
                delegation_fix(self.connection.key.client_id),
            )
        for refused in refusals.values():
            if refused is not None and not isinstance(refused, FolderMissing):
                return fail(refused.message, refused.suggestion)
        return ok(f"Google refused none of the scopes {', '.join(SCOPES.values())}.")

    def _user(self) -> Outcome:
        for refused in self._mint().values():
            if isinstance(refused, FolderMissing):
                return fail(refused.message, refused.suggestion)
        return ok(f"Google issued tokens to act as {self.email}.")

    def _calendar(self) -> Outcome:
        assert self.connection is not None
        passed, detail, fix = probe.check_calendar(self.connection, self.email)
        return ok(f"The primary calendar of {self.email} answers.") if passed else fail(detail, fix)

    def _contacts(self) -> Outcome:
        assert self.connection is not None
        group = self.settings.contacts_folder
        passed, detail, fix = probe.check_contacts(self.connection, self.email, group)
        return ok(as_sentence(detail)) if passed else fail(detail, fix)

    def _sync_tokens(self) -> Outcome:
        assert self.connection is not None
        passed, detail, fix = probe.check_contact_sync_tokens(self.connection, self.email)
        if not passed:
            return fail(detail, fix)
        if detail.startswith("Not checked"):
            return ok(f"The calendar's sync tokens work; {detail}.", warning=True)
        return ok(f"The calendar's sync tokens work, and {detail}.")
