"""Secrets (service account passwords, tokens) encrypted at rest with Fernet.

The key lives in a file beside the database, never in it, so a copy of the database alone
reveals nothing. The file is created with mode 0600 on first use. Values never appear in
reprs, log records or exception messages.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, delete, select

from crmsync.store import schema
from crmsync.store.configs import DEFAULT_ORG
from crmsync.store.database import StoreBase, insert_for
from crmsync.store.exceptions import SecretError
from crmsync.store.settings_versions import bump_settings_version

_T = schema.secrets


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in ``path``, creating the file (mode 0600) if it does not exist.

    Creation is atomic: the key is written to a private temporary file and linked into
    place, so a concurrent opener sees either no file or the whole key, and exactly one
    key wins.
    """
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
            f.flush()
            os.fsync(f.fileno())
        # The umask may have narrowed the mode further, never widened it; make it exact.
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


class SecretsMixin(StoreBase):
    """``set_secret`` / ``get_secret`` over the secrets table."""

    _secrets_key_path: Path
    _fernet: Fernet | None = None

    def set_secret(self, name: str, value: str, *, versioned: bool = True) -> None:
        """Store ``value`` encrypted under ``name``, replacing any previous value.

        ``versioned``: the save moves the org's settings version (see `_secret_changed`),
        as a secret that a process keeps an object made with needs (the service password,
        the Salesforce key); one read at each use (a rep's own login) passes ``False``."""
        token = self._cipher().encrypt(value.encode())
        with self._write() as conn:
            stmt = insert_for(conn)(_T).values(name=name, token=token, updated_at=self._clock())
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"token": stmt.excluded.token, "updated_at": stmt.excluded.updated_at},
                )
            )
            if versioned:
                _secret_changed(conn)

    def get_secret(self, name: str) -> str | None:
        """The secret's value, or ``None`` if none is stored.

        Raises `SecretError` if the stored value cannot be decrypted with the key file.
        """
        with self._read() as conn:
            token = conn.execute(select(_T.c.token).where(_T.c.name == name)).scalar_one_or_none()
        if token is None:
            return None
        return self._decrypt(name, token)

    def _decrypt(self, name: str, token: bytes) -> str:
        try:
            return self._cipher().decrypt(bytes(token)).decode()
        except InvalidToken:
            raise SecretError(
                f"secret {name!r} cannot be decrypted with the key at {self._secrets_key_path}"
            ) from None

    def delete_secret(self, name: str, *, versioned: bool = True) -> bool:
        """Forget the secret; returns whether it existed (and then, if ``versioned``, moves
        the org's settings version, as in `set_secret`)."""
        with self._write() as conn:
            existed = conn.execute(delete(_T).where(_T.c.name == name)).rowcount > 0
            if existed and versioned:
                _secret_changed(conn)
            return existed

    def secrets_named(self, prefix: str) -> dict[str, str]:
        """Every secret whose name starts with ``prefix``, by name, in one read."""
        with self._read() as conn:
            rows = conn.execute(
                select(_T.c.name, _T.c.token).where(_T.c.name.startswith(prefix, autoescape=True))
            )
            tokens = {name: token for name, token in rows}
        return {name: self._decrypt(name, token) for name, token in tokens.items()}

    def secret_names(self) -> list[str]:
        """The names of the stored secrets, sorted (never their values)."""
        with self._read() as conn:
            return sorted(conn.execute(select(_T.c.name)).scalars())

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(load_or_create_key(self._secrets_key_path))
        return self._fernet


def _secret_changed(conn: Connection) -> None:
    """A process keeps the mail server and CRM it opened with a password or key while the
    org's settings version stands, so such a secret's save moves it, in the save's
    transaction. The secrets table is its database's, that is its org's (one state
    database per org)."""
    bump_settings_version(conn, DEFAULT_ORG)
