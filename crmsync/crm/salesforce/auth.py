"""Access tokens for the org: OAuth 2.0 JWT bearer or client credentials, minted on demand.

Neither flow has a refresh token: a token that Salesforce stops accepting
(``INVALID_SESSION_ID``, after the session timeout) is dropped and a new one minted.
JWT bearer: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
(RS256 assertion with ``iss`` = consumer key, ``sub`` = username, ``aud`` = login or test
URL, a short ``exp``). Client credentials:
https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm
Keys, secrets and tokens are never logged; errors carry Salesforce's error code only.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from crmsync.crm.salesforce.config import AuthFlow, SalesforceConfig
from crmsync.crm.salesforce.errors import TokenRefused
from crmsync.domain.sync import ServerUnavailable
from crmsync.transport.bounded import read_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The assertion only has to outlive its own token request.
ASSERTION_LIFETIME = 180
MAX_TOKEN_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    instance_url: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(config: SalesforceConfig, now: float) -> str:
    """The signed RS256 JWT the bearer flow posts; raises `TokenRefused` for a bad key."""
    try:
        key = serialization.load_pem_private_key(config.private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise TokenRefused(
            "the Salesforce private key cannot be read (it must be an unencrypted PEM key)",
            "Store the private key of the certificate uploaded to the connected app.",
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TokenRefused(
            "the Salesforce private key is not an RSA key", "Salesforce signs JWTs with RS256."
        )
    header = _b64url(json.dumps({"alg": "RS256"}).encode())
    claims = {
        "iss": config.client_id,
        "sub": config.username,
        "aud": config.jwt_audience,
        "exp": int(now) + ASSERTION_LIFETIME,
    }
    signing_input = f"{header}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class TokenSource:
    """One org's current access token, shared by every request of a connection.

    `token` mints one when there is none; `invalidate` drops a token Salesforce refused
    (only if it is still the current one, so concurrent refusals mint once).
    ``tokens_minted`` counts token requests.
    """

    def __init__(
        self,
        config: SalesforceConfig,
        client: httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.client = client
        self.clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self.tokens_minted = 0

    def token(self) -> AccessToken:
        with self._lock:
            if self._current is None:
                self._current = self._mint()
            return self._current

    def invalidate(self, refused: AccessToken) -> None:
        with self._lock:
            if self._current is refused:
                self._current = None

    def _form(self) -> dict[str, str]:
        if self.config.flow is AuthFlow.JWT_BEARER:
            return {"grant_type": JWT_GRANT, "assertion": jwt_assertion(self.config, self.clock())}
        return {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }

    def _mint(self) -> AccessToken:
        url = f"{self.config.base_url}/services/oauth2/token"
        try:
            request = self.client.build_request(
                "POST", url, data=self._form(), timeout=self.config.timeout
            )
            sent = self.client.send(request, stream=True)
            response = read_response(sent, MAX_TOKEN_RESPONSE, "the Salesforce token endpoint")
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"the Salesforce token endpoint could not be reached: {type(exc).__name__}",
                "Check the My Domain URL and the network path to Salesforce.",
            ) from exc
        self.tokens_minted += 1
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise ServerUnavailable(
                f"the Salesforce token endpoint answered HTTP {response.status_code}",
                "Salesforce may be in maintenance; retried next cycle.",
            )
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            description = str(body.get("error_description", ""))[:300] if error else ""
            raise TokenRefused(
                f"Salesforce refused the {self.config.flow.value} token request "
                f"(HTTP {response.status_code}): {error} {description}".rstrip(),
                _token_fix(self.config, error, description),
            )
        return AccessToken(str(body["access_token"]), str(body.get("instance_url") or ""))


def _token_fix(config: SalesforceConfig, error: str, description: str) -> str:
    text = description.lower()
    if config.flow is AuthFlow.JWT_BEARER:
        if "approved" in text or "authoriz" in text:
            return (
                "Pre-authorise the user: in the app's policies choose 'Admin approved users "
                "are pre-authorized' and add the user's profile or permission set."
            )
        if "audience" in text:
            return "Mark the org as a sandbox (audience test.salesforce.com) or not."
        return (
            "Check the consumer key, the username, and that the certificate uploaded to "
            "the app matches the stored private key."
        )
    if "client credentials" in text or error == "invalid_grant":
        return "Enable the client-credentials flow on the app and set its Run-As user."
    return "Check the consumer key and secret of the app, and the My Domain URL."
