"""The status pages tell the truth: held deletions and failing items, the last successful
cycle, error counts linked to the report; they scale (search, paging, names) and label
the chart; the rep's page pages its activity and names its items."""

from __future__ import annotations

import datetime as dt
import re

from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import AuditEntry, ErrorEntry, ErrorType, Side
from tests.admin.web.conftest import Console
from tests.admin.web.seeding import stamp_cycle

# Any instant will do: the pages measure "ago" from the service's clock.
DASH = "\N{EN DASH}"  # between a page's first and last line number
NOW = dt.datetime(2031, 3, 4, 15, 30, tzinfo=dt.UTC)


def _cycle(console: Console, rep_id: str, started: dt.datetime, error: str | None = None) -> None:
    stamp_cycle(console.service.store, rep_id, started, error)


def _error(rep_id: str, at: dt.datetime, item: str | None, error_type: ErrorType) -> ErrorEntry:
    return ErrorEntry(
        rep_id, ItemKind.CONTACT, item, "read from mail server", error_type, "unreadable", "fix", at
    )


def test_held_deletions_and_failing_items_show_on_the_list_and_the_rep_page(
    console: Console,
) -> None:
    service = console.service
    service.clock = lambda: NOW
    held = service.crm.create_user("hal@example.com", "Hal Held")
    failing = service.crm.create_user("fay@example.com", "Fay Failing")
    fine = service.crm.create_user("fin@example.com", "Fin Fine")
    started = NOW - dt.timedelta(minutes=10)
    for user in (held, failing, fine):
        _cycle(console, user.id, started)
    store = service.store
    store.record_error(_error(held.id, started, None, ErrorType.MASS_DELETE))
    for n in range(200):
        store.record_error(
            _error(failing.id, started, f"/fay/CRM_Sync/{n}.vcf", ErrorType.MALFORMED_ITEM)
        )
    # An older cycle's failure is not failing now.
    store.record_error(
        _error(fine.id, started - dt.timedelta(hours=1), "/fin/x.vcf", ErrorType.MALFORMED_ITEM)
    )
    csrf = console.sign_in("manager")

    listing = console.client.get("/status").text
    rows = {
        m[1]: m[2]
        for m in re.finditer(
            r'<tr[^>]*>\s*<td data-label="Rep"><a href="/status/([^"]+)">(.*?)</tr>', listing, re.S
        )
    }
    assert "Deletions held" in rows["hal%40example.com"]
    assert 'action="/status/hal%40example.com/confirm-deletes"' in rows["hal%40example.com"]
    assert "200 items failing" in rows["fay%40example.com"]
    assert "confirm-deletes" not in rows["fay%40example.com"]
    assert "failing" not in rows["fin%40example.com"] and "held" not in rows["fin%40example.com"]
    # Each rep's error count links to the report filtered to the rep.
    assert '<a class="error-count" href="/errors?rep=fay%40example.com">200</a>' in listing
    assert '<a class="error-count" href="/errors?rep=fin%40example.com">1</a>' in listing

    page = console.client.get("/status/hal@example.com").text
    assert "Needs attention: Deletions held" in page
    assert (
        'action="/status/hal%40example.com/confirm-deletes"' in page and "Confirm deletions" in page
    )
    confirmed = console.client.post(
        "/status/hal@example.com/confirm-deletes", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert confirmed.status_code == 303
    assert store.deletes_confirmed(held.id)
    after = console.client.get(confirmed.headers["location"]).text
    assert "Deletions confirmed" in after and ">Confirm deletions</button>" not in after
    assert "200 items failing" in console.client.get("/status/fay@example.com").text


def test_the_last_successful_cycle_shows_beside_the_last_activity(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    ok = service.crm.create_user("ok@example.com", "Olga")
    broken = service.crm.create_user("no@example.com", "Nils")
    _cycle(console, ok.id, NOW - dt.timedelta(minutes=4))  # finished 3 minutes ago
    _cycle(console, broken.id, NOW - dt.timedelta(minutes=2), error="server unreachable")
    console.sign_in("manager")
    page = console.client.get("/status").text
    cell = re.search(r'class="last-successful-cycle">(.*?)</td>', page, re.S)
    assert cell, page
    finished = (NOW - dt.timedelta(minutes=3)).isoformat()
    assert f'<time datetime="{finished}" data-local>' in cell[1]
    assert "(3 min ago)" in cell[1]
    assert "Last sync activity (last record written)" in page


def test_the_rep_page_links_its_errors_and_its_connection_test(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    rep = service.crm.create_user("ann@example.com", "Ann")
    _cycle(console, rep.id, NOW - dt.timedelta(minutes=5))
    console.sign_in("manager")
    page = console.client.get("/status/ann@example.com").text
    assert '<td id="last-error">none</td>' in page  # not in the error colour
    assert 'href="/errors?rep=ann%40example.com"' in page
    test_link = 'href="/connection-test?email=ann%40example.com"'
    assert test_link in page
    form = console.client.get("/connection-test?email=ann%40example.com").text
    assert 'value="ann@example.com"' in form


def test_the_reps_list_is_searched_paged_and_names_each_rep(console: Console) -> None:
    crm = console.service.crm
    for n in range(120):
        crm.create_user(f"rep{n:03}@example.com", f"Rep {n:03}")
    crm.create_user("zoe@example.com", "Zoë Zimmermann")
    console.sign_in("manager")
    first = console.client.get("/status").text
    assert first.count('data-label="Rep"') == 50
    assert (
        f"1{DASH}50 of 121 reps" in first and "Rep 000" in first and "rep000@example.com" in first
    )
    third = console.client.get("/status?page=3").text
    assert f"101{DASH}121 of 121 reps" in third and third.count('data-label="Rep"') == 21
    found = console.client.get("/status?q=zimmer").text
    assert found.count('data-label="Rep"') == 1 and "zoe@example.com" in found
    assert f"1{DASH}1 of 1 reps" in found


def test_the_chart_has_axes_and_hour_labels(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    service.store.record_synced(ItemKind.CONTACT, 12, at=NOW - dt.timedelta(hours=2))
    console.sign_in("manager")
    page = console.client.get("/status").text
    chart = page.split('<svg class="chart"')[1].split("</svg>")[0]
    assert chart.count('class="axis"') == 2
    hours = re.findall(r'class="tick hour"[^>]*>(\d\d:00)<', chart)
    assert len(hours) >= 4 and hours[-1] == "15:00"
    assert ">12</text>" in chart and ">0</text>" in chart
    assert "hour (UTC)" in chart and "records" in chart


def test_the_rep_page_pages_its_activity_and_names_the_items(console: Console) -> None:
    service = console.service
    service.clock = lambda: NOW
    rep = service.crm.create_user("ann@example.com", "Ann")
    stored = service.crm.create_contact(rep.id, Contact("Ada", "Lovelace", email="ada@example.org"))
    entries = [
        AuditEntry(
            rep.id,
            ItemKind.CONTACT,
            stored.id if n % 2 else None,
            None if n % 2 else f"/ann%40example.com/CRM_Sync/card%20{n}.vcf",
            "create",
            Side.MAIL,
            "new in the CRM",
            NOW - dt.timedelta(minutes=n),
        )
        for n in range(120)
    ]
    service.store.record_audit(entries)
    console.sign_in("manager")
    page = console.client.get("/status/ann@example.com").text
    activity = page.split('id="activity-list"')[1].split("</table>")[0]
    assert activity.count("<tr><td") == 50
    assert f"1{DASH}50 of 120 entries" in page
    assert "Ada Lovelace" in activity and "card 2.vcf" in activity
    assert stored.id not in activity and "%40" not in activity
    last = console.client.get("/status/ann@example.com?page=3").text
    assert f"101{DASH}120 of 120 entries" in last
