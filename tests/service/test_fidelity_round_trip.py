"""The fixture corpus through a real Radicale and the CRM, on every path.

For each valid fixture: mail → CRM, CRM → mail (another rep's mailbox), and that item
back into a third rep's CRM records keep the meaning `expected.json` gives; a CRM-side
edit leaves every other line of the server item as the server stored it. Where Radicale
itself alters or refuses a valid item, `RADICALE_QUIRKS` names it and says how; the test
checks the quirk is still there (so the list stays true) and our own handling of that
fixture is checked without the server in `tests/groupware/dav/test_fixture_corpus.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fidelity import fixture_names, skipped_fixture_names
from tests.fidelity_corpus import PATHS, FixtureResult, run_corpus
from tests.servers import SERVICE_ACCOUNT, SERVICE_PASSWORD, DavServerInfo, start_radicale

VALID = fixture_names("events") + fixture_names("contacts")
SKIPPED = skipped_fixture_names()
MALFORMED = fixture_names("malformed")
# Radicale (through vobject) drops vCard 2.1's bare TYPE parameters: TEL;CELL: becomes
# TEL:, so the phone kinds and the HOME address are gone before crmsync reads the item.
_BARE_PARAMS = "TEL"
RADICALE_QUIRKS = {
    "contacts/outlook_vcard21_default_postal_address.vcf": _BARE_PARAMS,
    "contacts/outlook_vcard21_im_manager_assistant.vcf": _BARE_PARAMS,
    "contacts/vcard21_bare_type_params.vcf": _BARE_PARAMS,
    "contacts/vcard21_quoted_printable_note.vcf": _BARE_PARAMS,
    # A vCard 2.1 base64 PHOTO ended by a blank line: Radicale answers 400.
    "contacts/outlook_vcard21_photo_base64.vcf": "refused (400)",
    # A vCard 3.0 without FN (crmsync reads it, noting the repair): Radicale answers 400.
    "contacts/vcard30_no_fn_n_only.vcf": "refused (400)",
    # RDATE;VALUE=PERIOD: Radicale answers 400 (DESIGN, "Facts measured").
    "events/rdate_value_period.ics": "refused (400)",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FixtureResult]]:
    folder = tmp_path_factory.mktemp("fidelity")
    reps = {
        email: "rep-secret"
        for email in ("first@example.com", "second@example.com", "third@example.com")
    }
    radicale = start_radicale(folder, reps)
    try:
        server = DavServerInfo(
            "radicale",
            radicale.url,
            SERVICE_ACCOUNT,
            SERVICE_PASSWORD,
            "/{email}/",
            "first@example.com",
        )
        yield {r.name: r for r in run_corpus(server, folder / "home", VALID + SKIPPED + MALFORMED)}
    finally:
        radicale.stop()


@pytest.mark.parametrize("name", VALID)
def test_every_path_keeps_the_meaning(results: dict[str, FixtureResult], name: str) -> None:
    result = results[name]
    if name in RADICALE_QUIRKS:
        assert RADICALE_QUIRKS[name] in result.server_note, result.server_note
        return
    assert set(result.paths) == set(PATHS)
    for path, changed in result.paths.items():
        assert changed == {}, f"{path}: {changed}"


@pytest.mark.parametrize("name", [n for n in VALID if n not in RADICALE_QUIRKS])
def test_a_crm_edit_leaves_every_other_line_alone(
    results: dict[str, FixtureResult], name: str
) -> None:
    assert results[name].unmapped_kept is True


@pytest.mark.parametrize("name", SKIPPED)
def test_an_item_that_is_no_contact_or_event_stays_out_with_its_rule_in_the_audit_trail(
    results: dict[str, FixtureResult], name: str
) -> None:
    result = results[name]
    assert all(changed == {} for changed in result.paths.values()), result.paths
    assert "skipped" in result.left_out_rule, result.left_out_rule


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_item_the_server_keeps_as_sent_becomes_an_error_row(
    results: dict[str, FixtureResult], name: str
) -> None:
    result = results[name]
    # None: Radicale refused it, or stored it repaired (a body that is not UTF-8).
    assert result.reported is True or (result.reported is None and result.server_note)


def test_the_quirk_list_names_only_fixtures_radicale_alters() -> None:
    assert set(RADICALE_QUIRKS) <= set(VALID)
