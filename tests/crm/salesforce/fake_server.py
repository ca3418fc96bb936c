"""`FakeSalesforce`: a stateful Salesforce REST API on 127.0.0.1 for tests.

A real HTTP server (port 0, a thread) over a `FakeOrg`. Each handler names the page it
follows. It refuses what Salesforce refuses: a missing or expired session (401
``INVALID_SESSION_ID``), a bad JWT or client secret (400 ``invalid_grant`` /
``invalid_client``), SOQL it cannot parse or fields it does not have, more than 200 records
in a collection, read-only and unknown fields per record, and, once the day's calls are
spent, everything (403 ``REQUEST_LIMIT_EXCEEDED``). Every API answer carries
``Sforce-Limit-Info``. Test controls: `expire_sessions`, `lock_rows`, `api_limit`.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.crm.salesforce.fake_org import FakeError, FakeOrg
from tests.crm.salesforce.fake_setup import create_custom_field, visible_fields

API = "/services/data/v"
MAX_COLLECTION = 200
Answer = tuple[int, Any]


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _refusal(status: int, code: str, message: str, fields: list[str] | None = None) -> Answer:
    return status, [{"message": message, "errorCode": code, "fields": fields or []}]


class FakeSalesforce:
    def __init__(
        self,
        org: FakeOrg | None = None,
        *,
        client_id: str = "3MVG9-fake-consumer-key",
        client_secret: str = "fake-consumer-secret",
        public_key: rsa.RSAPublicKey | None = None,
        sandbox: bool = False,
        page_size: int = 2000,
        api_limit: int = 100_000,
    ) -> None:
        self.org = org or FakeOrg()
        self.client_id, self.client_secret = client_id, client_secret
        self.public_key = public_key
        self.sandbox = sandbox
        self.page_size = page_size
        self.api_limit = api_limit
        self.api_used = 0
        self.versions = [("61.0", "Summer '24"), ("62.0", "Winter '25")]
        self.sessions: set[str] = set()
        self.tokens_issued = 0
        self.calls: list[tuple[str, str]] = []  # (method, path) of API calls
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._locators = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ---------------------------------------------------------------- lifecycle, controls

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expire_sessions(self) -> None:
        """Every issued token stops working, as after the session timeout."""
        with self._lock:
            self.sessions.clear()

    def lock_rows(self, count: int) -> None:
        """The next ``count`` record writes fail with UNABLE_TO_LOCK_ROW."""
        self.org.locked_writes += count

    def api_calls(self, method: str | None = None, prefix: str = "") -> int:
        return sum(
            1 for m, p in self.calls if (method is None or m == method) and p.startswith(prefix)
        )

    # ---------------------------------------------------------------- HTTP plumbing

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Salesforce
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake.handle(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        path, params = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if path == "/services/oauth2/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            status, body = self._token(form)
            return status, body, {}
        if path.rstrip("/") == "/services/data" and method == "GET":
            return 200, self._versions(), {}
        if not path.startswith(API):
            return 404, [{"errorCode": "NOT_FOUND", "message": "resource not found"}], {}
        with self._lock:
            token = headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.sessions:
                return (
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                    {},
                )
            self.calls.append((method, path))
            self.api_used += 1
            usage = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
            if self.api_used > self.api_limit:
                status, body = _refusal(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
                return status, body, usage
        rest = path[len(API) :].partition("/")[2]
        try:
            body_in = json.loads(raw) if raw else None
        except ValueError:
            status, body = _refusal(400, "JSON_PARSER_ERROR", "malformed JSON")
            return status, body, usage
        try:
            status, body = self._route(method, rest, params, body_in)
        except FakeError as exc:
            status, body = _refusal(exc.status, exc.code, exc.message, exc.fields)
        return status, body, usage

    def _route(self, method: str, rest: str, params: dict[str, str], body: Any) -> Answer:
        segments = [unquote(s) for s in rest.strip("/").split("/")]
        routes: dict[tuple[str, str], Callable[[], Answer]] = {
            ("GET", "query"): lambda: self._query(params, segments, include_deleted=False),
            ("GET", "queryAll"): lambda: self._query(params, segments, include_deleted=True),
            ("GET", "limits"): self._limits,
        }
        handler = routes.get((method, segments[0]))
        if handler is not None:
            return handler()
        if segments == ["tooling", "sobjects", "CustomField"] and method == "POST":
            return create_custom_field(self.org, body)
        if segments[:2] == ["composite", "sobjects"]:
            return self._collection(method, segments[2:], params, body)
        if segments[0] == "sobjects" and len(segments) == 3 and segments[2] == "describe":
            return self._describe(segments[1])
        if segments[0] == "sobjects" and len(segments) == 3 and method == "DELETE":
            problem = self.org.delete(segments[2])
            return (
                (204, None)
                if problem is None
                else _refusal(
                    404 if problem["statusCode"] != "ENTITY_IS_DELETED" else 400,
                    problem["statusCode"],
                    problem["message"],
                )
            )
        return _refusal(404, "NOT_FOUND", "The requested resource does not exist")

    # ---------------------------------------------------------------- OAuth

    # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm and
    # https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm
    def _token(self, form: dict[str, str]) -> Answer:
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_jwt(form.get("assertion", ""))
        elif grant == "client_credentials":
            ok = (form.get("client_id"), form.get("client_secret")) == (
                self.client_id,
                self.client_secret,
            )
            problem = None if ok else ("invalid_client", "invalid client credentials")
        else:
            problem = ("unsupported_grant_type", "grant type not supported")
        if problem is not None:
            return 400, {"error": problem[0], "error_description": problem[1]}
        token = "00Dfake!" + secrets.token_urlsafe(24)
        with self._lock:
            self.sessions.add(token)
            self.tokens_issued += 1
        return 200, {
            "access_token": token,
            "instance_url": self.url,
            "id": f"{self.url}/id/00Dfake/005fake",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "scope": "api",
        }

    def _check_jwt(self, assertion: str) -> tuple[str, str] | None:
        try:
            header, claims, signature = assertion.split(".")
            head = json.loads(_b64decode(header))
            body = json.loads(_b64decode(claims))
        except ValueError:
            return ("invalid_grant", "invalid assertion")
        if head.get("alg") != "RS256" or self.public_key is None:
            return ("invalid_grant", "invalid assertion")
        try:
            self.public_key.verify(
                _b64decode(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return ("invalid_grant", "invalid assertion")
        audience = "https://test.salesforce.com" if self.sandbox else "https://login.salesforce.com"
        if body.get("iss") != self.client_id:
            return ("invalid_client_id", "client identifier invalid")
        if body.get("aud") != audience:
            return ("invalid_grant", "audience is invalid")
        if not isinstance(body.get("exp"), int) or body["exp"] < time.time():
            return ("invalid_grant", "expired authorization code")
        user = self.org.user_by_username(str(body.get("sub")))
        if user is None or not user["IsActive"]:
            return ("invalid_grant", "user hasn't approved this consumer")
        return None

    # ---------------------------------------------------------------- resources

    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm
    def _query(self, params: dict[str, str], segments: list[str], include_deleted: bool) -> Answer:
        if len(segments) > 1 and segments[1]:
            locator = segments[1]
            with self._lock:
                rows = self._cursors.pop(locator, None)
            if rows is None:
                return _refusal(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(rows, len(rows), segments[0])
        if "q" not in params:
            return _refusal(400, "MALFORMED_QUERY", "no query given")
        rows = self.org.query(params["q"], include_deleted)
        return self._page(rows, len(rows), segments[0])

    def _page(self, rows: list[dict[str, Any]], total: int, resource: str) -> Answer:
        page, rest = rows[: self.page_size], rows[self.page_size :]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            locator = f"01gFAKE{next(self._locators):08d}-{self.page_size}"
            with self._lock:
                self._cursors[locator] = rest
            body["nextRecordsUrl"] = f"/services/data/v62.0/{resource}/{locator}"
        return 200, body

    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_versions.htm
    # (no session needed, not counted against the allocation)
    def _versions(self) -> list[dict[str, str]]:
        return [
            {"label": label, "url": f"/services/data/v{version}", "version": version}
            for version, label in self.versions
        ]

    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
    def _describe(self, sobject: str) -> Answer:
        if sobject not in self.org.schema:
            return _refusal(404, "NOT_FOUND", "The requested resource does not exist")
        fields = visible_fields(self.org, sobject)
        writable = sobject not in self.org.read_only_objects
        return 200, {
            "name": sobject,
            "createable": writable,
            "updateable": writable,
            "deletable": writable,
            "fields": [spec.describe(name) for name, spec in fields.items()],
        }

    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
    def _limits(self) -> Answer:
        return 200, {
            "DailyApiRequests": {
                "Max": self.api_limit,
                "Remaining": max(self.api_limit - self.api_used, 0),
            }
        }

    # Collections create / update / delete / upsert:
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections.htm
    def _collection(
        self, method: str, tail: list[str], params: dict[str, str], body: Any
    ) -> Answer:
        if method == "DELETE":
            ids = [i for i in params.get("ids", "").split(",") if i]
            if len(ids) > MAX_COLLECTION:
                return _limit_refusal()
            return 200, [self._result(i, self.org.delete(i)) for i in ids]
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return _refusal(400, "JSON_PARSER_ERROR", "records are required")
        if len(records) > MAX_COLLECTION:
            return _limit_refusal()
        if body.get("allOrNone"):
            return _refusal(400, "INVALID_FIELD", "allOrNone=true is not modelled by the fake")
        results = []
        for record in records:
            sobject = (record.get("attributes") or {}).get("type")
            fields = {k: v for k, v in record.items() if k != "attributes"}
            if not sobject:
                results.append(
                    self._result(
                        None,
                        {
                            "statusCode": "INVALID_TYPE",
                            "message": "Must send a concrete entity type.",
                            "fields": [],
                        },
                    )
                )
            elif method == "POST":
                if "Id" in fields:
                    results.append(
                        self._result(
                            None,
                            {
                                "statusCode": "INVALID_FIELD",
                                "message": "cannot specify Id in an insert call",
                                "fields": ["Id"],
                            },
                        )
                    )
                    continue
                record_id, problem = self.org.create(sobject, fields)
                results.append(self._result(record_id, problem))
            elif method == "PATCH" and not tail:
                record_id = str(fields.pop("Id", ""))
                results.append(
                    self._result(record_id or None, self.org.update(sobject, record_id, fields))
                )
            elif method == "PATCH" and len(tail) == 2:
                key_field = tail[1]
                try:
                    status, answer = self.org.upsert(
                        sobject,
                        key_field,
                        str(fields.get(key_field)),
                        {k: v for k, v in fields.items() if k != key_field},
                    )
                except FakeError as exc:
                    results.append(
                        self._result(
                            None,
                            {"statusCode": exc.code, "message": exc.message, "fields": exc.fields},
                        )
                    )
                    continue
                if status == 300:
                    results.append(
                        self._result(
                            None,
                            {
                                "statusCode": "DUPLICATE_EXTERNAL_ID",
                                "message": "more than one record found",
                                "fields": [key_field],
                            },
                        )
                    )
                else:
                    results.append({**answer})
            else:
                return _refusal(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed")
        return 200, results

    @staticmethod
    def _result(record_id: str | None, problem: dict[str, Any] | None) -> dict[str, Any]:
        if problem is None:
            return {"id": record_id, "success": True, "errors": []}
        return {
            "id": record_id if problem["statusCode"] == "ENTITY_IS_DELETED" else None,
            "success": False,
            "errors": [problem],
        }


def _limit_refusal() -> Answer:
    return _refusal(
        400,
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )


def new_key_pair() -> tuple[str, rsa.RSAPublicKey]:
    """A private key (PEM, as an admin stores it) and its public half for the fake app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()
