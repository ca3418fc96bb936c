"""An org whose CRM is Salesforce, through the service: the CRM section, the encrypted
credential, one shared `SalesforceCrm` per org, and the configuration errors an org's
setup can cause (a missing marker field, an incomplete setup)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crmsync.crm.builtin import BuiltinCrm
from crmsync.crm.salesforce import SalesforceCrm
from crmsync.domain.crm_settings import CrmKind, CrmSettings
from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType
from crmsync.service.crms import SALESFORCE_SECRET
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from crmsync.store import schema
from tests.crm.salesforce.fake_org import FakeOrg
from tests.servers import DavServerInfo, running_dav_server
from tests.service.salesforce_world import SalesforceWorld, fake_crm_settings, fake_salesforce
from tests.service.worlds import BOTH_WAYS


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[DavServerInfo]:
    with running_dav_server("radicale", tmp_path) as info:
        yield info


def test_an_org_syncs_the_builtin_crm_until_salesforce_is_set_up(tmp_path: Path) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        assert service.crm_settings().kind is CrmKind.BUILTIN
        assert isinstance(service.crm, BuiltinCrm)
        assert service.crm_problems() == []


def test_the_services_of_an_org_share_one_salesforce_crm_and_its_feed(tmp_path: Path) -> None:
    fake, pem, _ = fake_salesforce("rep@example.com")
    deployment = Deployment.from_env(tmp_path)
    try:
        with SyncService(deployment) as first:
            first.configure_crm(fake_crm_settings(fake.url, fake.client_id), pem)
            with SyncService(deployment) as second:
                assert isinstance(first.crm, SalesforceCrm)
                assert second.crm is first.crm
                assert second.crm.feed("Contact") is first.crm.feed("Contact")
            # The second service's close left the shared CRM open for the first.
            assert first.crm.get_user_by_email("rep@example.com") is not None
        with SyncService(Deployment.from_env(tmp_path / "other")) as other:
            other.configure_crm(fake_crm_settings(fake.url, fake.client_id), pem)
            with SyncService(deployment) as again:
                assert other.crm is not again.crm  # another org, another CRM
    finally:
        fake.stop()


def test_the_key_is_stored_encrypted_and_a_new_one_reopens_the_crm(tmp_path: Path) -> None:
    fake, pem, _ = fake_salesforce("rep@example.com")
    try:
        with SyncService(Deployment.from_env(tmp_path)) as service:
            service.configure_crm(fake_crm_settings(fake.url, fake.client_id), pem)
            with service.store.engine.connect() as conn:
                stored = b"".join(conn.execute(select(schema.secrets.c.token)).scalars())
                settings = conn.execute(select(schema.crm_settings.c.settings)).scalar_one()
            assert b"PRIVATE KEY" not in stored
            assert "PRIVATE KEY" not in str(settings)
            assert service.store.get_secret(SALESFORCE_SECRET) == pem
            before = service.crm
            service.open_cycle("rep")  # a cycle checks the CRM against the saved setup
            assert service.crm is before  # nothing changed: the same CRM and feed
            service.store.set_secret(SALESFORCE_SECRET, pem + "\n")
            service.open_cycle("rep")
            assert service.crm is not before
    finally:
        fake.stop()


def test_salesforce_contacts_and_events_sync_both_ways_through_the_service(
    radicale: DavServerInfo, tmp_path: Path
) -> None:
    world = SalesforceWorld(radicale, tmp_path / "home", BOTH_WAYS)
    try:
        world.org.create(
            "Contact",
            {
                "LastName": "Lovelace",
                "FirstName": "Ada",
                "Email": "ada@example.org",
                "OwnerId": world.rep_id,
            },
        )
        report = world.sync()
        assert report.crm_calls is not None and report.crm_calls > 0
        assert [c.last_name for c in world.mail_records(ItemKind.CONTACT)] == ["Lovelace"]  # type: ignore[attr-defined]
        assert world.sync().writes == 0
        day_ago = world.service.clock() - dt.timedelta(hours=23)
        calls, cycles = world.service.store.api_calls_since(day_ago)
        assert cycles == 2 and calls > 0
    finally:
        world.close()


def test_a_missing_marker_field_is_a_configuration_row_saying_how_to_create_it(
    radicale: DavServerInfo, tmp_path: Path
) -> None:
    org = FakeOrg(marker_field="Other_Key__c")
    world = SalesforceWorld(radicale, tmp_path / "home", BOTH_WAYS, org=org)
    try:
        report = world.sync_allowing_errors()
        assert report.error is not None and "CrmSync_Key__c" in report.error
        [row] = world.service.store.errors(rep_id=world.rep.id)
        assert row.error_type is ErrorType.CONFIGURATION
        assert "External ID" in row.suggestion and "Connect Salesforce" in row.suggestion
    finally:
        world.close()


def test_an_incomplete_salesforce_setup_stops_the_cycle_with_what_is_missing(
    radicale: DavServerInfo, tmp_path: Path
) -> None:
    world = SalesforceWorld(radicale, tmp_path / "home", BOTH_WAYS)
    try:
        world.service.store.delete_secret(SALESFORCE_SECRET)  # seen by the next cycle
        report = world.sync_allowing_errors()
        assert report.error is not None and "private key" in report.error
        [row] = world.service.store.errors(rep_id=world.rep.id)
        assert row.error_type is ErrorType.CONFIGURATION
        assert "crmsync setup salesforce" in row.suggestion
    finally:
        world.close()


def test_the_default_crm_section_reads_back_as_saved(tmp_path: Path) -> None:
    with SyncService(Deployment.from_env(tmp_path)) as service:
        wanted = CrmSettings(CrmKind.SALESFORCE, "https://acme.my.salesforce.com", sandbox=True)
        service.configure_crm(wanted)
        assert service.crm_settings() == wanted
        assert service.store.get_secret(SALESFORCE_SECRET) is None
