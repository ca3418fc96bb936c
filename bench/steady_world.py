"""steady_state.py's world: one DAV server (Radicale or SabreDAV) and one deployment home
under a work folder, seeded once, with the snapshots every phase starts from.

`World.seed` writes max(N) reps x M contacts and M events (Radicale: files written into
its storage; SabreDAV: the raw PUT loop), pairs them by a crmsync cycle per rep and
snapshots that as 'linked'; then per rep 1 % of the items are edited on the server and
another 1 % in the CRM (what the raw loop PUTs for those written to ``puts.json``), and
that is snapshotted as 'churned'. `World.restore` puts a snapshot back and restarts the
server on its port.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import bench_servers
import linked_setup
import pairs
import raw_http
import sample_data

from crmsync.domain.records import Contact, ItemKind
from crmsync.groupware.dav.local_server import LocalRadicale

KINDS = (ItemKind.CONTACT, ItemKind.EVENT)
CONTENT_TYPES = {ItemKind.CONTACT: raw_http.VCARD_TYPE, ItemKind.EVENT: raw_http.ICAL_TYPE}
# The snapshots, and the pass each one starts.
PASS_NAMES = {"linked": "no change", "churned": "churn"}


class DavProcess:
    """The benchmark's DAV server (Radicale or SabreDAV) over a folder, restartable on
    its port: a snapshot of the folder is put back and the server started on it again."""

    def __init__(self, kind: str, folder: Path, emails: list[str], port: int | None) -> None:
        self.kind = kind
        self.folder = folder
        self.started_once = port is not None  # a --seeded folder holds its data already
        if kind == "radicale":
            users = {
                bench_servers.SERVICE_ACCOUNT: bench_servers.SERVICE_PASSWORD,
                **dict.fromkeys(emails, bench_servers.REP_PASSWORD),
            }
            self.server: Any = LocalRadicale(
                folder, users, bench_servers.SERVICE_ACCOUNT, port=port
            )
            self.account = (
                bench_servers.SERVICE_ACCOUNT,
                bench_servers.SERVICE_PASSWORD,
                "/{email}/",
            )
        else:
            missing = bench_servers.sabredav_missing()
            if missing:
                raise SystemExit(f"SabreDAV cannot run here: {missing}")
            from tests import sabredav

            self.server = sabredav.SabreDavServer(
                folder, reps=dict.fromkeys(emails, bench_servers.REP_PASSWORD), port=port
            )
            self.account = (
                sabredav.SERVICE_ACCOUNT,
                sabredav.SERVICE_PASSWORD,
                sabredav.PRINCIPAL_PATH,
            )

    def start(self) -> bench_servers.Server:
        if self.kind == "radicale":
            self.server.start(timeout=120)
        else:
            self.server.start(timeout=120, keep_data=self.started_once)
        self.started_once = True
        user, password, principal = self.account
        return bench_servers.Server(
            self.kind,
            self.server.url,
            user,
            password,
            principal,
            bench_servers.child_listening_on(self.server.port),
            self.folder if self.kind == "radicale" else None,
            self.server.stop,
        )

    def stop(self) -> None:
        self.server.stop()


class World:
    """One DAV server and one deployment home under ``work``, with snapshots to restore.
    ``script`` is the file the phases run as (``python SCRIPT --child ...``): steady_state.py."""

    def __init__(
        self,
        script: str,
        work: Path,
        reps: int,
        items: int,
        args: argparse.Namespace,
        port: int | None = None,
    ) -> None:
        self.work = work
        self.reps = reps
        self.items = items
        self.args = args
        self.script = script
        self.emails = bench_servers.rep_emails(reps)
        self.dav_kind = args.server
        self.dav = DavProcess(args.server, work / "live" / args.server, self.emails, port)
        self.server: bench_servers.Server | None = None
        self.restores = len(list(work.glob("used-*")))

    @property
    def live(self) -> Path:
        return self.work / "live"

    def start(self) -> bench_servers.Server:
        self.server = self.dav.start()
        pairs.server_json(self.server, self.work / "server.json")
        return self.server

    def stop(self) -> None:
        self.dav.stop()

    def pin_server(self, cpus: set[int]) -> None:
        """Keep the DAV server (and its children) on these CPUs."""
        if self.server is not None and self.server.process is not None:
            for process in [self.server.process, *self.server.process.children(True)]:
                process.cpu_affinity(sorted(cpus))

    def seed(self) -> None:
        """Seed, pair (first cycle), snapshot 'linked'; churn, snapshot 'churned'."""
        server = self.start()
        home = self.live / "home"
        t0 = time.perf_counter()
        service = sample_data.open_service(home)
        seeded = sample_data.seed_crm(service.crm, self.emails, self.items, self.args.seed)
        sample_data.configure(service, server, seeded.reps)
        collections: dict[str, dict[str, str]] = {}
        for rep in seeded.reps:
            facts = service.mail_server().open(rep.email).facts  # type: ignore[attr-defined]
            collections[rep.email] = {
                ItemKind.CONTACT.value: facts.addressbook,
                ItemKind.EVENT.value: facts.calendar,
            }
            linked_setup.write_server_items(
                server,
                facts.addressbook,
                [sample_data.render_contact(i, c) for i, c in seeded.contacts[rep.id]],
                raw_http.VCARD_TYPE,
            )
            linked_setup.write_server_items(
                server,
                facts.calendar,
                [sample_data.render_event(i, e) for i, e in seeded.events[rep.id]],
                raw_http.ICAL_TYPE,
            )
        (self.work / "collections.json").write_text(json.dumps(collections))
        t1 = time.perf_counter()
        for rep in seeded.reps:
            report = service.sync_rep(rep)
            if report.error:
                raise SystemExit(f"pairing cycle of {rep.email} failed: {report.error}")
        # A second cycle per rep, as a running service's next one: it marks the flows in
        # sync (written once, when they change), so the snapshot is the steady state.
        for rep in seeded.reps:
            service.sync_rep(rep)
        links = sum(service.store.count_links(r.id, k) for r in seeded.reps for k in KINDS)
        print(
            f"[M={self.items}] seeded {self.reps} reps x {self.items} contacts + events in "
            f"{t1 - t0:.0f} s, paired by a first cycle in {time.perf_counter() - t1:.0f} s "
            f"({links:,} links)",
            flush=True,
        )
        service.close()
        self.snapshot("linked")
        self.churn(seeded)
        self.snapshot("churned")

    def churn(self, seeded: sample_data.Seeded) -> None:
        """Per rep, edit ``churn`` of the items on the server and as many others in the CRM;
        write what the raw loop PUTs for the CRM edits (rendered, with the link's ETag)."""
        server = self.server
        assert server is not None
        service = sample_data.open_service(self.live / "home")
        count = max(1, round(self.items * self.args.churn))
        puts: dict[str, list[dict[str, str]]] = {}
        with raw_http.raw_client(server) as client:
            for rep in seeded.reps:
                puts[rep.email] = []
                for kind in KINDS:
                    links = sorted(service.store.links(rep.id, kind), key=lambda k: k.crm_id)
                    for link in links[:count]:  # the rep's edits on the server
                        url = server.url + link.mail_id
                        title = f"Edited on the server {time.time()}"
                        text = sample_data.retitled(client.get(url).text, kind, title)
                        response = client.put(
                            url,
                            content=text.encode(),
                            headers={"Content-Type": CONTENT_TYPES[kind]},
                        )
                        if response.status_code not in (200, 201, 204):
                            raise SystemExit(f"churn PUT {url}: HTTP {response.status_code}")
                    for link in links[count : 2 * count]:  # edits in the CRM
                        puts[rep.email].append(self.edit_in_crm(service, kind, link))
        service.close()
        (self.work / "puts.json").write_text(json.dumps(puts))

    @staticmethod
    def edit_in_crm(service: Any, kind: ItemKind, link: Any) -> dict[str, str]:
        field = "title" if kind is ItemKind.CONTACT else "subject"
        record = sample_data.retitle_in_crm(service.crm, kind, link.crm_id, f"Churned {field}")
        if isinstance(record, Contact):
            _, text = sample_data.render_contact(link.crm_id, record)
        else:
            _, text = sample_data.render_event(link.crm_id, record)
        return {"href": link.mail_id, "etag": link.mail_version, "kind": kind.value, "text": text}

    def snapshot(self, state: str) -> None:
        self.dav.stop()
        copy_state(self.live, self.work / state, self.dav_kind)
        self.start()

    def restore(self, state: str) -> None:
        """Put the snapshot back: the old folder is set aside (deleting 10^5 files takes
        longer than a phase), then `copy_state`."""
        self.dav.stop()
        self.restores += 1
        self.live.rename(self.work / f"used-{self.restores}")
        copy_state(self.work / state, self.live, self.dav_kind)
        self.start()


def copy_state(source: Path, target: Path, kind: str) -> None:
    """Radicale's files as hard links (it replaces a file it writes, never writes into
    it); SabreDAV's SQLite database and both of ours as copies."""
    link = os.link if kind == "radicale" else shutil.copy2
    shutil.copytree(source / kind, target / kind, copy_function=link)
    shutil.copytree(source / "home", target / "home")
