"""Schemathesis against the served OpenAPI document: no input makes the API answer 5xx,
and every answer is one the document declares (status code, content type, headers, body
schema), and a request the schema forbids is refused.

Runs in-process (ASGI) with an API token that holds every permission, so the generated
requests reach the handlers rather than stopping at the permission check.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crmsync.admin.web import create_app
from crmsync.admin.web.security import MANAGE, Permission, hash_password
from crmsync.service.deployment import Deployment

# Collected at import time (schemathesis builds the tests from the document); the folder
# is per process, so xdist workers do not share a database.
_HOME = Path(tempfile.mkdtemp(prefix="crmsync-fuzz-"))
_APP = create_app(Deployment.from_env(_HOME))
_STORE = _APP.state.service.store
_STORE.create_admin("fuzz", hash_password("fuzzing password"), {*MANAGE, Permission.VIEW_ALL_DATA})
_TOKEN = _STORE.create_api_token("fuzz", "schemathesis")
_CRM = _APP.state.service.crm
_CRM.create_profile("Sales")
_CRM.create_user("ann@example.com", "Ann")

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _APP)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_answers_as_its_document_says(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_TOKEN}"}, checks=CHECKS)
