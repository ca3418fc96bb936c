"""Salesforce's value shapes the fake org writes and refuses by: a request-level refusal
(`FakeError`), a SaveResult error (`error`), and instants as the REST API sends them."""

from __future__ import annotations

import datetime as dt
from typing import Any

UTC = dt.UTC


class FakeError(Exception):
    """A request-level refusal: HTTP status, errorCode, message."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []


def error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def parse_instant(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sf_instant(value: dt.datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
