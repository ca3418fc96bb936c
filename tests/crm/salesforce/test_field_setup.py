"""`create_marker_fields` (`crmsync setup salesforce --create-fields`) against the fake:
the Tooling API creates what is missing, a permission set lets the integration user see
and edit it, and a second run changes nothing."""

from __future__ import annotations

import dataclasses

import pytest

from crmsync.crm.salesforce.errors import ConfigurationProblem, FieldRejected
from crmsync.crm.salesforce.field_setup import PERMISSION_SET, create_marker_fields
from crmsync.domain.records import ItemKind
from tests.crm.contract import contact
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.harness import OrgHarness, fake_harness

TOOLING = "/services/data/v62.0/tooling/sobjects/CustomField"


def fresh_org() -> OrgHarness:
    return fake_harness(org=FakeOrg(marker_fields=False))


def live_rows(org: FakeOrg, sobject: str) -> list[dict]:
    return [r for r in org.rows[sobject].values() if not r["IsDeleted"]]


def test_a_fresh_org_gets_both_fields_and_the_user_access_to_them() -> None:
    harness = fresh_org()
    try:
        assert harness.fake is not None
        org, crm = harness.fake.org, harness.crm
        with pytest.raises(ConfigurationProblem):
            crm.require_marker("Contact")

        steps = create_marker_fields(crm)

        assert [(s.name, s.created) for s in steps] == [
            ("Contact.CrmSync_Key__c", True),
            ("Event.CrmSync_Key__c", True),
            (f"permission set {PERMISSION_SET}", True),
            ("field access", True),
            (f"permission set {PERMISSION_SET} assigned", True),
        ]
        contact_field = crm.describe.get("Contact").fields["CrmSync_Key__c"]  # type: ignore[union-attr]
        assert contact_field.external_id and contact_field.unique
        crm.require_marker("Event")
        (assignment,) = live_rows(org, "PermissionSetAssignment")
        assert org.rows["User"][assignment["AssigneeId"]]["Username"] == "integration@example.com"
        grants = {(p["Field"], p["PermissionsEdit"]) for p in live_rows(org, "FieldPermissions")}
        assert grants == {("Contact.CrmSync_Key__c", True), ("Event.CrmSync_Key__c", True)}
        # The marker now does its work: a repeated create finds the first one.
        side = crm.side(harness.rep.id, ItemKind.CONTACT)
        first = side.create(contact(), "m1")
        assert side.create(dataclasses.replace(contact(), title="x"), "m1").id == first.id
    finally:
        harness.close()


def test_a_second_run_changes_nothing() -> None:
    harness = fresh_org()
    try:
        assert harness.fake is not None
        create_marker_fields(harness.crm)
        tooling = harness.fake.api_calls("POST", TOOLING)
        rows = {s: len(harness.fake.org.rows[s]) for s in ("FieldPermissions", "PermissionSet")}

        steps = create_marker_fields(harness.crm)

        assert not any(s.created for s in steps), steps
        assert harness.fake.api_calls("POST", TOOLING) == tooling
        assert {s: len(harness.fake.org.rows[s]) for s in rows} == rows
    finally:
        harness.close()


def test_a_field_made_without_access_is_found_and_granted() -> None:
    harness = fresh_org()
    try:
        assert harness.fake is not None
        body = {
            "FullName": "Contact.CrmSync_Key__c",
            "Metadata": {"type": "Text", "length": 255, "label": "CrmSync Key"},
        }
        answer = harness.crm.conn.request(
            "POST", "tooling/sobjects/CustomField", json_body=body, write=True
        )
        assert answer.status == 201
        with pytest.raises(ConfigurationProblem):  # there, but not for the integration user
            harness.crm.require_marker("Contact")

        steps = create_marker_fields(harness.crm)

        assert steps[0].detail == "already there (hidden from the integration user)"
        harness.crm.require_marker("Contact")
        # The test's own, Contact's (refused as a duplicate) and Event's.
        assert harness.fake.api_calls("POST", TOOLING) == 3
    finally:
        harness.close()


def test_a_refused_field_is_an_error_naming_it() -> None:
    harness = fake_harness(org=FakeOrg(marker_fields=False, marker_field="Bad-Name__c"))
    try:
        harness.crm.marker_field = "Bad-Name__c"
        with pytest.raises(FieldRejected, match=r"Contact\.Bad-Name__c.*INVALID_FIELD"):
            create_marker_fields(harness.crm)
    finally:
        harness.close()
