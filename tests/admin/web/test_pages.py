"""The console's forms without a browser: what they save, refuse and show."""

from __future__ import annotations

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
        data={"csrf_token": csrf, "action": "delete", "original": "DACH"},
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
    assert "Service account recognized: no" in saved.text  # nothing listens on port 9
    settings = console.service.org_settings()
    assert settings.additional_domains == ("example.net", "example.org")
    assert console.service.store.get_secret("service_account_password") == "top secret password"
    assert "No sync errors." in console.client.get("/errors").text
