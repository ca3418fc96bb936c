"""Salesforce's error codes as crmsync's `SyncError` family.

The REST API answers a failed request with a JSON list of ``{"errorCode", "message",
"fields"}`` and a failed record of an sObject Collections call with ``{"statusCode",
"message", "fields"}`` in its SaveResult
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
Each class below subclasses the domain error the engine already handles, so a Salesforce
failure becomes an error-report row, a re-plan, a retry next cycle or a stopped rep,
without the engine knowing Salesforce. Messages never contain tokens or keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.domain.sync import (
    AuthenticationFailed,
    ErrorType,
    RejectedWrite,
    ServerUnavailable,
    SyncError,
    VersionConflict,
)


class InvalidSession(AuthenticationFailed):
    """``INVALID_SESSION_ID`` (401) after a freshly minted token: the app or user is refused."""


class TokenRefused(AuthenticationFailed):
    """The OAuth token endpoint refused the JWT or the client credentials."""


class ApiDisabled(AuthenticationFailed):
    """``API_DISABLED_FOR_ORG`` / ``API_CURRENTLY_DISABLED``: the user may not use the API."""


class RowLocked(ServerUnavailable):
    """``UNABLE_TO_LOCK_ROW`` after our retries: another transaction holds the record."""


class RequestLimitExceeded(ServerUnavailable):
    """``REQUEST_LIMIT_EXCEEDED`` (403): the org's rolling 24-hour API allocation is spent
    (or too many long requests run at once). Writes stop until usage drops."""


class EntityIsDeleted(VersionConflict):
    """``ENTITY_IS_DELETED`` / ``NOT_FOUND``: the record is gone; the engine re-plans."""


class DuplicateValue(RejectedWrite):
    """``DUPLICATE_VALUE`` or an upsert that matched several records (HTTP 300)."""


class FieldRejected(RejectedWrite):
    """A field-level refusal (unknown, read-only, too long, invalid, required ...);
    ``fields`` names the Salesforce fields involved."""

    def __init__(self, message: str, suggestion: str = "", fields: Sequence[str] = ()) -> None:
        super().__init__(message, suggestion)
        self.fields = tuple(fields)


class AccessDenied(RejectedWrite):
    """``INSUFFICIENT_ACCESS*``: the integration user lacks a permission on the record."""


class ConfigurationProblem(SyncError):
    """The org is set up in a way crmsync cannot work with (missing marker field ...)."""

    error_type = ErrorType.CONFIGURATION


class UnexpectedAnswer(SyncError):
    """A response that is not what the documentation describes (too large, not JSON ...)."""

    transient = True
    error_type = ErrorType.SERVER_UNAVAILABLE


# Codes that refuse a field's value; the suggestion names the fields.
FIELD_CODES = frozenset(
    {
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_FIELD_WHEN_USING_TEMPLATE",
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION",
        "FIELD_FILTER_VALIDATION_EXCEPTION",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "JSON_PARSER_ERROR",
        "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY",
    }
)
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)


def first_error(body: Any) -> dict[str, Any]:
    """The first error object of an error response (a list, or a bare object)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    if isinstance(body, dict):
        return body
    return {}


def error_code(error: dict[str, Any]) -> str:
    # Request-level errors say errorCode, SaveResult errors say statusCode.
    return str(error.get("errorCode") or error.get("statusCode") or "")


def to_sync_error(error: dict[str, Any], what: str) -> SyncError:
    """The crmsync error for one Salesforce error object; ``what`` names the operation."""
    code = error_code(error)
    message = str(error.get("message", ""))[:500]
    fields = [str(f) for f in error.get("fields") or ()][:20]
    text = f"Salesforce refused {what}: {code}: {message}".rstrip(": ")
    if code == "INVALID_SESSION_ID":
        return InvalidSession(
            text,
            "Check the connected app (or external client app): its certificate or secret, "
            "the user's pre-authorisation and the session policy.",
        )
    if code in ("API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"):
        return ApiDisabled(
            text, "Give the integration user the 'API Enabled' permission (and an API edition)."
        )
    if code == "REQUEST_LIMIT_EXCEEDED":
        return RequestLimitExceeded(
            text,
            "The org's daily API allocation is used up; crmsync stops writing and resumes "
            "once usage drops. Lower the sync frequency or buy more API calls.",
        )
    if code == "UNABLE_TO_LOCK_ROW":
        return RowLocked(text, "Another process was writing the same records; retried next cycle.")
    if code in ("ENTITY_IS_DELETED", "NOT_FOUND"):
        return EntityIsDeleted(
            text, "The record was deleted in Salesforce; the sync decides again."
        )
    if code in ("DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID"):
        return DuplicateValue(
            text,
            "Another Salesforce record holds the same unique value (the crmsync marker or a "
            "duplicate rule): merge or delete the duplicate.",
        )
    if code.startswith("INSUFFICIENT_ACCESS") or code == "CANNOT_UPDATE_CONVERTED_LEAD":
        return AccessDenied(
            text, "Give the integration user edit access to this record (sharing, profile)."
        )
    if code in FIELD_CODES or fields:
        named = ", ".join(fields) or "the field named in the message"
        return FieldRejected(
            text,
            f"Check {named}: its value on the mail server, the field's permissions for the "
            "integration user, and the configuration's field mappings.",
            fields,
        )
    if code in RETRYABLE_CODES:
        return ServerUnavailable(text, "Salesforce was busy; retried next cycle.")
    return RejectedWrite(text, "See the Salesforce error code in the message.")
