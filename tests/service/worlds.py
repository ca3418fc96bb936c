"""Shared helpers of the service tests: a `World` (one org, one rep, a real DAV server).

`World` wires the built-in CRM on SQLite, the state store and the service exactly as the
CLI does, and looks at the mail side through a second, independent DAV connection.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from crmsync.domain.records import ItemKind, User
from crmsync.domain.settings import ContactSettings, EventSettings, SyncConfig
from crmsync.domain.sync import Seen
from crmsync.engine.ports import ItemSide
from crmsync.groupware.dav import (
    DavCollection,
    DavConnection,
    DavMailbox,
    RetryPolicy,
    connect,
    open_mailbox,
)
from crmsync.service.deployment import Deployment
from crmsync.service.runner import RepReport, SyncService
from tests.servers import DavServerInfo

UTC = dt.UTC


def at(day: int, hour: int, zone: str = "UTC") -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, tzinfo=ZoneInfo(zone)).astimezone(UTC)


BOTH_WAYS = SyncConfig(
    name="Sales",
    contacts=ContactSettings(propagate_deletions=True),
    events=EventSettings(sync_private=True),
)


class MailboxWorld:
    """What every world reads back alike: a cycle that must end without an error, and the
    rep's items as another client of the mail server lists them (through `side`)."""

    service: SyncService
    rep: User

    def side(self, kind: ItemKind) -> ItemSide:
        raise NotImplementedError

    def sync(self) -> RepReport:
        report = self.service.sync_rep(self.rep)
        assert report.error is None, report.error
        return report

    def mail_items(self, kind: ItemKind) -> dict[str, Seen]:
        listing = self.side(kind).changes(None, {})
        return {seen.id: seen for seen in listing.items}

    def mail_records(self, kind: ItemKind) -> list[object]:
        return sorted((seen.record for seen in self.mail_items(kind).values()), key=repr)


class World(MailboxWorld):
    """One org: a rep in the CRM, the rep's mailbox, and the service syncing them."""

    def __init__(
        self,
        server: DavServerInfo,
        home: Path,
        config: SyncConfig,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.server = server
        self.home = home
        self.service = SyncService(
            Deployment.from_env(home), retry=retry or RetryPolicy(base_delay=0.01)
        )
        self.service.configure_server(server.settings(), server.password)
        self.rep = self.service.crm.create_user(server.email, "Rita Rep")
        self.service.store.save_config(replace(config, user_ids=(self.rep.id,)))
        self.crm = self.service.crm
        self._connection = connect(server.settings(), server.password)
        self._mailbox: DavMailbox | None = None

    @property
    def connection(self) -> DavConnection:
        """The test's own connection to the mail server (not the service's)."""
        return self._connection

    @property
    def mailbox(self) -> DavMailbox:
        if self._mailbox is None:
            self._mailbox = open_mailbox(
                self._connection, self.server.settings(), self.server.email
            )
        return self._mailbox

    def collection(self, kind: ItemKind) -> DavCollection:
        return self.mailbox.contacts if kind is ItemKind.CONTACT else self.mailbox.events

    side = collection

    def crm_records(self, kind: ItemKind) -> list[object]:
        stored = (
            self.crm.list_contacts(owner_id=self.rep.id)
            if kind is ItemKind.CONTACT
            else self.crm.list_events(owner_id=self.rep.id)
        )
        return sorted((s.record for s in stored), key=repr)

    def put_raw(self, kind: ItemKind, name: str, text: str | bytes) -> httpx.Response:
        """PUT ``text`` as a calendar client would, at ``name`` in the rep's folder (bytes
        are sent as they are, even when they are not UTF-8)."""
        collection = self.collection(kind)
        content_type = "text/vcard" if kind is ItemKind.CONTACT else "text/calendar"
        extension = ".vcf" if kind is ItemKind.CONTACT else ".ics"
        return self._connection.request(
            "PUT",
            collection.path + name + extension,
            body=text,
            headers={"Content-Type": content_type + "; charset=utf-8"},
        )

    def raw_texts(self, kind: ItemKind) -> dict[str, str]:
        """Every item's text in the rep's folder, href → text, read with one query REPORT
        that does not go through crmsync's reading code."""
        if kind is ItemKind.CONTACT:
            ns, report, data = "urn:ietf:params:xml:ns:carddav", "addressbook-query", "address-data"
        else:
            ns, report, data = "urn:ietf:params:xml:ns:caldav", "calendar-query", "calendar-data"
        filters = (
            ""
            if kind is ItemKind.CONTACT
            else '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
        )
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><C:{report} xmlns:D="DAV:" xmlns:C="{ns}">'
            f"<D:prop><D:getetag/><C:{data}/></D:prop>{filters}</C:{report}>"
        )
        response = self._connection.request(
            "REPORT", self.collection(kind).path, body=body, headers={"Depth": "1"}, xml=True
        )
        assert response.status_code == 207, response.text
        texts: dict[str, str] = {}
        for r in ET.fromstring(response.content).iter("{DAV:}response"):
            href = r.findtext("{DAV:}href")
            text = r.find(f".//{{{ns}}}{data}")
            if href and text is not None and text.text:
                texts[href] = text.text
        return texts

    def close(self) -> None:
        self._connection.close()
        self.service.close()


def uid_of(text: str) -> str | None:
    """The first UID line's value of a vCard or iCalendar text (unfolded)."""
    unfolded = text.replace("\r\n ", "").replace("\n ", "")
    for line in unfolded.splitlines():
        if line.upper().startswith("UID:"):
            return line[4:].strip()
    return None
