"""The Salesforce client against the fake: auth, paging, collections, errors, limits."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from crmsync.crm.salesforce import AuthFlow, SalesforceConfig, SalesforceConnection
from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.auth import MAX_TOKEN_RESPONSE, TokenSource
from crmsync.crm.salesforce.errors import (
    DuplicateValue,
    FieldRejected,
    RequestLimitExceeded,
    TokenRefused,
)
from crmsync.crm.salesforce.limits import daily_api_usage
from crmsync.crm.salesforce.query import query, quote
from crmsync.crm.salesforce.upsert import upsert_many
from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import AuthenticationFailed, RejectedWrite, ServerUnavailable
from crmsync.transport.bounded import ResponseTooLarge
from tests.crm.salesforce.harness import OrgHarness, fake_harness


@pytest.fixture
def org() -> Iterator[OrgHarness]:
    harness = fake_harness()
    yield harness
    harness.close()


def _contacts(n: int, owner: str) -> list[dict[str, object]]:
    return [{"LastName": f"Person {i}", "OwnerId": owner} for i in range(n)]


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize("flow", list(AuthFlow))
def test_both_server_to_server_flows_get_a_token(flow: AuthFlow) -> None:
    harness = fake_harness(flow=flow)
    try:
        assert harness.crm.list_profiles()[0].name == "Sales"
        assert harness.fake is not None and harness.fake.tokens_issued == 1
    finally:
        harness.close()


def test_expired_session_mints_a_new_token_once(org: OrgHarness) -> None:
    assert org.fake is not None
    org.crm.list_profiles()
    org.fake.expire_sessions()
    org.crm._profiles = None  # read again
    assert [p.name for p in org.crm.list_profiles()] == ["Sales"]
    assert org.fake.tokens_issued == 2


def test_refused_client_secret_is_an_authentication_failure(org: OrgHarness) -> None:
    assert org.fake is not None
    config = SalesforceConfig(
        instance_url=org.fake.url,
        client_id=org.fake.client_id,
        flow=AuthFlow.CLIENT_CREDENTIALS,
        client_secret="wrong",
    )
    with SalesforceConnection(config) as conn, pytest.raises(TokenRefused) as refused:
        conn.get("limits/")
    assert isinstance(refused.value, AuthenticationFailed)
    assert "invalid_client" in refused.value.message


def test_jwt_for_a_user_not_approved_names_pre_authorisation(org: OrgHarness) -> None:
    assert org.fake is not None
    config = SalesforceConfig(
        instance_url=org.fake.url,
        client_id=org.fake.client_id,
        username="nobody@example.com",
        private_key_pem=org.crm.config.private_key_pem,
    )
    with SalesforceConnection(config) as conn, pytest.raises(TokenRefused) as refused:
        conn.get("limits/")
    assert "Pre-authorise" in refused.value.suggestion


def test_credentials_never_reach_the_log(org: OrgHarness, caplog: pytest.LogCaptureFixture) -> None:
    assert org.fake is not None
    caplog.set_level(logging.DEBUG)
    org.fake.expire_sessions()
    org.crm._users = None
    org.crm.list_users()
    org.fake.api_limit = 0
    with pytest.raises(RequestLimitExceeded):
        org.crm.api_usage()
    text = caplog.text + repr(org.crm.config)
    secrets = [org.crm.config.client_secret, *org.crm.config.private_key_pem.splitlines()[1:3]]
    secrets += list(org.fake.sessions)
    assert all(s and s not in text for s in secrets)


# ---------------------------------------------------------------- reading


def test_query_follows_next_records_url(org: OrgHarness) -> None:
    assert org.fake is not None
    org.fake.page_size = 3
    collections.create(org.crm.conn, "Contact", _contacts(7, org.rep.id))
    before = org.fake.api_calls("GET")
    rows = list(query(org.crm.conn, "SELECT Id FROM Contact ORDER BY Id"))
    assert len(rows) == 7
    assert org.fake.api_calls("GET") - before == 3


def test_unknown_field_in_soql_is_refused(org: OrgHarness) -> None:
    with pytest.raises(FieldRejected):
        list(query(org.crm.conn, "SELECT Nope__c FROM Contact"))


def test_describe_is_read_once(org: OrgHarness) -> None:
    assert org.fake is not None
    org.crm.custom_field_types()
    org.crm.custom_field_types()
    assert org.fake.api_calls("GET", "/services/data/v62.0/sobjects/Contact/describe") == 1


def test_response_bigger_than_the_cap_is_refused(org: OrgHarness) -> None:
    assert org.fake is not None
    small = SalesforceConfig(
        instance_url=org.fake.url,
        client_id=org.fake.client_id,
        username="integration@example.com",
        private_key_pem=org.crm.config.private_key_pem,
        max_response_bytes=200,
    )
    collections.create(org.crm.conn, "Contact", _contacts(5, org.rep.id))
    with SalesforceConnection(small) as conn, pytest.raises(ResponseTooLarge):
        list(query(conn, "SELECT Id, LastName FROM Contact"))


# ---------------------------------------------------------------- writing


def test_collections_send_at_most_200_records_per_call(org: OrgHarness) -> None:
    assert org.fake is not None
    with pytest.raises(RejectedWrite, match="EXCEEDED_ID_LIMIT"):
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": "Contact"}, "LastName": "x"}] * 201,
        }
        org.crm.conn.request("POST", "composite/sobjects", json_body=body, write=True)
    before = org.fake.api_calls("POST")
    results = collections.create(org.crm.conn, "Contact", _contacts(201, org.rep.id))
    assert all(r.success for r in results) and len(results) == 201
    assert org.fake.api_calls("POST") - before == 2


def test_per_record_failures_come_back_in_order(org: OrgHarness) -> None:
    records = [
        {"LastName": "Fine", "OwnerId": org.rep.id},
        {"LastName": "Bad", "Email": "not-an-email"},
        {"LastName": "Read only", "IsDeleted": True},
        {"FirstName": "No last name"},
    ]
    results = collections.create(org.crm.conn, "Contact", records)
    assert [r.code for r in results] == [
        "",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "REQUIRED_FIELD_MISSING",
    ]
    assert isinstance(results[2].error, FieldRejected) and results[2].error.fields == ("IsDeleted",)
    assert "IsDeleted" in results[2].error.suggestion


def test_locked_rows_are_retried_with_jitter(org: OrgHarness) -> None:
    assert org.fake is not None
    org.fake.lock_rows(2)
    (result,) = collections.create(org.crm.conn, "Contact", _contacts(1, org.rep.id))
    assert result.success
    assert len(org.sleeps.waits) == 2 and org.sleeps.waits[0] < org.sleeps.waits[1]


def test_rows_locked_past_the_retries_are_transient_failures(org: OrgHarness) -> None:
    assert org.fake is not None
    org.fake.lock_rows(10)
    (result,) = collections.create(org.crm.conn, "Contact", _contacts(1, org.rep.id))
    assert isinstance(result.error, ServerUnavailable)


def test_upsert_creates_then_updates_and_refuses_several_matches(org: OrgHarness) -> None:
    assert org.fake is not None
    marker = org.crm.marker_field
    (created,) = upsert_many(org.crm.conn, "Contact", marker, [{marker: "k/1", "LastName": "One"}])
    (again,) = upsert_many(org.crm.conn, "Contact", marker, [{marker: "k/1", "LastName": "Uno"}])
    assert created.created and not again.created and created.id == again.id
    # Two records with one key can only come from outside (the field lost "Unique").
    org.fake.org.edit(
        str(collections.create(org.crm.conn, "Contact", [{"LastName": "Two"}])[0].id),
        **{marker: "k/1"},
    )
    (refused, fine) = upsert_many(
        org.crm.conn,
        "Contact",
        marker,
        [{marker: "k/1", "LastName": "Dos"}, {marker: "k/2", "LastName": "Three"}],
    )
    assert isinstance(refused.error, DuplicateValue)
    assert fine.error is None and fine.created


def test_spent_allocation_stops_writes_until_usage_drops(org: OrgHarness) -> None:
    assert org.fake is not None
    side = org.crm.side(org.rep.id, ItemKind.CONTACT)
    side.changes(None, {})
    org.fake.api_limit = org.fake.api_used
    with pytest.raises(RequestLimitExceeded) as stopped:
        side.create(Contact(last_name="Late"), "late")
    assert isinstance(stopped.value, ServerUnavailable)
    assert org.crm.conn.writes_stopped
    calls = len(org.fake.calls)
    with pytest.raises(RequestLimitExceeded):
        collections.create(org.crm.conn, "Contact", _contacts(1, org.rep.id))
    assert len(org.fake.calls) == calls  # refused here, never sent
    org.fake.api_limit = 1_000_000  # the rolling window moved on
    usage = daily_api_usage(org.crm.conn)
    assert usage.left > 0 and not org.crm.conn.writes_stopped
    assert org.crm.usage is not None and org.crm.usage.limit == 1_000_000
    assert side.create(Contact(last_name="Late"), "late").record.last_name == "Late"  # type: ignore[union-attr]


def test_a_quoted_literal_cannot_escape_its_string(org: OrgHarness) -> None:
    name = "O'Brien \\ x"
    collections.create(org.crm.conn, "Contact", [{"LastName": name, "OwnerId": org.rep.id}])
    sneaky = quote("' OR Id != null")
    assert list(query(org.crm.conn, f"SELECT Id FROM Contact WHERE LastName = {sneaky}")) == []
    exact = quote(name)
    assert len(list(query(org.crm.conn, f"SELECT Id FROM Contact WHERE LastName = {exact}"))) == 1


def test_a_token_answer_past_its_cap_is_refused_unread() -> None:
    sent: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"access_token": "x" * MAX_TOKEN_RESPONSE})

    config = SalesforceConfig(
        instance_url="https://org.my.salesforce.test",
        client_id="app",
        flow=AuthFlow.CLIENT_CREDENTIALS,
        client_secret="secret",
    )
    with (
        httpx.Client(transport=httpx.MockTransport(endpoint)) as client,
        pytest.raises(ResponseTooLarge, match="the Salesforce token endpoint"),
    ):
        TokenSource(config, client).token()
    assert len(sent) == 1
