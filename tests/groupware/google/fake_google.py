"""`FakeGoogle`: Google's OAuth token endpoint, Calendar v3 and People v1, in memory.

Built from Google's documented payloads (each handler names its developers.google.com
page) and served through ``httpx.MockTransport``; google-auth reaches the token endpoint
through the backend's own transport hook. It keeps each user's primary calendar
(`FakeCalendar`) and contacts (`FakePeople`) and refuses what Google refuses:

- tokens: a JWT assertion with a bad signature (400 ``invalid_grant``), a scope the
  service account is not delegated (401 ``unauthorized_client``), a subject that is no
  user (400 ``invalid_grant``, "Invalid email or User ID");
- every API: a missing or revoked bearer token (401 ``authError``), a token without the
  API's scope (403 ``insufficientPermissions`` / ``ACCESS_TOKEN_SCOPE_INSUFFICIENT``),
  quota and rate-limit errors on demand (`fail_next`);
- Calendar and People: see their modules.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.groupware.google.fake_calendar import FakeCalendar
from tests.groupware.google.fake_people import FakePeople

TOKEN_URI = "https://oauth2.fake.test/token"
CALENDAR = "https://calendar.fake.test/calendar/v3"
PEOPLE = "https://people.fake.test/v1"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts"
CLIENT_EMAIL = "crmsync@crmsync-test.iam.gserviceaccount.com"
CLIENT_ID = "104857600000000000001"


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    # One key per test process: generating RSA keys is slow, and tests never share state
    # through it (each fake keeps its own tokens).
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_key(private_key: rsa.RSAPrivateKey | None = None) -> str:
    """A service account JSON key, shaped like the Cloud console's download."""
    key = private_key or _private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "crmsync-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": CLIENT_ID,
            "auth_uri": "https://accounts.fake.test/o/oauth2/auth",
            "token_uri": TOKEN_URI,
        }
    )


def legacy_error(status: int, reason: str, message: str, domain: str = "global") -> dict:
    """Calendar's error shape (https://developers.google.com/workspace/calendar/api/guides/errors)."""
    return {
        "error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status,
            "message": message,
        }
    }


def rpc_error(status: int, code: str, message: str, reason: str = "") -> dict:
    """People's ``google.rpc.Status`` shape (https://cloud.google.com/apis/design/errors)."""
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return {"error": error}


@dataclass
class Issued:
    subject: str
    scopes: frozenset[str]


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    api: str | None
    headers: dict[str, str] = field(default_factory=dict)


