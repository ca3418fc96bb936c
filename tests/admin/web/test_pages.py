"""The console's forms without a browser: what they save, refuse and show."""

from __future__ import annotations

from dataclasses import replace

from crmsync.domain.settings import SyncConfig
from tests.admin.web.conftest import Console


def config_form(csrf: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "action": "save",
        "original": "",
        "name": "Germany",
        "active": "on",
        "users": "ann@example.com",
        "contacts_direction": "both",
        "contacts_conflict": "crm_wins",
        "contacts_ownership": "users_records",
        "filters": "mailing_address.country equals DE",
        "mappings": "description=",
        "events_direction": "mail_to_crm",
        "events_conflict": "mail_wins",
        "events_selection": "all",
        "events_window": "last_n_days",
        "events_window_days": "90",
        "events_sync_series": "on",
    }
    form.update(fields)
    return form


def test_a_configuration_is_created_edited_previewed_and_deleted(console: Console) -> None:
    console.service.crm.create_user("ann@example.com", "Ann")
    csrf = console.sign_in("manager")
    created = console.client.post("/configurations", data=config_form(csrf), follow_redirects=False)
    assert created.status_code == 303 and "saved=Germany" in created.headers["location"]
    config = console.service.store.config("Germany")
    assert config is not None and config.events.window_days == 90
    assert config.contacts.filters[0].value == "DE" and not config.events.sync_private
    assert config.contacts.field_mappings[0].crm_field == ""

    page = console.client.get("/configurations/Germany")
    assert "mailing_address.country equals DE" in page.text and 'value="90"' in page.text

    bad = console.client.post(
        "/configurations",
        data=config_form(csrf, original="Germany", events_window_days="500"),
    )
    assert bad.status_code == 422 and "180" in bad.text
    unknown = console.client.post(
        "/configurations", data=config_form(csrf, original="Germany", users="ghost@example.com")
    )
    assert unknown.status_code == 422 and "ghost@example.com" in unknown.text

    # Preview shows the plan for the assigned rep and saves nothing.
    preview = console.client.post(
        "/configurations", data=config_form(csrf, original="Germany", action="preview", name="X")
    )
    assert preview.status_code == 200 and "ann@example.com" in preview.text
    assert console.service.store.config("X") is None

    renamed = console.client.post(
        "/configurations",
        data=config_form(csrf, original="Germany", name="DACH"),
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    assert [c.name for c in console.service.store.configs()] == ["DACH"]
    deleted = console.client.post(
        "/configurations",
        data={"csrf_token": csrf, "action": "confirm_delete", "original": "DACH"},
        follow_redirects=False,
    )
    assert deleted.status_code == 303 and console.service.store.configs() == []


def test_setup_keeps_the_password_hidden_and_the_error_report_says_when_empty(
    console: Console,
) -> None:
    csrf = console.sign_in("full")
    saved = console.client.post(
        "/setup",
        data={
            "csrf_token": csrf,
            "connection_method": "dav",
            "server_url": "http://127.0.0.1:9/",
            "service_account": "svc@example.com",
            "password": "top secret password",
            "additional_domains": "example.net, example.org",
        },
    )
    assert saved.status_code == 200
    assert "top secret password" not in saved.text
    # Settings the page does not show keep their saved values.
    store = console.service.store
    store.save_org_settings(replace(console.service.org_settings(), mass_delete_percent=25))
    again = console.client.post(
        "/setup",
        data={
            "csrf_token": csrf,
            "connection_method": "dav",
            "server_url": "http://127.0.0.1:9/",
            "service_account": "svc@example.com",
            "additional_domains": "example.net, example.org",
        },
    )
    assert again.status_code == 200
    assert console.service.org_settings().mass_delete_percent == 25
    assert "Service account recognized: no" in saved.text  # nothing listens on port 9
    settings = console.service.org_settings()
    assert settings.additional_domains == ("example.net", "example.org")
    assert console.service.store.get_secret("service_account_password") == "top secret password"
    assert "No sync errors." in console.client.get("/errors").text


def test_the_forms_check_names_and_reach_a_stored_name_with_a_slash(console: Console) -> None:
    csrf = console.sign_in("manager")
    refused = console.client.post(
        "/configurations", data=config_form(csrf, name="EMEA/APAC", users="")
    )
    assert refused.status_code == 422 and "letters, digits, spaces" in refused.text
    assert console.service.store.configs() == []

    console.service.store.save_config(SyncConfig("EMEA/APAC", description="from before"))
    listing = console.client.get("/configurations")
    assert 'href="/configurations/EMEA%2FAPAC"' in listing.text
    page = console.client.get("/configurations/EMEA%2FAPAC")
    assert page.status_code == 200 and "from before" in page.text
    kept = console.client.post(
        "/configurations",
        data=config_form(csrf, original="EMEA/APAC", name="EMEA/APAC", users=""),
        follow_redirects=False,
    )
    assert kept.status_code == 303
    renamed = console.client.post(
        "/configurations",
        data=config_form(csrf, original="EMEA/APAC", name="EMEA and APAC", users=""),
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    assert [c.name for c in console.service.store.configs()] == ["EMEA and APAC"]


def test_the_setup_form_refuses_what_the_api_refuses(console: Console) -> None:
    csrf = console.sign_in("full")
    form = {
        "csrf_token": csrf,
        "connection_method": "dav",
        "server_url": "javascript:alert(1)",
        "service_account": "",
        "password": "top secret password",
    }
    refused = console.client.post("/setup", data=form)
    assert refused.status_code == 422
    assert "server_url: " in refused.text and "http:// or https://" in refused.text
    assert "service_account: " in refused.text
    assert "top secret password" not in refused.text
    # What the admin typed is shown again to correct, not the saved setup.
    assert 'value="javascript:alert(1)"' in refused.text
    assert console.service.org_settings().server_url == ""
    assert console.service.store.get_secret("service_account_password") is None
