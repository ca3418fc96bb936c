"""The connection test's CRM steps against the fake Salesforce: each step's pass, failure
and fix, and the whole test through the console's view with a real DAV server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crmsync.admin.web.views import connection_test
from crmsync.service import crm_connection_test as steps
from crmsync.service.crm_connection_test import run_crm_connection_test
from crmsync.transport import throttling
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.fake_server import FakeSalesforce, new_key_pair
from tests.crm.salesforce.harness import key_pair
from tests.servers import running_dav_server
from tests.service.salesforce_world import SalesforceWorld, fake_crm_settings, fake_salesforce
from tests.service.worlds import BOTH_WAYS

REP = "rita@example.com"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    server, _, _ = fake_salesforce(REP)
    yield server
    server.stop()


def run(fake: FakeSalesforce, email: str = REP, **overrides: object) -> dict[str, object]:
    settings = fake_crm_settings(fake.url, **{"client_id": fake.client_id, **overrides})
    return {s.name: s for s in run_crm_connection_test(settings, key_pair()[0], email)}


def test_every_step_passes_against_a_well_set_up_org(fake: FakeSalesforce) -> None:
    found = run(fake)
    assert list(found) == list(steps.CRM_STEP_NAMES)
    assert all(step.status == "passed" for step in found.values()), found  # type: ignore[attr-defined]
    usage = found[steps.API_USAGE].detail  # type: ignore[attr-defined]
    assert "of the org's 100,000 daily API calls are used" in usage
    assert "Rita Rep" in found[steps.REP_USER].detail  # type: ignore[attr-defined]


def test_a_missing_marker_says_how_to_create_it_and_the_other_steps_still_run() -> None:
    server, _, _ = fake_salesforce(REP, org=FakeOrg(marker_field="Other__c"))
    try:
        found = run(server)
    finally:
        server.stop()
    contact = found[steps.CONTACT_MARKER]
    assert contact.status == "failed"  # type: ignore[attr-defined]
    assert "External ID and Unique" in contact.fix and "CrmSync_Key__c" in contact.fix  # type: ignore[attr-defined]
    assert "External ID" not in found[steps.EVENT_MARKER].fix  # type: ignore[attr-defined]
    assert found[steps.REP_USER].status == "passed"  # type: ignore[attr-defined]


def test_missing_object_permissions_fail_and_shared_activities_is_reported() -> None:
    org = FakeOrg(shared_activities=False)
    org.read_only_objects.add("Event")
    server, _, _ = fake_salesforce(REP, org=org)
    try:
        found = run(server)
    finally:
        server.stop()
    access = found[steps.OBJECT_ACCESS]
    assert access.status == "failed" and "Event: no Create, Edit, Delete" in access.detail  # type: ignore[attr-defined]
    assert "Contact:" not in access.detail and "Modify All" in access.fix  # type: ignore[attr-defined]
    shared = found[steps.SHARED_ACTIVITIES]
    assert shared.status == "passed" and shared.detail.startswith("Off")  # type: ignore[attr-defined]


def test_a_refused_token_stops_the_test_without_showing_the_key(fake: FakeSalesforce) -> None:
    settings = fake_crm_settings(fake.url, fake.client_id)
    other_key = new_key_pair()[0]  # not the key of the app's certificate
    found = run_crm_connection_test(settings, other_key, REP)
    assert found[0].status == "failed" and "PRIVATE" not in found[0].detail + found[0].fix
    assert [s.status for s in found[1:]] == ["not_run"] * (len(steps.CRM_STEP_NAMES) - 1)
    wrong_app = run(fake, client_id="someone-else")
    assert wrong_app[steps.TOKEN].status == "failed"  # type: ignore[attr-defined]


def test_an_api_version_the_org_lacks_names_the_newest(fake: FakeSalesforce) -> None:
    found = run(fake, api_version="99.0")
    version = found[steps.API_VERSION]
    assert version.status == "failed" and "62.0" in version.fix  # type: ignore[attr-defined]
    assert found[steps.REP_USER].status == "not_run"  # type: ignore[attr-defined]


def test_a_spent_allocation_and_an_unknown_rep_fail_with_a_fix(fake: FakeSalesforce) -> None:
    # The describes and /limits spend the rest.
    fake.api_used = fake.api_limit - len(steps.WRITTEN_OBJECTS + steps.READ_OBJECTS) - 1
    found = run(fake, email="ghost@example.com")
    assert found[steps.API_USAGE].status == "failed"  # type: ignore[attr-defined]
    assert "writes until usage drops" in found[steps.API_USAGE].fix  # type: ignore[attr-defined]
    fake.api_used = 0
    throttling.use_limiters(None)  # a new process: the org's hold after the refusal is gone
    found = run(fake, email="ghost@example.com")
    rep = found[steps.REP_USER]
    assert rep.status == "failed" and "Salesforce user with this email" in rep.fix  # type: ignore[attr-defined]


def test_the_console_runs_the_mail_steps_then_the_crm_steps(tmp_path: Path) -> None:
    with running_dav_server("radicale", tmp_path) as server:
        world = SalesforceWorld(server, tmp_path / "home", BOTH_WAYS)
        try:
            result = connection_test(world.service, server.email)
            names = [step["name"] for step in result["steps"]]
            assert names[-len(steps.CRM_STEP_NAMES) :] == list(steps.CRM_STEP_NAMES)
            assert result["passed"] is True, result
            world.service.configure_crm(replace(world.service.crm_settings(), api_version="99.0"))
            assert connection_test(world.service, server.email)["passed"] is False
        finally:
            world.close()
