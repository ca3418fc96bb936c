"""Linked setups: one rep's contacts and events on both the CRM and the server, paired by
a first cycle (where no_change.py starts), and the fast bulk writes of server items."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import common  # noqa: F401  (puts the repository root on sys.path before crmsync imports)
from bench_servers import Server, rep_emails
from meters import Measured, measure, per_kind_meter
from raw_http import ICAL_TYPE, VCARD_TYPE, put_items, raw_client
from sample_data import Seeded, configure, open_service, render_contact, render_event, seed_crm

from crmsync.domain.records import ItemKind
from crmsync.service.runner import SyncService


@dataclass
class Linked:
    """A rep whose M contacts and M events exist on both sides and are linked."""

    service: SyncService
    seeded: Seeded
    server_seed: Measured
    pairing: Measured
    pairing_kinds: dict[ItemKind, Measured]
    how: str


def write_server_items(
    server: Server, path: str, items: Sequence[tuple[str, str]], content_type: str
) -> str:
    """Put items into a collection as fast as the server allows; says how it did it.

    Radicale (started by us): the item files are written straight into its storage folder,
    which Radicale reads as it would its own files. Otherwise: the raw PUT loop over HTTP.
    """
    if server.name == "radicale" and server.data_dir is not None:
        from urllib.parse import unquote

        folder = server.data_dir / "collections" / "collection-root" / unquote(path).strip("/")
        if not folder.is_dir():
            raise RuntimeError(f"no collection folder {folder}")
        for name, text in items:
            (folder / name).write_text(text, encoding="utf-8", newline="")
        _warm_radicale(server, path)
        return (
            "item files written into Radicale's storage folder, then listed once so "
            "Radicale builds its item cache as PUTs would have"
        )
    if server.name == "xandikos" and server.data_dir is not None:
        from urllib.parse import unquote

        folder = server.data_dir / "dav" / unquote(path).strip("/")
        if (folder / ".git").is_dir():
            _commit_into_git_collection(folder, items)
            return "item files committed in one git commit into Xandikos's collection repo"
    with raw_client(server) as client:
        put_items(client, server, path, items, content_type)
    return "raw PUT loop over HTTP"


def _warm_radicale(server: Server, path: str) -> None:
    """List a collection once (PROPFIND Depth 1, no time limit): Radicale caches each item
    it reads, and a PUT would have cached it. Without this, the first cycle's listing of a
    big seeded collection makes Radicale read every file (minutes at 50,000 items) and
    crmsync's request times out."""
    from crmsync.groupware.dav.multistatus import DAV, propfind_body, tag

    with raw_client(server) as client:
        response = client.request(
            "PROPFIND",
            server.url + path,
            timeout=None,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            content=propfind_body(tag(DAV, "getetag")).encode(),
        )
    if response.status_code != 207:
        raise RuntimeError(f"PROPFIND {path}: HTTP {response.status_code}")


def _commit_into_git_collection(folder: Path, items: Sequence[tuple[str, str]]) -> None:
    """Add the items to a Xandikos tree-git collection as files plus one commit (Xandikos
    itself commits once per PUT, which makes bulk seeding quadratic)."""
    from dulwich.index import index_entry_from_stat
    from dulwich.objects import Blob
    from dulwich.repo import Repo

    repo = Repo(str(folder))
    index = repo.open_index()
    for name, text in items:
        data = text.encode("utf-8")
        target = folder / name
        target.write_bytes(data)
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        index[name.encode("utf-8")] = index_entry_from_stat(os.lstat(target), blob.id)
    index.write()
    tree = index.commit(repo.object_store)
    repo.get_worktree().commit(message=b"crmsync bench: seed items", tree=tree)


def linked_setup(server: Server, home: Path, items: int, seed: int) -> Linked:
    """Seed the CRM with one rep's M contacts + M events, put the same items (rendered by
    crmsync, carrying their CRM ids as markers) on the server, then run the first cycle,
    which lists and downloads everything and pairs the items by marker (no writes)."""
    service = open_service(home)
    seeded = seed_crm(service.crm, rep_emails(1, server.name), items, seed)
    configure(service, server, seeded.reps)
    rep = seeded.reps[0]
    mailbox = service.mail_server().open(rep.email)
    facts = mailbox.facts  # type: ignore[attr-defined]
    with measure("server seed", 2 * items, server) as seeding:
        how = write_server_items(
            server,
            facts.addressbook,
            [render_contact(i, c) for i, c in seeded.contacts[rep.id]],
            VCARD_TYPE,
        )
        write_server_items(
            server,
            facts.calendar,
            [render_event(i, e) for i, e in seeded.events[rep.id]],
            ICAL_TYPE,
        )

    def requests() -> int:
        return service.mail_server().requests_made

    with (
        per_kind_meter(service, server) as kinds,
        measure("pairing cycle", 2 * items, server, requests) as pairing,
    ):
        reports = service.sync_all()
    for r in reports:
        if r.error:
            raise RuntimeError(f"first cycle failed: {r.error}")
    writes_done = sum(r.writes for r in reports)
    linked = sum(service.store.count_links(rep.id, k) for k in (ItemKind.CONTACT, ItemKind.EVENT))
    if linked != 2 * items:
        print(f"WARNING: {linked} links after the first cycle, expected {2 * items}")
    if writes_done:
        print(f"NOTE: the first cycle wrote {writes_done} item(s) (expected 0: pairing only)")
    return Linked(service, seeded, seeding, pairing, kinds, how)
