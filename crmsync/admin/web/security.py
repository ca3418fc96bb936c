"""Who may do what in the console and the API: accounts, sign-in, sessions, CSRF, tokens.

Permissions follow the spec: setting up the connection, configurations, statuses and
resets need "Customize Application", "Manage Users" and "Manage Sync"; the error report
needs "View All Data". Passwords are argon2 hashes; sessions are random cookie values
(HttpOnly, SameSite=Lax, Secure behind HTTPS) whose hash the store keeps; every form
carries the session's CSRF token; API clients send ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crmsync.store import StateStore
from crmsync.store.accounts import Admin, Session


class Permission(StrEnum):
    CUSTOMIZE_APPLICATION = "customize_application"
    MANAGE_USERS = "manage_users"
    MANAGE_SYNC = "manage_sync"
    VIEW_ALL_DATA = "view_all_data"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").title()


# What each part of the console needs (the spec's "required user permissions").
MANAGE = frozenset(
    {Permission.CUSTOMIZE_APPLICATION, Permission.MANAGE_USERS, Permission.MANAGE_SYNC}
)
ERROR_REPORT = frozenset({Permission.VIEW_ALL_DATA})

SESSION_COOKIE = "crmsync_session"
SESSION_LIFETIME = dt.timedelta(hours=8)
# Sign-in throttling: this many failures within the window lock the name (and the address).
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class SignInRefused(Exception):
    """Wrong name or password, or too many attempts (``retry_after`` seconds)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def sign_in(store: StateStore, username: str, password: str, address: str) -> tuple[str, Session]:
    """Check the credentials and open a session (cookie value, session); raises
    `SignInRefused`. Failures are counted per name and per client address."""
    keys = (f"user:{username.casefold()}", f"ip:{address}")
    if any(store.login_failures(key, FAILURE_WINDOW) >= MAX_FAILURES for key in keys):
        raise SignInRefused(
            "Too many failed sign-ins. Wait 15 minutes, then try again.",
            retry_after=int(FAILURE_WINDOW.total_seconds()),
        )
    admin = store.admin(username)
    if admin is None:
        password_matches(_DUMMY_HASH, password)
    if admin is None or not password_matches(admin.password_hash, password):
        for key in keys:
            store.record_login_failure(key)
        raise SignInRefused("Wrong user name or password.")
    store.clear_login_failures(keys[0])
    return store.open_session(admin.username, SESSION_LIFETIME)


@dataclass(frozen=True)
class Principal:
    """Who is asking: an admin through a browser session, or through an API token."""

    admin: Admin
    session: Session | None = None

    def may(self, needed: frozenset[Permission]) -> bool:
        return needed <= self.admin.permissions

    def csrf_ok(self, token: str | None) -> bool:
        """A form's (or a cookie-authenticated API call's) token matches the session's."""
        if self.session is None:
            return True  # bearer tokens are not sent by browsers on their own
        return token is not None and hmac.compare_digest(token, self.session.csrf_token)


def principal_from(
    store: StateStore, cookie: str | None, authorization: str | None
) -> Principal | None:
    if authorization and authorization.lower().startswith("bearer "):
        admin = store.api_token_admin(authorization[7:].strip())
        return None if admin is None else Principal(admin)
    if cookie:
        session = store.session(cookie)
        if session is not None:
            return Principal(session.admin, session)
    return None
