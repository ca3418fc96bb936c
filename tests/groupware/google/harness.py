"""`GoogleHarness`: the contract's view of one rep's Google account.

By default the account lives in `FakeGoogle` (built from Google's documented payloads;
tokens come from the official library, google-auth, signing a JWT the fake verifies).
With CRMSYNC_GOOGLE_KEY_FILE (a service account JSON key with domain-wide delegation for
the calendar.events and contacts scopes) and CRMSYNC_GOOGLE_REP_EMAIL (a test user) set,
it talks to that real Workspace instead: the contacts group is a fresh ``CRM_Sync test
<random>`` group (deleted with its contacts afterwards) and event ids get a random salt.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx

from crmsync.domain.records import Contact, Event, Record
from crmsync.engine.ports import ItemSide
from crmsync.groupware.google import (
    GoogleConfig,
    GoogleConnection,
    GoogleContacts,
    GoogleEvents,
    RetryPolicy,
    event_api,
    open_google_mailbox,
    people_api,
)
from crmsync.groupware.google.contact_map import contact_slots, person_body
from crmsync.groupware.google.event_map import event_body, event_slots
from crmsync.transport.throttling import TenantLimiter
from tests.groupware.fake_clock import FakeClock
from tests.groupware.google.fake_google import CALENDAR, PEOPLE, FakeGoogle, service_account_key

REP = "rep@example.com"
LIVE_VARS = ("CRMSYNC_GOOGLE_KEY_FILE", "CRMSYNC_GOOGLE_REP_EMAIL")


def live() -> bool:
    return all(os.environ.get(v) for v in LIVE_VARS)


class GoogleHarness:
    def __init__(
        self,
        *,
        fake: FakeGoogle | None = None,
        notify_attendees: bool = False,
        max_attempts: int = 4,
        category_color: str = "",
        key_json: str | None = None,
        rep: str = REP,
        open_mailbox: bool = True,
    ) -> None:
        self.clock = FakeClock()
        retry = RetryPolicy(
            max_attempts=max_attempts, sleep=self.clock.sleep, clock=self.clock.monotonic
        )
        # Limiters of this harness only: parallel tests never wait on each other.
        self.limiters: dict[str, TenantLimiter] = {}

        def limiter(name: str) -> TenantLimiter:
            return self.limiters.setdefault(name, TenantLimiter(name))

        if live() and fake is None:
            self.fake = None
            self.rep = os.environ["CRMSYNC_GOOGLE_REP_EMAIL"]
            self.config = GoogleConfig(
                key_json=Path(os.environ["CRMSYNC_GOOGLE_KEY_FILE"]).read_text(),
                contacts_folder=f"CRM_Sync test {secrets.token_hex(4)}",
                notify_attendees_on_crm_edits=notify_attendees,
                category_color=category_color,
                event_id_salt=secrets.token_hex(8),
            )
            self.client = httpx.Client(timeout=60)
        else:
            self.fake = fake or FakeGoogle()
            self.rep = rep
            self.client = httpx.Client(transport=self.fake.transport())
            self.config = GoogleConfig(
                key_json=key_json or service_account_key(),
                calendar_url=CALENDAR,
                people_url=PEOPLE,
                notify_attendees_on_crm_edits=notify_attendees,
                category_color=category_color,
                retry=retry,
            )
        self.connection = GoogleConnection(self.config, self.client, limiters=limiter)
        if open_mailbox:
            mailbox = open_google_mailbox(self.config, self.rep, connection=self.connection)
            self.contacts: GoogleContacts = mailbox.contacts
            self.events: GoogleEvents = mailbox.events
            self.group_created = mailbox.contacts_folder_created

    def close(self) -> None:
        if self.fake is None and hasattr(self, "contacts"):  # live: remove the test group
            self.connection.request(
                "people",
                self.rep,
                "DELETE",
                f"/{self.contacts.group}",
                params={"deleteContacts": "true"},
            )
        self.client.close()

    def request_count(self) -> int:
        return self.connection.requests_made

    def foreign_edit(self, side: ItemSide, item_id: str, record: Record) -> None:
        if isinstance(side, GoogleEvents):
            assert isinstance(record, Event)
            current = event_api.get_event(self.connection, self.rep, item_id)
            body = event_body(event_slots(record, side.cats), current, side.cats)
            if self.fake is not None:
                self.fake.calendar.foreign_patch(self.rep, item_id, body)
            else:
                assert event_api.patch(self.connection, self.rep, item_id, body, "", False).ok
            return
        assert isinstance(side, GoogleContacts) and isinstance(record, Contact)
        current = people_api.get_person(self.connection, self.rep, item_id)
        assert current is not None
        body, fields = person_body(contact_slots(record, side.fields), current)
        if self.fake is not None:
            self.fake.people.foreign_update(self.rep, item_id, {f: body[f] for f in fields})
        else:
            body["etag"] = current["etag"]
            answer = people_api.update_contact(self.connection, self.rep, item_id, body, fields)
            assert answer.ok, answer.body

    def foreign_delete(self, side: ItemSide, item_id: str) -> None:
        if isinstance(side, GoogleEvents):
            if self.fake is not None:
                self.fake.calendar.foreign_delete(self.rep, item_id)
            else:
                assert event_api.delete(self.connection, self.rep, item_id, "", False).ok
        elif self.fake is not None:
            self.fake.people.foreign_delete(self.rep, item_id)
        else:
            assert people_api.delete_contact(self.connection, self.rep, item_id).ok

    def invalid_cursor(self, side: ItemSide) -> str:
        # Never issued: Calendar answers 410 fullSyncRequired, People 400 INVALID_ARGUMENT.
        return "CPDAlvWDx70CEPDAlvWDx70CGAU=never-issued"
