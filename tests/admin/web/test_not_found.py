"""An unknown address: a console page for a browser, the JSON problem for the API."""

from __future__ import annotations

from tests.admin.web.conftest import Console

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_browser_gets_a_console_page_for_an_unknown_address(console: Console) -> None:
    console.sign_in("manager")
    response = console.client.get("/no/such/page", headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text and "/no/such/page" in response.text
    assert 'href="/setup"' in response.text  # the console's menu, for the signed-in admin


def test_the_not_found_page_needs_no_sign_in_and_shows_no_menu(console: Console) -> None:
    response = console.client.get("/nothing-here", headers=BROWSER)
    assert response.status_code == 404 and "Page not found" in response.text
    assert 'href="/setup"' not in response.text


def test_the_api_and_non_html_clients_keep_the_json_answer(console: Console) -> None:
    for path, headers in (
        ("/api/v1/nothing", {**BROWSER, **console.bearer("manager")}),
        ("/no/such/page", {"Accept": "application/json"}),
        ("/static/missing.css", {"Accept": "text/css,*/*;q=0.1"}),
    ):
        response = console.client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not Found"}, path


def test_a_pages_own_reason_is_shown(console: Console) -> None:
    csrf = console.sign_in("manager")
    response = console.client.post(
        "/status/ghost@example.com/sign-in",
        data={"csrf_token": csrf, "login": "ghost", "password": "x"},
        headers=BROWSER,
    )
    assert response.status_code == 404
    assert "No CRM user has the email ghost@example.com." in response.text
