"""Configurations of a Salesforce org: the console's member picker lists the org's users
and profiles, and a field mapping to a Contact field the integration user cannot edit
(absent, or not updateable) is refused on save."""

from __future__ import annotations

import pytest

from crmsync.domain.contact_fields import FieldMapping
from crmsync.domain.settings import ContactSettings, SyncConfig
from tests.admin.web.conftest import Console
from tests.crm.salesforce.fake_org import FakeOrg
from tests.crm.salesforce.fake_schema import Spec
from tests.service.salesforce_world import INTEGRATION_USER, fake_crm_settings, fake_salesforce

REP = "rita@example.com"


def mapping(crm_field: str) -> SyncConfig:
    return SyncConfig(
        "Sales", contacts=ContactSettings(field_mappings=(FieldMapping("department", crm_field),))
    )


def test_members_and_custom_fields_come_from_the_org(console: Console) -> None:
    org = FakeOrg(custom_contact_fields={"Region__c": "string"})
    org.schema["Contact"]["Score__c"] = Spec("string", 255, custom=True, updateable=False)
    fake, pem, _ = fake_salesforce(REP, org=org)
    try:
        org.add_profile("Support")
        console.service.configure_crm(fake_crm_settings(fake.url, fake.client_id), pem)
        console.sign_in("full")

        page = console.client.get("/configurations/new").text
        assert REP in page and INTEGRATION_USER in page
        assert "Profile: Sales<" in page and "Profile: Support<" in page

        console.service.save_config(mapping("custom:Region__c"))
        for refused in ("custom:Nope__c", "custom:Score__c"):
            with pytest.raises(ValueError, match=refused):
                console.service.save_config(mapping(refused))
        assert console.service.store.config("Sales").contacts.field_mappings == (
            FieldMapping("department", "custom:Region__c"),
        )
    finally:
        fake.stop()
