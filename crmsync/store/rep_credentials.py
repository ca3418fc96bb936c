"""Each rep's own login and app password for a DAV server (per-rep sign-in).

Nextcloud, Baïkal, iCloud and Fastmail have no account that can open every rep's mailbox,
so the admin enters each rep's login and an app password. They are kept in the encrypted
secrets table, one secret per rep (keyed by the rep's email, case-insensitively), and
never shown back: only whether one is stored, the login, and whether the server refused
it (the rep then "needs attention" until the admin enters a new one).

A rep's login is read at each use (`MailServer` opens the rep's mailbox with it), so its
saves leave the org's settings version alone: moving it would make every process read its
settings and secrets again for a login that only one rep's next cycle uses.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from crmsync.store.encrypted_secrets import SecretsMixin

PREFIX = "dav_rep_login:"


@dataclass(frozen=True)
class RepCredentials:
    """A rep's login, app password (never in ``repr``) and when the server refused them."""

    login: str
    password: str = field(repr=False)
    refused_at: dt.datetime | None = None
    refused_because: str = ""


def _name(email: str) -> str:
    return PREFIX + email.strip().casefold()


def _credentials(value: str) -> RepCredentials:
    data = json.loads(value)
    refused = data.get("refused_at")
    return RepCredentials(
        data["login"],
        data["password"],
        dt.datetime.fromisoformat(refused) if refused else None,
        data.get("refused_because", ""),
    )


class RepCredentialsMixin(SecretsMixin):
    def set_rep_credentials(self, email: str, login: str, password: str) -> None:
        """Store (or replace) the rep's login and app password; a refusal is forgotten."""
        if not login.strip() or not password:
            raise ValueError("a rep's sign-in needs a login and a password")
        login_json = json.dumps({"login": login.strip(), "password": password})
        self.set_secret(_name(email), login_json, versioned=False)

    def rep_credentials(self, email: str) -> RepCredentials | None:
        value = self.get_secret(_name(email))
        return None if value is None else _credentials(value)

    def refused_rep_logins(self) -> dict[str, RepCredentials]:
        """The reps (by lower-case email) whose stored login the server refused, read at
        once for the reps list."""
        found = {n[len(PREFIX) :]: _credentials(v) for n, v in self.secrets_named(PREFIX).items()}
        return {email: c for email, c in found.items() if c.refused_at is not None}

    def mark_rep_credentials_refused(self, email: str, because: str) -> None:
        """Record that the server refused the rep's stored login (needs attention)."""
        value = self.get_secret(_name(email))
        if value is None:
            return
        data = json.loads(value)
        data["refused_at"] = self._clock().isoformat()
        data["refused_because"] = because
        self.set_secret(_name(email), json.dumps(data), versioned=False)

    def delete_rep_credentials(self, email: str) -> bool:
        return self.delete_secret(_name(email), versioned=False)

    def reps_with_credentials(self) -> list[str]:
        """The emails (lower-case) of the reps whose login is stored, sorted."""
        return [n[len(PREFIX) :] for n in self.secret_names() if n.startswith(PREFIX)]
