"""The Setup page and the API with Google Workspace: the key pasted in its own box,
stored encrypted and never shown back, the Workspace domains required, a broken key
refused beside its field without being quoted."""

from __future__ import annotations

import json

from crmsync.domain.settings import ConnectionMethod
from crmsync.service.mailboxes import SERVICE_PASSWORD
from tests.admin.web.conftest import Console
from tests.groupware.google.fake_google import service_account_key


def _form(csrf: str, key: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "connection_method": "google",
        "google_key": key,
        "additional_domains": "example.com, example.org",
        "google_event_color": "11",
        **fields,
    }


def test_google_is_offered_and_its_key_is_stored_never_shown(console: Console) -> None:
    csrf = console.sign_in("full")
    page = console.client.get("/setup").text
    assert 'value="google"' in page and "not available" not in page
    key = service_account_key()
    posted = console.client.post("/setup", data=_form(csrf, key))
    assert posted.status_code == 200, posted.text
    saved = console.service.org_settings()
    assert saved.connection_method is ConnectionMethod.GOOGLE
    assert saved.additional_domains == ("example.com", "example.org")
    assert saved.google_event_color == "11"
    assert console.service.store.get_secret(SERVICE_PASSWORD) == key
    private_line = json.loads(key)["private_key"].splitlines()[1]
    for shown in (posted.text, console.client.get("/setup").text):
        assert private_line not in shown and "stored — leave empty to keep it" in shown
    api = console.client.get("/api/v1/setup", headers=console.bearer("full")).json()
    assert api["google_event_color"] == "11" and api["password_stored"] is True
    assert private_line not in json.dumps(api)


def test_a_broken_key_or_no_domain_is_refused_beside_its_field(console: Console) -> None:
    csrf = console.sign_in("full")
    key = service_account_key()
    not_a_service_account = json.dumps({**json.loads(key), "type": "authorized_user"})
    refused = console.client.post(
        "/setup", data=_form(csrf, not_a_service_account, additional_domains="")
    )
    assert refused.status_code == 422
    assert "not a service account key" in refused.text
    assert "Workspace&#39;s email domain" in refused.text or "Workspace's email domain" in (
        refused.text
    )
    assert json.loads(key)["private_key"].splitlines()[1] not in refused.text
    assert console.service.store.get_secret(SERVICE_PASSWORD) is None
