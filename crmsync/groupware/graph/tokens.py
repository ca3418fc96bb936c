"""App-only access tokens from Microsoft Entra ID through msal (client credentials flow).

msal keeps the token in its in-memory cache and fetches a new one when it is within five
minutes of expiry; `GraphTokens.invalidate` drops a token Graph refused (HTTP 401) so the
next `token` call asks Entra ID again.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import msal

from crmsync.domain.sync import AuthenticationFailed, ServerUnavailable
from crmsync.groupware.graph.config import DEFAULT_AUTHORITY, GRAPH_SCOPE, GraphConfig

# Entra ID error codes (AADSTSnnnn) an admin can act on, with the fix.
_AADSTS_FIXES = {
    "7000215": "The client secret is wrong: create a new secret for the app registration "
    "(Certificates & secrets) and store its value, not its id.",
    "7000222": "The client secret has expired: create a new one and store it.",
    "700016": "No app with this client id exists in the tenant: check the application "
    "(client) id and the tenant id of the app registration.",
    "90002": "The tenant id is unknown: copy the directory (tenant) id from Entra ID.",
    "700027": "The certificate was refused: upload its public key to the app registration "
    "and check the thumbprint.",
    "65001": "The app has no admin consent: an admin must grant consent to its API "
    "permissions in Entra ID.",
    "1003031": "The app has no admin consent: an admin must grant consent to its API "
    "permissions in Entra ID.",
}
REQUIRED_ROLES = ("Calendars.ReadWrite", "Contacts.ReadWrite")


def token_fix(description: str) -> str:
    """The admin's fix for an Entra ID error description."""
    for code, fix in _AADSTS_FIXES.items():
        if f"AADSTS{code}" in description:
            return fix
    return (
        "Check the app registration in Entra ID: tenant id, client id, the client secret or "
        "certificate, and admin consent to Calendars.ReadWrite and Contacts.ReadWrite."
    )


def token_roles(token: str) -> tuple[str, ...]:
    """The application permissions (``roles`` claim) of an access token; ``()`` when the
    token is not a readable JWT. Read only to explain failures, never trusted for access."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return tuple(roles) if isinstance(roles, list) else ()


class GraphTokens:
    """Access tokens for Graph as the app of ``config``.

    ``http_client`` is handed to msal (its ``HttpClient`` interface: ``get``/``post``
    returning objects with ``status_code``, ``text``, ``headers``); ``None`` lets msal use
    ``requests``.
    """

    def __init__(self, config: GraphConfig, http_client: Any = None) -> None:
        self.config = config
        self._lock = threading.Lock()
        custom_authority = config.authority_url.rstrip("/") != DEFAULT_AUTHORITY
        kwargs: dict[str, Any] = {}
        if http_client is not None:
            kwargs["http_client"] = http_client
        if custom_authority:
            # A national cloud or a test authority: skip Microsoft's instance discovery.
            kwargs["instance_discovery"] = False
            kwargs["validate_authority"] = False
        try:
            self._app = msal.ConfidentialClientApplication(
                config.client_id,
                client_credential=config.credential,
                authority=config.authority,
                **kwargs,
            )
        except ValueError as exc:
            raise AuthenticationFailed(
                f"Entra ID tenant {config.tenant_id!r} cannot be used: {exc}",
                token_fix(str(exc)),
            ) from exc
        except OSError as exc:  # msal looks the tenant up at once (requests' errors)
            raise _unreachable(config, exc) from exc
        self.acquired = 0

    def token(self) -> str:
        """A valid access token (from msal's cache when it has one).

        Raises `AuthenticationFailed` with the admin's fix when Entra ID refuses.
        """
        with self._lock:
            try:
                result = self._app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
            except ValueError as exc:  # msal's failed discovery, bad certificate ...
                raise AuthenticationFailed(
                    f"could not get a token from Entra ID: {exc}", token_fix(str(exc))
                ) from exc
            except OSError as exc:
                raise _unreachable(self.config, exc) from exc
        if "access_token" not in result:
            description = str(result.get("error_description") or result.get("error") or "")
            raise AuthenticationFailed(
                f"Entra ID refused the app {self.config.client_id!r}: "
                f"{description.splitlines()[0] if description else 'no reason given'}",
                token_fix(description),
            )
        if result.get("token_source") != "cache":
            self.acquired += 1
        return str(result["access_token"])

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (Graph refused it), so the next `token` fetches a new one."""
        cache = self._app.token_cache
        with self._lock:
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == token:
                    cache.remove_at(entry)


def _unreachable(config: GraphConfig, failure: OSError) -> ServerUnavailable:
    """Entra ID could not be reached (DNS, firewall, proxy): a passing failure, not a
    refusal, so the rep is tried again next cycle."""
    return ServerUnavailable(
        f"cannot reach Entra ID at {config.authority_url}: {type(failure).__name__}",
        f"Check that this machine can resolve and reach {config.authority_url} over HTTPS "
        "(DNS, firewall, outgoing proxy: HTTPS_PROXY).",
    )