# The errors `fail_next` can inject, by name, as Google sends them.
def _failure(kind: str, api: str) -> tuple[int, dict[str, Any]]:
    if kind == "rateLimitExceeded":
        return 403, legacy_error(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
    if kind == "userRateLimitExceeded":
        return 403, legacy_error(
            403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits"
        )
    if kind == "quotaExceeded":
        return 403, legacy_error(
            403, "quotaExceeded", "Calendar usage limits exceeded.", "usageLimits"
        )
    if kind == "429" and api == "people":
        return 429, rpc_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Critical read requests (Contact and Profile "
            "Reads)' and limit 'Critical read requests (Contact and Profile Reads) per "
            "minute per user' of service 'people.googleapis.com'.",
            "RATE_LIMIT_EXCEEDED",
        )
    if kind == "429-project":
        return 429, rpc_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
            "minute' of service 'people.googleapis.com'.",
            "RATE_LIMIT_EXCEEDED",
        )
    if kind == "429":
        return 429, legacy_error(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
    if kind == "503":
        return 503, legacy_error(503, "backendError", "Backend Error")
    raise ValueError(kind)


class FakeGoogle:
    def __init__(
        self,
        users: tuple[str, ...] = ("rep@example.com",),
        delegated: frozenset[str] = frozenset({CALENDAR_SCOPE, CONTACTS_SCOPE}),
        page_size: int = 50,
    ) -> None:
        self.lock = threading.RLock()
        self.users = {u.lower() for u in users}
        self.delegated = set(delegated)
        self.public_key = _private_key().public_key()
        self.tokens: dict[str, Issued] = {}
        self.tokens_issued = 0
        self.requests: list[httpx.Request] = []
        self.failures: list[Failure] = []
        self.now = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)  # the fake's own clock
        self.calendar = FakeCalendar(self, page_size)
        self.people = FakePeople(self, page_size)
        self.seq = itertools.count(1)
        self.quota_window = 0.0
        self.quota_exhausted_until: float | None = 0.0
        self.quota_refusals = 0

    # ---------------------------------------------------------------- test controls

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def revoke_tokens(self) -> None:
        """Every issued token stops working (as after its hour)."""
        with self.lock:
            self.tokens.clear()

    def fail_next(
        self, count: int, kind: str, api: str | None = None, retry_after: str = ""
    ) -> None:
        """The next ``count`` API requests (of ``api``, if named) answer the error ``kind``:
        rateLimitExceeded, userRateLimitExceeded, quotaExceeded, 429, 429-project, 503."""
        for _ in range(count):
            status, body = _failure(kind, api or "calendar")
            headers = {"Retry-After": retry_after} if retry_after else {}
            self.failures.append(Failure(status, body, api, headers))

    def exhaust_project_quota(self, seconds: float) -> None:
        """The next API request spends the project's quota: it and every request in the
        ``seconds`` after it (real time) are refused with a per-project 429 naming the
        seconds left (``Retry-After``), as Google refuses a project's requests until its
        per-minute quota refills (https://developers.google.com/people/v1/quotas);
        `quota_refusals` counts them."""
        with self.lock:
            self.quota_window = seconds
            self.quota_exhausted_until = None

    def advance(self, **delta: float) -> None:
        """Move the fake's clock (sync token expiry)."""
        self.now += dt.timedelta(**delta)

    def api_requests(self, api: str | None = None) -> list[httpx.Request]:
        hosts = {"calendar": "calendar.fake.test", "people": "people.fake.test"}
        wanted = {hosts[api]} if api else set(hosts.values())
        return [r for r in self.requests if r.url.host in wanted]

    def next_seq(self) -> int:
        return next(self.seq)

    # ---------------------------------------------------------------- dispatch

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            host = request.url.host
            if host == "oauth2.fake.test":
                status, headers, body = self._token(request)
            elif host in ("calendar.fake.test", "people.fake.test"):
                api = "calendar" if host.startswith("calendar") else "people"
                status, headers, body = self._api(api, request)
            else:
                status, headers, body = 404, {}, {"error": "unknown host"}
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, headers=headers, json=body)

    # https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    # (the JWT bearer grant: an RS256-signed assertion naming iss, scope, aud, sub, iat,
    # exp; errors in the OAuth 2.0 shape {"error", "error_description"}).
    def _token(self, request: httpx.Request) -> tuple:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return (
                400,
                {},
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
            )
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            claims = json.loads(_unb64(claims_b64))
            header = json.loads(_unb64(header_b64))
            self.public_key.verify(
                _unb64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:  # any malformed or forged assertion is refused alike
            return (
                400,
                {},
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            )
        if header.get("alg") != "RS256" or claims.get("iss") != CLIENT_EMAIL:
            return (
                400,
                {},
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            )
        # "aud: always https://oauth2.googleapis.com/token", whichever host serves it.
        if (
            claims.get("aud") != "https://oauth2.googleapis.com/token"
            or int(claims["exp"]) - int(claims["iat"]) > 3600
        ):
            return (
                400,
                {},
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived token "
                    "(60 minutes)",
                },
            )
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes or not scopes <= self.delegated:
            return (
                401,
                {},
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes "
                    "requested.",
                },
            )
        subject = str(claims.get("sub", "")).lower()
        if subject not in self.users:
            return (
                400,
                {},
                {"error": "invalid_grant", "error_description": "Invalid email or User ID"},
            )
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens[token] = Issued(subject, scopes)
        self.tokens_issued += 1
        return 200, {}, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    # https://developers.google.com/workspace/calendar/api/guides/errors (401, 403, 429,
    # 5xx) and https://developers.google.com/people/api/rest (the same in rpc shape).
    def _api(self, api: str, request: httpx.Request) -> tuple:
        auth = request.headers.get("Authorization", "")
        issued = (
            self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        )
        if issued is None:
            body = legacy_error(401, "authError", "Invalid Credentials")
            if api == "people":
                body = rpc_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                )
            return 401, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}, body
        needed = CALENDAR_SCOPE if api == "calendar" else CONTACTS_SCOPE
        if needed not in issued.scopes:
            if api == "people":
                return (
                    403,
                    {},
                    rpc_error(
                        403,
                        "PERMISSION_DENIED",
                        "Request had insufficient authentication scopes.",
                        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    ),
                )
            return (
                403,
                {},
                legacy_error(
                    403,
                    "insufficientPermissions",
                    "Request had insufficient authentication scopes.",
                ),
            )
        for i, failure in enumerate(self.failures):
            if failure.api in (None, api):
                del self.failures[i]
                return failure.status, failure.headers, failure.body
        if self.quota_exhausted_until is None:  # armed: this request spends the quota
            self.quota_exhausted_until = time.monotonic() + self.quota_window
        if (left := self.quota_exhausted_until - time.monotonic()) > 0:
            self.quota_refusals += 1
            status, body = _failure("429-project", api)
            return status, {"Retry-After": str(math.ceil(left))}, body
        query = {
            k: v for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()
        }
        body = json.loads(request.content) if request.content else None
        service = self.calendar if api == "calendar" else self.people
        return service.route(
            issued.subject, request.method, request.url.path, query, dict(request.headers), body
        )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
