"""The Setup page's mail-server section: every org setting on the page, none lost by a
save, problems beside their fields, and one fieldset per connection method."""

from __future__ import annotations

import dataclasses
import re

from crmsync.domain.settings import OrgSettings
from tests.admin.web.conftest import Console
from tests.admin.web.forms import form_fields

SAVED = {
    "server_url": "http://127.0.0.1:9/",
    "service_account": "svc@example.com",
    "mass_delete_percent": 25,
    "mass_delete_count": 80,
    "mass_delete_minimum": 7,
    "audit_retention_days": 90,
    "overdue_after_minutes": 20,
    "notify_attendees_on_crm_edits": True,
}


def _saved_setup(console: Console) -> OrgSettings:
    settings = dataclasses.replace(OrgSettings(), **SAVED)
    console.service.store.save_org_settings(settings)
    console.service.store.set_secret("service_account_password", "top secret password")
    return settings


def test_every_org_setting_is_on_the_page_and_saving_it_unchanged_keeps_each(
    console: Console,
) -> None:
    settings = _saved_setup(console)
    console.sign_in("full")
    page = console.client.get("/setup").text
    for field in dataclasses.fields(OrgSettings):
        assert f'name="{field.name}"' in page, field.name
    posted = console.client.post("/setup", data=_as_dict(form_fields(page, "/setup")))
    assert posted.status_code == 200, posted.text
    assert console.service.org_settings() == settings


def test_a_post_without_a_setting_keeps_its_saved_value(console: Console) -> None:
    settings = _saved_setup(console)
    csrf = console.sign_in("full")
    posted = console.client.post(
        "/setup",
        data={
            "csrf_token": csrf,
            "connection_method": "dav",
            "server_url": "http://127.0.0.1:9/",
            "service_account": "svc@example.com",
        },
    )
    assert posted.status_code == 200, posted.text
    assert console.service.org_settings() == settings


def test_the_thresholds_are_saved_from_the_page_and_refused_beside_their_fields(
    console: Console,
) -> None:
    _saved_setup(console)
    console.sign_in("full")
    fields = form_fields(console.client.get("/setup").text, "/setup")
    form = _as_dict(fields)
    unticked = [f for f in fields if f != ("notify_attendees_on_crm_edits", "true")]
    changed = console.client.post(
        "/setup",
        data={
            **_as_dict(unticked),
            "mass_delete_percent": "40",
            "audit_retention_days": "365",
            "overdue_after_minutes": "45",
        },
    )
    assert changed.status_code == 200
    saved = console.service.org_settings()
    assert (saved.mass_delete_percent, saved.audit_retention_days) == (40, 365)
    assert saved.overdue_after_minutes == 45
    # The box unticked is sent too (a hidden "false" before it): it turns the setting off.
    assert not saved.notify_attendees_on_crm_edits

    refused = console.client.post(
        "/setup",
        data={
            **form,
            "mass_delete_percent": "lots",
            "audit_retention_days": "0",
            "overdue_after_minutes": "1441",
        },
    )
    assert refused.status_code == 422
    assert re.search(r'id="error-mass_delete_percent"[^>]*>[^<]*integer', refused.text)
    assert re.search(r'id="error-audit_retention_days"[^>]*>[^<]*greater than', refused.text)
    assert re.search(r'id="error-overdue_after_minutes"[^>]*>[^<]*less than', refused.text)
    # What the admin typed comes back to correct.
    assert 'value="lots"' in refused.text
    assert console.service.org_settings().mass_delete_percent == 40
    assert console.service.org_settings().overdue_after_minutes == 45


def test_the_overdue_threshold_round_trips_through_the_api_within_its_bounds(
    console: Console,
) -> None:
    _saved_setup(console)
    auth = console.bearer("full")
    body = console.client.get("/api/v1/setup", headers=auth).json()
    assert body.pop("password_stored") is True and body["overdue_after_minutes"] == 20
    saved = console.client.put(
        "/api/v1/setup", json={**body, "overdue_after_minutes": 1440}, headers=auth
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["overdue_after_minutes"] == 1440
    assert console.service.org_settings().overdue_after_minutes == 1440
    for refused_value in (0, 1441, "30"):
        refused = console.client.put(
            "/api/v1/setup", json={**body, "overdue_after_minutes": refused_value}, headers=auth
        )
        assert refused.status_code == 422, refused_value
        assert [p["loc"] for p in refused.json()["detail"]] == [["body", "overdue_after_minutes"]]
    assert console.service.org_settings().overdue_after_minutes == 1440


def test_each_connection_method_has_its_own_fieldset_named_in_its_legend(
    console: Console,
) -> None:
    console.sign_in("full")
    page = console.client.get("/setup").text
    sets = re.findall(
        r'<fieldset data-for="connection_method" data-values="([^"]+)">\s*<legend>([^<]+)',
        page,
    )
    shown = {values: legend for values, legend in sets}
    methods = {value for values in shown for value in values.split()}
    assert methods >= {"dav", "ews", "graph"} and "ews" in shown and "graph" in shown
    assert all("only" in legend for legend in shown.values())
    assert 'id="graph_tenant_id"' in page.split('data-values="graph"')[1].split("</fieldset>")[0]
    assert 'src="/static/console.js"' in page
    assert console.client.get("/static/console.js").status_code == 200


def _as_dict(fields: list[tuple[str, str]]) -> dict[str, str]:
    """The last value of each name, as the server reads a repeated one."""
    return dict(fields)
