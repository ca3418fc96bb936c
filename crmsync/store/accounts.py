"""Admin accounts of the console, their sessions and API tokens, and failed sign-ins.

The store keeps only hashes: an argon2 hash of each password (made by the caller), and a
SHA-256 of each session cookie and API token, so reading the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from crmsync.store import schema
from crmsync.store.database import StoreBase
from crmsync.store.exceptions import StoreError

_ADMINS = schema.admins
_SESSIONS = schema.admin_sessions
_TOKENS = schema.api_tokens
_FAILURES = schema.login_failures


class AccountExists(StoreError):
    """An admin account with that name exists already."""


@dataclass(frozen=True)
class Admin:
    username: str
    password_hash: str
    permissions: frozenset[str]


@dataclass(frozen=True)
class Session:
    """A signed-in admin: who, with which permissions, the form token, until when."""

    admin: Admin
    csrf_token: str
    expires_at: dt.datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountsMixin(StoreBase):
    def create_admin(self, username: str, password_hash: str, permissions: set[str]) -> Admin:
        try:
            with self._write() as conn:
                conn.execute(
                    insert(_ADMINS).values(
                        username=username,
                        password_hash=password_hash,
                        permissions=sorted(permissions),
                        created_at=self._clock(),
                    )
                )
        except IntegrityError:
            raise AccountExists(f"an admin named {username!r} exists already") from None
        return Admin(username, password_hash, frozenset(permissions))

    def update_admin(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        permissions: set[str] | None = None,
    ) -> bool:
        """Change an admin's password (signing out every session) or permissions."""
        values: dict[str, object] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if permissions is not None:
            values["permissions"] = sorted(permissions)
        with self._write() as conn:
            changed = conn.execute(
                update(_ADMINS).where(_ADMINS.c.username == username).values(values)
            ).rowcount
            if password_hash is not None:
                conn.execute(delete(_SESSIONS).where(_SESSIONS.c.username == username))
        return changed == 1

    def admin(self, username: str) -> Admin | None:
        with self._read() as conn:
            row = conn.execute(select(_ADMINS).where(_ADMINS.c.username == username)).first()
        return None if row is None else _admin(row)

    def admins(self) -> list[Admin]:
        with self._read() as conn:
            rows = conn.execute(select(_ADMINS).order_by(_ADMINS.c.username)).all()
        return [_admin(row) for row in rows]

    def delete_admin(self, username: str) -> bool:
        with self._write() as conn:
            return conn.execute(delete(_ADMINS).where(_ADMINS.c.username == username)).rowcount == 1

    # -- sessions --------------------------------------------------------------------------
    def open_session(self, username: str, lifetime: dt.timedelta) -> tuple[str, Session]:
        """A new session for ``username``: the cookie value (shown once) and the session."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock()
        with self._write() as conn:
            conn.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at < now))
            conn.execute(
                insert(_SESSIONS).values(
                    token_hash=token_hash(token),
                    username=username,
                    csrf_token=csrf,
                    expires_at=now + lifetime,
                )
            )
        found = self.session(token)
        assert found is not None
        return token, found

    def session(self, token: str) -> Session | None:
        """The live session a cookie value names, or ``None``."""
        with self._read() as conn:
            row = conn.execute(
                select(_SESSIONS, _ADMINS)
                .join(_ADMINS, _ADMINS.c.username == _SESSIONS.c.username)
                .where(
                    _SESSIONS.c.token_hash == token_hash(token),
                    _SESSIONS.c.expires_at > self._clock(),
                )
            ).first()
        if row is None:
            return None
        return Session(_admin(row), row.csrf_token, row.expires_at)

    def close_session(self, token: str) -> None:
        with self._write() as conn:
            conn.execute(delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash(token)))

    # -- API tokens --------------------------------------------------------------------------
    def create_api_token(self, username: str, name: str) -> str:
        """A new API token acting as ``username``; the value is returned once, never stored."""
        token = "crmsync_" + secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                insert(_TOKENS).values(
                    token_hash=token_hash(token),
                    username=username,
                    name=name,
                    created_at=self._clock(),
                )
            )
        return token

    def api_token_admin(self, token: str) -> Admin | None:
        with self._read() as conn:
            row = conn.execute(
                select(_ADMINS)
                .join(_TOKENS, _TOKENS.c.username == _ADMINS.c.username)
                .where(_TOKENS.c.token_hash == token_hash(token))
            ).first()
        return None if row is None else _admin(row)

    def revoke_api_tokens(self, username: str, name: str) -> int:
        with self._write() as conn:
            return conn.execute(
                delete(_TOKENS).where(_TOKENS.c.username == username, _TOKENS.c.name == name)
            ).rowcount

    # -- sign-in throttling ------------------------------------------------------------------
    def record_login_failure(self, key: str) -> None:
        with self._write() as conn:
            conn.execute(insert(_FAILURES).values(key=key, at=self._clock()))

    def login_failures(self, key: str, within: dt.timedelta) -> int:
        since = self._clock() - within
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(_FAILURES)
                    .where(_FAILURES.c.key == key, _FAILURES.c.at > since)
                ).scalar_one()
            )

    def clear_login_failures(self, key: str) -> None:
        with self._write() as conn:
            conn.execute(delete(_FAILURES).where(_FAILURES.c.key == key))


def _admin(row: object) -> Admin:
    return Admin(
        row.username,  # type: ignore[attr-defined]
        row.password_hash,  # type: ignore[attr-defined]
        frozenset(row.permissions),  # type: ignore[attr-defined]
    )
