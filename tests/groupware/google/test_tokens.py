"""Service-account tokens per rep and scope, and the connection test's steps.

These tests use a fake built from Google's documented payloads (`FakeGoogle`) and the
official library (google-auth) signing the JWT assertions the fake verifies; no Google
account is involved.
"""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from crmsync.domain.sync import AuthenticationFailed, FolderMissing
from crmsync.groupware.google import DelegationMissing, GoogleConfig, parse_key
from crmsync.groupware.google.probe import (
    check_calendar,
    check_contacts,
    check_delegation,
    check_key,
)
from tests.groupware.contract import sample_contact
from tests.groupware.google.fake_google import (
    CALENDAR_SCOPE,
    CLIENT_ID,
    CONTACTS_SCOPE,
    FakeGoogle,
    service_account_key,
)
from tests.groupware.google.harness import GoogleHarness


def test_each_rep_gets_tokens_of_their_own_per_api() -> None:
    fake = FakeGoogle(users=("ann@example.com", "bob@example.com"))
    ann = GoogleHarness(fake=fake, rep="ann@example.com")
    bob = GoogleHarness(fake=fake, rep="bob@example.com")
    ann.contacts.create(sample_contact(), "a")
    ann.events.changes(None, {})
    bob.contacts.changes(None, {})
    issued = sorted((i.subject, *sorted(i.scopes)) for i in fake.tokens.values())
    assert issued == [
        ("ann@example.com", CALENDAR_SCOPE),
        ("ann@example.com", CONTACTS_SCOPE),
        ("bob@example.com", CONTACTS_SCOPE),
    ]
    # Ann's contact is in Ann's book only.
    assert fake.people.books["bob@example.com"].people == {}
    ann.close()
    bob.close()


def test_a_refused_token_is_renewed_once_then_the_rep_fails() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.contacts.changes(None, {})
    minted = h.fake.tokens_issued
    h.fake.revoke_tokens()
    h.contacts.changes(None, {})
    assert h.fake.tokens_issued == minted + 1
    original = h.fake._token

    def mint_but_forget(request):  # Google issues tokens, then refuses every one
        status, headers, body = original(request)
        h.fake.tokens.clear()
        return status, headers, body

    h.fake._token = mint_but_forget  # type: ignore[method-assign]
    h.fake.revoke_tokens()
    with pytest.raises(AuthenticationFailed, match="401"):
        h.contacts.changes(None, {})
    h.close()


def test_missing_delegation_names_the_scope_and_where_to_add_it() -> None:
    fake = FakeGoogle(delegated=frozenset({CALENDAR_SCOPE}))
    with pytest.raises(DelegationMissing) as caught:
        GoogleHarness(fake=fake)  # opening the mailbox reads the contact groups
    assert caught.value.scope == CONTACTS_SCOPE
    assert CONTACTS_SCOPE in caught.value.message
    assert CLIENT_ID in caught.value.suggestion
    assert "Manage Domain Wide Delegation" in caught.value.suggestion


def test_a_rep_who_is_no_workspace_user_is_a_missing_principal() -> None:
    with pytest.raises(FolderMissing) as caught:
        GoogleHarness(fake=FakeGoogle(), rep="nobody@example.com")
    assert caught.value.folder == "principal"
    assert "nobody@example.com" in caught.value.message


def test_a_key_from_another_service_account_is_refused_with_the_fix() -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationFailed) as caught:
        GoogleHarness(fake=FakeGoogle(), key_json=service_account_key(stranger))
    assert "Invalid JWT Signature" in caught.value.message
    assert "new JSON key" in caught.value.suggestion


@pytest.mark.parametrize(
    ("key_json", "says"),
    [
        ("not json", "not JSON"),
        (
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_email": "x",
                    "client_id": "1",
                    "private_key": "-----BEGIN PRIVATE KEY-----",
                    "token_uri": "t",
                }
            ),
            "not a service account key",
        ),
        (json.dumps({"type": "service_account"}), "lacks client_email"),
    ],
    ids=["not-json", "user-credentials", "incomplete"],
)
def test_a_bad_key_says_what_is_wrong(key_json: str, says: str) -> None:
    with pytest.raises(AuthenticationFailed, match=says):
        parse_key(key_json)
    assert not check_key(GoogleConfig(key_json=key_json))[0]


def test_the_private_key_and_tokens_never_reach_a_repr_or_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.fail_next(1, "503")
    h.contacts.create(sample_contact(), "m")
    private_key = json.loads(h.config.key_json)["private_key"]
    secrets_seen = [private_key.splitlines()[1], *h.fake.tokens]
    shown = caplog.text + repr(h.config) + repr(h.connection) + repr(h.connection.key)
    assert not [s for s in secrets_seen if s in shown]
    h.close()


def test_connection_test_steps_pass_on_a_delegated_account() -> None:
    h = GoogleHarness()
    assert check_key(h.config)[0]
    assert [o[0] for o in check_delegation(h.connection, h.rep)] == [True, True]
    assert check_calendar(h.connection, h.rep)[0]
    assert check_contacts(h.connection, h.rep, "CRM_Sync") == (
        True,
        "contacts and the group 'CRM_Sync' found",
        "",
    )
    h.close()


def test_connection_test_names_the_missing_scope_and_the_unknown_rep() -> None:
    fake = FakeGoogle(delegated=frozenset({CALENDAR_SCOPE}))
    h = GoogleHarness(fake=fake, open_mailbox=False)
    (cal_ok, _, _), (people_ok, detail, fix) = check_delegation(h.connection, h.rep)
    assert cal_ok and not people_ok
    assert CONTACTS_SCOPE in detail and "Manage Domain Wide Delegation" in fix
    passed, detail, fix = check_calendar(h.connection, "nobody@example.com")
    assert not passed and "nobody@example.com" in detail and "alias" in fix
    h.close()
