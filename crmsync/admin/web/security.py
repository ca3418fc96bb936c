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
import ipaddress
import threading
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
# Sign-in throttling, in a sliding window: failures of one account name lock that name
# only; failures from one client address, whatever the names, lock that address. A locked
# name's attempts are refused before they are counted, so one name adds at most
# MAX_FAILURES to its address's count, which stays below the address limit: one name's
# failures never lock another name out, even for admins sharing an address (an office
# NAT, or every client behind a proxy whose forwarded addresses are not trusted).
MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 4 * MAX_FAILURES
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
    `SignInRefused`. ``address`` is the client's (see `proxies`)."""
    name_key, address_key = throttle_keys(username, address)
    # Attempts at one name take turns, so concurrent ones cannot all pass the check
    # before any is counted (that would let one name push its address over the limit).
    with _NAME_LOCKS[hash(name_key) % len(_NAME_LOCKS)]:
        if store.login_failures(name_key, FAILURE_WINDOW) >= MAX_FAILURES:
            raise _locked("for this user name")
        if store.login_failures(address_key, FAILURE_WINDOW) >= MAX_FAILURES_PER_ADDRESS:
            raise _locked("from your address")
        admin = store.admin(username)
        if admin is None:
            password_matches(_DUMMY_HASH, password)
        if admin is None or not password_matches(admin.password_hash, password):
            store.record_login_failure(name_key)
            store.record_login_failure(address_key)
            raise SignInRefused("Wrong user name or password.")
        store.clear_login_failures(name_key)
    return store.open_session(admin.username, SESSION_LIFETIME)


_NAME_LOCKS = tuple(threading.Lock() for _ in range(64))


def _locked(scope: str) -> SignInRefused:
    minutes = int(FAILURE_WINDOW.total_seconds() // 60)
    return SignInRefused(
        f"Too many failed sign-ins {scope}. Wait {minutes} minutes, then try again.",
        retry_after=int(FAILURE_WINDOW.total_seconds()),
    )


def throttle_keys(username: str, address: str) -> tuple[str, str]:
    """The keys a failed sign-in is counted under: one for the name, one for the client."""
    return f"user:{username.casefold()}", f"ip:{address_bucket(address)}"


def address_bucket(address: str) -> str:
    """What one client's failures are counted under: the address, or for IPv6 its /64
    (one subscriber's network, whose addresses it can change at will)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


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
