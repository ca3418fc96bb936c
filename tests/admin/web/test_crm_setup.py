"""The CRM section of the Setup page and of the API: same rules as the CLI, the key kept
write-only."""

from __future__ import annotations

from crmsync.domain.crm_settings import CrmKind
from crmsync.service.crms import SALESFORCE_SECRET
from tests.admin.web.conftest import Console
from tests.crm.salesforce.harness import key_pair

SALESFORCE = {
    "kind": "salesforce",
    "my_domain_url": "https://acme.my.salesforce.com/",
    "client_id": "3MVG9-consumer-key",
    "username": "integration@acme.com",
}


def test_the_api_saves_the_crm_section_and_never_returns_the_key(console: Console) -> None:
    auth = console.bearer("manager")
    assert console.client.get("/api/v1/setup/crm", headers=auth).json()["kind"] == "builtin"
    pem = key_pair()[0]
    saved = console.client.put(
        "/api/v1/setup/crm", json={**SALESFORCE, "secret": pem}, headers=auth
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["secret_stored"] is True and "secret" not in body
    assert body["my_domain_url"] == "https://acme.my.salesforce.com"
    assert "PRIVATE KEY" not in console.client.get("/api/v1/setup/crm", headers=auth).text
    assert console.service.store.get_secret(SALESFORCE_SECRET) == pem
    # Without a secret the stored one is kept.
    again = console.client.put(
        "/api/v1/setup/crm", json={**SALESFORCE, "sandbox": False}, headers=auth
    )
    assert again.status_code == 200 and console.service.store.get_secret(SALESFORCE_SECRET) == pem
    assert (
        console.client.get("/api/v1/setup/crm", headers=console.bearer("reader")).status_code == 403
    )


def test_the_api_lists_every_problem_and_saves_nothing(console: Console) -> None:
    auth = console.bearer("manager")
    body = {
        "kind": "salesforce",
        "my_domain_url": "http://acme.my.salesforce.com",
        "flow": "jwt_bearer",
        "secret": "not a key",
        "api_version": "latest",
    }
    refused = console.client.put("/api/v1/setup/crm", json=body, headers=auth)
    assert refused.status_code == 422
    fields = {entry["loc"][-1] for entry in refused.json()["detail"]}
    assert fields == {"my_domain_url", "client_id", "username", "secret", "api_version"}
    assert console.service.crm_settings().kind is CrmKind.BUILTIN
    # The fake's plain-http address is allowed on this machine only.
    local = {**SALESFORCE, "my_domain_url": "http://127.0.0.1:8443", "secret": key_pair()[0]}
    assert console.client.put("/api/v1/setup/crm", json=local, headers=auth).status_code == 200


def test_the_setup_page_shows_and_saves_the_crm_section(console: Console) -> None:
    csrf = console.sign_in("full")
    page = console.client.get("/setup")
    assert page.status_code == 200 and 'action="/setup/crm"' in page.text
    form = {
        "csrf_token": csrf,
        "kind": "salesforce",
        "my_domain_url": "https://acme.my.salesforce.com",
        "client_id": "3MVG9-consumer-key",
        "username": "",
        "secret": "top secret consumer secret",
        "flow": "client_credentials",
    }
    saved = console.client.post("/setup/crm", data=form)
    assert saved.status_code == 200, saved.text
    assert "CRM saved" in saved.text and "top secret consumer secret" not in saved.text
    assert "stored — leave empty to keep it" in saved.text
    assert console.service.crm_settings().kind is CrmKind.SALESFORCE
    refused = console.client.post(
        "/setup/crm", data={**form, "my_domain_url": "ftp://acme", "secret": "another secret"}
    )
    assert refused.status_code == 422
    assert "my_domain_url: must start with https://" in refused.text
    assert 'value="ftp://acme"' in refused.text and "another secret" not in refused.text
    assert console.service.crm_settings().my_domain_url == "https://acme.my.salesforce.com"
