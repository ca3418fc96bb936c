"""Sync tokens: Calendar's 410 and People's 7-day expiry fall back to a full listing
compared through the links (nothing created again), and group membership is scope.

These tests use a fake built from Google's documented payloads (`FakeGoogle`).
"""

from __future__ import annotations

import dataclasses

from tests.groupware.contract import sample_contact, sample_event
from tests.groupware.google.harness import GoogleHarness


def test_an_expired_calendar_token_lists_everything_and_keeps_the_links() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    a, b, c = (h.events.create(sample_event(f"e{n}"), f"m{n}") for n in range(3))
    first = h.events.changes(None, {})
    known = {w.id: w.version for w in (a, b, c)}
    h.fake.calendar.expire_sync_tokens(h.rep)
    h.foreign_edit(h.events, b.id, dataclasses.replace(sample_event("e1"), location="Annex"))
    h.foreign_delete(h.events, c.id)
    changes = h.events.changes(first.cursor, known)
    gone = [r for r in h.fake.api_requests("calendar") if r.url.params.get("syncToken")]
    assert gone[-1].url.params["syncToken"] == first.cursor
    assert changes.full
    assert [s.id for s in changes.items] == [b.id]  # a is unchanged: not listed again
    assert changes.deleted == (c.id,)
    assert not h.events.changes(changes.cursor, {a.id: a.version}).full
    h.close()


def test_a_people_sync_token_lasts_seven_days_from_its_full_sync() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.contacts.create(sample_contact(), "c")
    first = h.contacts.changes(None, {})
    h.fake.advance(days=6)
    second = h.contacts.changes(first.cursor, {})
    assert not second.full
    h.fake.advance(days=2)  # 8 days after the full sync, though 2 after the last token
    third = h.contacts.changes(second.cursor, {s.id: s.version for s in first.items})
    assert third.full and third.items == ()
    refused = [
        r for r in h.fake.api_requests("people") if r.url.params.get("syncToken") == second.cursor
    ]
    assert refused
    h.close()


def test_a_contact_taken_out_of_the_group_is_gone_for_crmsync() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    written = h.contacts.create(sample_contact(), "c")
    first = h.contacts.changes(None, {})
    h.fake.people.foreign_update(
        h.rep,
        written.id,
        {
            "memberships": [
                {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}
            ]
        },
    )
    changes = h.contacts.changes(first.cursor, {written.id: written.version})
    assert changes.deleted == (written.id,)
    assert h.contacts.fetch(written.id) is None
    # The contact itself is still in Google Contacts: a group is a label, not a folder.
    assert not h.fake.people.book(h.rep).people[written.id]["metadata"].get("deleted")
    h.close()


def test_contacts_outside_the_group_are_never_listed() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.people.book(h.rep).people["people/c1"] = {
        "resourceName": "people/c1",
        "etag": "%x",
        "names": [{"givenName": "Private"}],
        "memberships": [
            {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}
        ],
        "metadata": {"sources": [{"type": "CONTACT", "etag": "%x"}]},
    }
    assert h.contacts.changes(None, {}).items == ()
    h.close()
