"""Access tokens per rep and per API, minted by google-auth from the service account key.

Each (rep, scope) pair has its own ``google.oauth2.service_account.Credentials`` with the
rep as ``subject`` (domain-wide delegation), so a scope the admin forgot to authorise
fails only the API that needs it, and the error names that scope. google-auth signs the
JWT assertion and asks ``token_uri`` (OAuth 2.0 JWT bearer grant,
https://developers.google.com/identity/protocols/oauth2/service-account#httprest); it
considers a token stale a few minutes before its hour is up. Its HTTP goes through
`HttpxAuthRequest`, the library's documented ``google.auth.transport.Request`` hook, so
tokens use the same httpx client (and, in tests, the same fake) as the API calls.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import exceptions as auth_exceptions
from google.auth import transport
from google.oauth2 import service_account

from crmsync.domain.sync import AuthenticationFailed, FolderMissing, ServerUnavailable, SyncError
from crmsync.groupware.google.config import DELEGATION_PLACE, SCOPES, GoogleConfig
from crmsync.transport.bounded import read_bounded

TOKEN_RESPONSE_LIMIT = 64 * 1024


class DelegationMissing(AuthenticationFailed):
    """The service account may not act as the rep for ``scope`` (``unauthorized_client``)."""

    def __init__(self, message: str, suggestion: str, scope: str) -> None:
        super().__init__(message, suggestion)
        self.scope = scope


class _Response(transport.Response):
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class HttpxAuthRequest(transport.Request):
    """google-auth's transport interface over an httpx client, bodies bounded."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        request = self.client.build_request(
            method, url, content=body, headers=dict(headers or {}), timeout=timeout or 60.0
        )
        try:
            response = self.client.send(request, stream=True)
            data = read_bounded(response, TOKEN_RESPONSE_LIMIT, "Google's token endpoint")
        except (httpx.HTTPError, SyncError) as exc:
            raise auth_exceptions.TransportError(f"{type(exc).__name__}: {exc}") from exc
        return _Response(response.status_code, response.headers, data)


def delegation_fix(client_id: str) -> str:
    return (
        f"In the {DELEGATION_PLACE}, add the service account's client ID {client_id} with "
        f"the scopes {','.join(SCOPES.values())} and click Authorize; a change can take "
        "some minutes to apply."
    )


class GoogleTokens:
    """Tokens for the reps of one Workspace; thread-safe, one credentials object per
    (rep, scope). ``minted`` counts tokens obtained from Google."""

    def __init__(self, config: GoogleConfig, client: httpx.Client) -> None:
        self.key = config.key
        self._info = dict(self.key.info)
        if config.token_uri:
            self._info["token_uri"] = config.token_uri
        self._request = HttpxAuthRequest(client)
        self._lock = threading.Lock()
        self._credentials: dict[tuple[str, str], service_account.Credentials] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self.minted = 0

    def _entry(self, subject: str, scope: str) -> tuple[Any, threading.Lock]:
        key = (subject.lower(), scope)
        with self._lock:
            if key not in self._credentials:
                try:
                    self._credentials[key] = service_account.Credentials.from_service_account_info(
                        self._info, scopes=[scope], subject=subject
                    )
                except (ValueError, TypeError) as exc:
                    raise AuthenticationFailed(
                        "the service account's private key cannot be loaded "
                        f"({type(exc).__name__})",
                        "Download a new JSON key for the service account and store it.",
                    ) from None
                self._locks[key] = threading.Lock()
            return self._credentials[key], self._locks[key]

    def token(self, subject: str, api: str) -> str:
        """A valid access token for ``subject`` on ``api`` ("calendar" or "people").

        Raises `DelegationMissing`, `AuthenticationFailed`, `FolderMissing` (no such user)
        or `ServerUnavailable` (the token endpoint cannot be reached).
        """
        scope = SCOPES[api]
        credentials, lock = self._entry(subject, scope)
        with lock:
            if not credentials.valid:
                try:
                    credentials.refresh(self._request)
                except auth_exceptions.RefreshError as exc:
                    raise self._refused(exc, subject, scope) from None
                except auth_exceptions.TransportError as exc:
                    raise ServerUnavailable(
                        f"Google's token endpoint could not be reached: {exc}",
                        "Check the network path to oauth2.googleapis.com; retried next cycle.",
                    ) from None
                self.minted += 1
            return str(credentials.token)

    def invalidate(self, subject: str, api: str) -> None:
        """Forget the rep's token for ``api`` (Google refused it), so the next `token`
        mints a new one."""
        credentials, lock = self._entry(subject, SCOPES[api])
        with lock:
            credentials.token = None

    def _refused(self, exc: auth_exceptions.RefreshError, subject: str, scope: str) -> SyncError:
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
        error = str(data.get("error") or "")
        description = str(data.get("error_description") or "")
        client_id = self.key.client_id
        if getattr(exc, "retryable", False) and not error:
            return ServerUnavailable(
                f"Google's token endpoint failed: {str(exc)[:200]}", "Retried next cycle."
            )
        if error == "unauthorized_client":
            return DelegationMissing(
                f"Google refused to let the service account act as {subject} with the scope "
                f"{scope}: domain-wide delegation is not granted for it",
                delegation_fix(client_id),
                scope,
            )
        if error == "invalid_grant" and "email" in description.lower():
            return FolderMissing(
                f"Google Workspace has no user {subject} ({description})",
                "Check the rep's email address: it must be the primary address of an "
                "active user in a domain of this Workspace, not an alias or a group.",
                folder="principal",
            )
        if error == "invalid_grant" and "signature" in description.lower():
            fix = (
                "The key was deleted or disabled: create a new JSON key for the service "
                "account and store it."
            )
        elif error == "invalid_grant" and ("short-lived" in description or "iat" in description):
            fix = "The server's clock is off: synchronise it (NTP); Google allows little skew."
        elif error in ("invalid_client", "disabled_client"):
            fix = "The service account is disabled or deleted: enable it or create a new one."
        else:
            fix = delegation_fix(client_id)
        return AuthenticationFailed(
            f"Google refused a token for {subject}: {error or 'refused'}"
            + (f" ({description[:200]})" if description else ""),
            fix,
        )
