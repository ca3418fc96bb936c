"""The console in a real browser (Playwright driving Debian's headless chromium) against
a real `crmsync serve` process and a real Radicale, from sign-in to a reset.

Screenshots of each page go to ``artifacts/screenshots/`` (kept by CI as artifacts).
Skipped when no chromium is installed (`.ci/run` installs Debian's).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crmsync.admin.web.security import MANAGE, Permission, hash_password
from crmsync.crm.builtin import BuiltinCrm
from crmsync.domain.records import Contact
from crmsync.groupware.dav.local_server import free_port
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore
from tests.servers import SERVICE_ACCOUNT, SERVICE_PASSWORD, start_radicale

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
REP = "rita@example.com"
ADMIN_PASSWORD = "a long admin password"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """Radicale, a CRM with one rep and one contact, an admin, and `crmsync serve`."""
    radicale = start_radicale(tmp_path, {REP: "rep-secret"})
    home = tmp_path / "home"
    deployment = Deployment.from_env(home)
    with BuiltinCrm(deployment.crm_url) as crm:
        rep = crm.create_user(REP, "Rita Rep")
        crm.create_contact(rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
    with StateStore(deployment.state_url, deployment.secrets_key_path) as store:
        store.create_admin(
            "admin", hash_password(ADMIN_PASSWORD), {*MANAGE, Permission.VIEW_ALL_DATA}
        )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from crmsync.admin.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--interval",
            "1",
        ],
        env={**os.environ, "CRMSYNC_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield url, tmp_path, radicale.url
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
        radicale.stop()
        # A clean shutdown: the cycles in flight finished, the process said so and left.
        assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
        assert SERVICE_PASSWORD not in (tmp_path / "serve.log").read_text()
        assert ADMIN_PASSWORD not in (tmp_path / "serve.log").read_text()


def test_an_admin_sets_up_syncs_finds_an_error_and_resets(served) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, tmp_path, dav_url = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

        page.goto(url + "/setup")
        expect(page).to_have_url(re.compile(r"/login"))
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        shot("01-sign-in")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/setup$"))

        page.fill("#server_url", dav_url)
        page.fill("#service_account", SERVICE_ACCOUNT)
        page.fill("#password", SERVICE_PASSWORD)
        page.click("text=Save and check")
        expect(page.locator("#service-account-check h2")).to_contain_text("yes")
        shot("02-setup")

        page.click("text=Connection test")
        page.fill("#email", REP)
        page.click("text=Run the test")
        expect(page.locator("#connection-result h2")).to_have_text("All steps passed")
        shot("03-connection-test")

        page.click("text=Configurations")
        page.click("text=New configuration")
        page.fill("#name", "Sales")
        page.check(f"input[name=users][value='{REP}']")
        page.check("input[name=active]")
        page.click("button[value=preview]")
        expect(page.locator("#preview")).to_contain_text(REP)
        shot("04-configuration-preview")
        page.click("button[value=save]")
        expect(page.locator("[role=status]")).to_contain_text("Saved")
        shot("05-configurations")

        rep_page = url + "/status/" + REP
        _until(page, rep_page, lambda: _flows(page) == {"In sync"})
        shot("06-rep-in-sync")
        scraped = httpx.get(url + "/metrics").text
        assert re.search(r'crmsync_cycles_total\{outcome="ok"\} [1-9]', scraped), scraped
        assert 'crmsync_items_synced_total{direction="to_mail",kind="contact"} 1.0' in scraped
        page.goto(url + "/status")
        expect(page.locator("main")).to_contain_text("Records synced in last 24 hours")
        shot("07-org-status")

        # A malformed item in the rep's contacts folder ends up in the error report.
        broken = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:broken-1\r\nEND:VCARD\r\n"
        put = httpx.put(
            f"{dav_url}/{REP}/CRM_Sync/broken-1.vcf",
            content=broken,
            headers={"Content-Type": "text/vcard"},
            auth=(SERVICE_ACCOUNT, SERVICE_PASSWORD),
        )
        if put.status_code == 400:  # Radicale refuses it itself: use one it stores
            broken = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:broken-1\r\nFN:\r\nN:;;;;\r\nEND:VCARD\r\n"
            put = httpx.put(
                f"{dav_url}/{REP}/CRM_Sync/broken-1.vcf",
                content=broken,
                headers={"Content-Type": "text/vcard"},
                auth=(SERVICE_ACCOUNT, SERVICE_PASSWORD),
            )
        assert put.status_code in (201, 204), put.text
        _until(page, url + "/errors", lambda: page.locator("#error-report").count() > 0)
        expect(page.locator("#error-report")).to_contain_text("broken-1")
        shot("08-error-report")

        page.goto(rep_page)
        page.click("text=Reset sync")
        expect(page.locator("#reset-status")).to_have_text(
            re.compile("Marked for reset|Reset in progress|none")
        )
        shot("09-reset-marked")
        _until(
            page,
            rep_page,
            lambda: (
                page.locator("#reset-status").inner_text() == "none" and _flows(page) == {"In sync"}
            ),
        )
        shot("10-after-reset")
        browser.close()

    # No duplicates: one contact on each side after the reset.
    listing = httpx.request(
        "PROPFIND",
        f"{dav_url}/{REP}/CRM_Sync/",
        headers={"Depth": "1"},
        auth=(SERVICE_ACCOUNT, SERVICE_PASSWORD),
    )
    assert listing.text.count(".vcf</") == 2  # Ada and the broken card
    with BuiltinCrm(Deployment.from_env(tmp_path / "home").crm_url) as crm:
        assert len(crm.list_contacts()) == 1


def _flows(page) -> set[str]:
    return {cell.strip() for cell in page.locator("td.flow").all_inner_texts()}


def _until(page, url: str, condition, timeout: float = 60) -> None:
    """Reload ``url`` until ``condition()`` holds (the scheduler runs every second)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never reached the expected state")
        time.sleep(0.5)
