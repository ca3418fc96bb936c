"""The error report scales: pages of 200 ("201-400 of 2,143"), a CSV of every row,
totals by rep and by error type, and items by name instead of encoded paths."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest

from crmsync.admin.web import error_pages, views
from crmsync.admin.web.item_names import ItemNames
from crmsync.domain.records import Contact, ItemKind
from crmsync.domain.sync import ErrorEntry, ErrorType
from tests.admin.web.conftest import Console

DASH = "\N{EN DASH}"
AT = dt.datetime(2031, 3, 4, 15, 30, tzinfo=dt.UTC)


def _rows(console: Console) -> None:
    """2,143 rows: 2,000 unreadable cards for Ann, 143 rejected writes for Bob (one about
    a CRM contact)."""
    crm = console.service.crm
    ann = crm.create_user("ann@example.com", "Ann")
    bob = crm.create_user("bob@example.com", "Bob")
    ada = crm.create_contact(bob.id, Contact("Ada", "Lovelace", email="ada@example.org"))
    store = console.service.store
    for n in range(2000):
        store.record_error(
            ErrorEntry(
                ann.id,
                ItemKind.CONTACT,
                f"/ann%40example.com/CRM_Sync/card%20{n}.vcf",
                "read from mail server",
                ErrorType.MALFORMED_ITEM,
                f"unreadable card {n}",
                "fix it",
                AT - dt.timedelta(seconds=n),
            )
        )
    for n in range(143):
        store.record_error(
            ErrorEntry(
                bob.id,
                ItemKind.CONTACT,
                ada.id if n == 0 else f"crm-{n}",
                "create in mail server",
                ErrorType.REJECTED_WRITE,
                f"refused {n}",
                "fix it",
                AT - dt.timedelta(hours=1, seconds=n),
            )
        )


def test_the_report_is_paged_and_totalled(console: Console) -> None:
    _rows(console)
    console.sign_in("full")
    first = console.client.get("/errors").text
    assert f"1{DASH}200 of 2,143 errors" in first
    assert first.count('<td data-label="Time">') == 200
    second = console.client.get("/errors?page=2").text
    assert f"201{DASH}400 of 2,143 errors" in second
    assert 'href="/errors?page=3"' in second and 'href="/errors?page=1"' in second
    by_rep = first.split('id="totals-by-rep"')[1].split("</section>")[0]
    assert re.search(r"ann@example.com</a></th><td>2,000<", by_rep)
    assert re.search(r"bob@example.com</a></th><td>143<", by_rep)
    by_type = first.split('id="totals-by-type"')[1].split("</section>")[0]
    assert re.search(r"malformed item</a></th><td>2,000<", by_type)
    assert re.search(r"rejected write</a></th><td>143<", by_type)
    # Filtered: the totals and the pages follow the filter.
    bob = console.client.get("/errors?rep=bob%40example.com").text
    assert f"1{DASH}143 of 143 errors" in bob


def test_items_are_named_not_shown_as_encoded_paths(console: Console) -> None:
    _rows(console)
    console.sign_in("full")
    page = console.client.get("/errors").text
    items = re.findall(r'<td data-label="Item" class="item"[^>]*>([^<]*)<', page)
    assert "card 0.vcf" in items and not any("%40" in i or "%20" in i for i in items)
    last = console.client.get("/errors?page=11").text
    assert "Ada Lovelace" in re.findall(r'<td data-label="Item" class="item"[^>]*>([^<]*)<', last)


def test_the_csv_export_holds_every_matching_row(console: Console) -> None:
    _rows(console)
    console.sign_in("full")
    exported = console.client.get("/errors.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 2143
    assert rows[0]["item_name"] == "card 0.vcf"
    assert "%40" in rows[0]["item"]  # the id as stored, for support
    only_bob = console.client.get("/errors.csv?rep=bob%40example.com")
    assert len(list(csv.DictReader(io.StringIO(only_bob.text)))) == 143
    # A filter given twice is refused, as the API's export refuses it.
    assert console.client.get("/errors.csv?rep=bob%40example.com&rep=x").status_code == 422


def test_the_csv_export_names_items_a_chunk_at_a_time(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ItemNames] = []

    class Recorded(ItemNames):
        def __init__(self, crm: object) -> None:
            super().__init__(crm)
            made.append(self)

    monkeypatch.setattr(error_pages, "ItemNames", Recorded)
    _rows(console)
    console.sign_in("full")
    rows = list(csv.DictReader(io.StringIO(console.client.get("/errors.csv").text)))
    assert len(rows) == 2143 and len(made) == 5  # a cache per 500 rows, not one for all
    assert rows[0]["item_name"] == "card 0.vcf"
    assert "Ada Lovelace" in {row["item_name"] for row in rows}


def test_the_api_csv_streams_every_matching_row_in_the_reports_order(console: Console) -> None:
    _rows(console)
    reader = console.bearer("reader")
    with console.client.stream("GET", "/api/v1/errors.csv", headers=reader) as answer:
        assert answer.headers["content-type"].startswith("text/csv")
        assert "content-length" not in answer.headers  # streamed, not built whole first
        pieces = list(answer.iter_text())
    rows = list(csv.DictReader(io.StringIO("".join(pieces))))
    assert len(rows) == 2143  # not the 200 of a page
    first_page = console.client.get("/api/v1/errors?limit=3", headers=reader).json()
    assert [r["item"] for r in rows[:3]] == [r["item"] for r in first_page]
    assert rows[-1]["message"] == "refused 142"
    oldest = console.client.get(
        "/api/v1/errors.csv?rep=bob%40example.com&descending=false", headers=reader
    )
    bobs = list(csv.DictReader(io.StringIO(oldest.text)))
    assert len(bobs) == 143 and bobs[0]["message"] == "refused 142"
    nobody = console.client.get("/api/v1/errors.csv?rep=nobody%40example.com", headers=reader)
    assert nobody.text.splitlines() == [",".join(views.ERROR_COLUMNS)]
