"""Untrusted input is bounded before it is read, end to end: a real Radicale behind a
`RuleProxy` that inflates what it answers. An item past the cap is an error row of that
item while the others sync; a listing with a ``<response>`` past the cap fails the rep's
cycle with a message saying so, holding no more than the cap of it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from urllib.parse import unquote

from crmsync.domain.records import ItemKind
from crmsync.domain.sync import ErrorType
from crmsync.groupware.dav.connection import ResponseLimits
from tests.servers import DavServerInfo
from tests.service.http_proxy import Request, RuleProxy
from tests.service.test_bad_input import add_good_items, proxied, proxied_world

__all__ = ["proxied"]

LIMITS = ResponseLimits()


def test_an_item_past_the_cap_is_an_error_row_and_the_others_sync(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    try:
        add_good_items(world)
        padding = b"NOTE:" + b"x" * (LIMITS.item_bytes + 1) + b"\n"

        def inflate(request: Request, body: bytes) -> bytes:
            # One client card grows past the cap wherever it is served (multiget or GET).
            return body.replace(b"UID:client-card-0", padding + b"UID:client-card-0")

        proxy.rewrite = inflate
        first = world.sync()
        assert first.error is None

        (row,) = world.service.store.errors(rep_id=world.rep.id)
        assert row.item_id is not None and unquote(row.item_id).endswith("/client-card-0.vcf")
        assert row.error_type is ErrorType.MALFORMED_ITEM
        assert row.operation == "read from mail server"
        assert f"larger than the {LIMITS.item_bytes // 1024} KiB" in row.message
        assert "smaller" in row.suggestion
        # Three CRM contacts went to the server; the other client card came to the CRM.
        names = {c.first_name for c in world.crm_records(ItemKind.CONTACT)}
        assert "Cleo1" in names and "Cleo0" not in names
        assert len(world.crm_records(ItemKind.EVENT)) == 5

        # Unchanged, the item is not read nor reported again.
        world.sync()
        assert len(world.service.store.errors(rep_id=world.rep.id)) == 1
    finally:
        world.close()


def test_a_listing_with_a_response_past_the_cap_fails_the_cycle_holding_little_of_it(
    proxied: tuple[RuleProxy, DavServerInfo, list[float]], tmp_path: Path
) -> None:
    proxy, _, _ = proxied
    world = proxied_world(proxied, tmp_path)
    answer_size = 64 * 1024 * 1024
    huge = (
        b'<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"><d:response>'
        b"<d:href>/x</d:href><d:propstat><d:prop><d:getetag>"
        + b"e"
        * answer_size
        + b"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
        b"</d:response></d:multistatus>"
    )
    try:
        add_good_items(world)

        def rule(request: Request) -> tuple[int, dict[str, str], bytes] | None:
            if request.method == "REPORT" and b"sync-collection" in request.body:
                return 207, {}, huge
            return None

        proxy.rule = rule
        tracemalloc.start()
        try:
            report = world.service.sync_rep(world.rep)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert report.error is not None
        assert "one <response>" in report.error
        assert f"crmsync's {LIMITS.listing_response_bytes}-byte cap" in report.error
        (row,) = world.service.store.errors(rep_id=world.rep.id)
        assert row.kind is None and row.message == report.error
        assert "more than crmsync reads in one listing" in row.suggestion
        # The whole cycle held a small part of the answer at most, not the answer.
        assert peak < answer_size // 4, peak
    finally:
        world.close()
