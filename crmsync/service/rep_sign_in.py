"""Per-rep sign-in on a DAV server: a rep whose login stops working needs attention.

With per-rep sign-in, a 401 means that rep's app password was revoked or changed. Trying
it again every cycle would only lock the account on the server (Nextcloud throttles and
blocks failing logins), so the rep is parked: no request goes out for that rep until the
admin enters a new login, or a day passed (a server that refused by mistake, say during an
outage of its user directory, gets one new try a day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crmsync.domain.settings import OrgSettings
from crmsync.domain.sync import SyncError
from crmsync.groupware.dav.connection import SignInRefused
from crmsync.service.mailboxes import per_rep_sign_in
from crmsync.store import StateStore

RETRY_PARKED_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class RepSignIn:
    """What the console may show of a rep's sign-in: never the password."""

    email: str
    login: str | None
    refused_at: dt.datetime | None = None
    refused_because: str = ""

    @property
    def stored(self) -> bool:
        return self.login is not None

    @property
    def needs_attention(self) -> bool:
        return self.refused_at is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "email": self.email,
            "login": self.login,
            "password_stored": self.stored,
            "needs_attention": self.needs_attention,
            "refused_at": self.refused_at.isoformat() if self.refused_at else None,
            "refused_because": self.refused_because,
        }


def sign_in_of(store: StateStore, email: str) -> RepSignIn:
    credentials = store.rep_credentials(email)
    if credentials is None:
        return RepSignIn(email, None)
    return RepSignIn(email, credentials.login, credentials.refused_at, credentials.refused_because)


def parked_because(
    store: StateStore, settings: OrgSettings, email: str, now: dt.datetime
) -> str | None:
    """Why the rep's cycle must not contact the server now, or ``None``."""
    if not per_rep_sign_in(settings):
        return None
    credentials = store.rep_credentials(email)
    if credentials is None or credentials.refused_at is None:
        return None
    if now - credentials.refused_at >= RETRY_PARKED_AFTER:
        return None
    return (
        f"Needs attention: the server refused the login {credentials.login!r} of {email} "
        f"({credentials.refused_because}); crmsync tries it again only once a new login "
        "or app password is entered on the rep's page, or once a day."
    )


def note_failure(store: StateStore, settings: OrgSettings, email: str, failure: SyncError) -> None:
    """Park the rep when the server refused their own login (HTTP 401; a 403 on a folder
    is about access, which the admin fixes on the server or in the principal path)."""
    if per_rep_sign_in(settings) and isinstance(failure, SignInRefused):
        store.mark_rep_credentials_refused(email, failure.message)
