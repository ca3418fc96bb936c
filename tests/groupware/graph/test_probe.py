"""Connection-test steps for Microsoft 365.

These tests use a fake built from Microsoft's documented payloads (`FakeGraph`) and the
official client library (msal) for tokens; no Microsoft 365 tenant is involved.
"""

from __future__ import annotations

from crmsync.groupware.graph.probe import check_delta, check_mailbox, check_token
from tests.groupware.graph.fake_graph import FakeGraph
from tests.groupware.graph.harness import GraphHarness


def test_all_steps_pass_on_a_consented_app() -> None:
    h = GraphHarness(fake=FakeGraph())
    assert check_token(h.connection)[0]
    assert check_mailbox(h.connection, h.rep, "CRM_Sync") == (
        True,
        "calendar and the folder 'CRM_Sync' found",
        "",
    )
    assert check_delta(h.connection, h.rep)[0]
    h.close()


def test_missing_consent_and_unknown_rep_name_the_fix() -> None:
    h = GraphHarness(fake=FakeGraph(roles=("User.Read.All",)))
    passed, detail, fix = check_token(h.connection)
    assert not passed and "Contacts.ReadWrite" in detail and "admin consent" in fix
    passed, detail, fix = check_mailbox(h.connection, "nobody@example.com", "CRM_Sync")
    assert not passed and "nobody@example.com" in detail and "Exchange Online" in fix
    h.close()
