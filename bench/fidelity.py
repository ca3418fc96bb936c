"""Fidelity report: the fixture corpus through a DAV server and the CRM, field by field.

    python bench/fidelity.py [--url URL --user USER --password PASSWORD] [--only SUBSTRING]

Without ``--url`` a Radicale is started in a temp dir. With ``--url`` the server must
serve principals at ``/{email}/`` for first@, second@ and third@example.com to the given
service account (their calendars and contacts folders are created). Each fixture of
``tests/fixtures`` goes mail → CRM (rep 1), CRM → mail (rep 2's mailbox) and that item
back to the CRM (rep 3); then a CRM-side edit must leave every other line of rep 1's item
as the server stored it. Items that are no live contact or event (a group card, a
cancelled event) must stay out of the CRM with their rule in the audit trail, and every
malformed fixture the server keeps as sent must become an error row.

Printed: per fixture, the fields whose meaning changed on each path; per kind of fixture
(its file-name prefix) the three counts (mail → CRM with every mapped field right, CRM
edit keeps the rest, malformed reported); the same counts for the whole corpus; and the
fixtures of each kind issue 13 named. See tests/fidelity.py for what is compared.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import common

from tests.fidelity import fixture_names, skipped_fixture_names
from tests.fidelity_corpus import PATHS, FixtureResult, run_corpus
from tests.servers import SERVICE_ACCOUNT, SERVICE_PASSWORD, DavServerInfo, start_radicale

REPS = ("first@example.com", "second@example.com", "third@example.com")
# Issue 13's kinds of real-world items and the fixtures that stand for each.
ISSUE_13 = {
    "1 malformed input altered": (
        "malformed/vcard40_invalid_utf8.vcf",
        "contacts/vcard30_no_fn_n_only.vcf",
    ),
    "2 a lone overridden occurrence": ("events/google_lone_override_instance.ics",),
    "3 nominal durations across DST": (
        "events/duration_nominal_day_across_dst.ics",
        "events/duration_nominal_week_across_dst_new_york.ics",
    ),
    "4 time zones lost or swapped": (
        "events/outlook_windows_display_name_tzid.ics",
        "events/tz_start_and_end_in_different_zones.ics",
    ),
    "5 attendee status": ("events/attendees_partstat_delegated.ics",),
    "6 RDATE;VALUE=PERIOD": ("events/rdate_value_period.ics",),
    "7 addresses": (
        "contacts/vcard40_adr_pobox_extended_street_lines.vcf",
        "contacts/vcard30_multiple_addresses_pobox_extended.vcf",
    ),
    "8 company and group cards": (
        "contacts/vcard30_org_no_n_company.vcf",
        "contacts/vcard40_kind_group.vcf",
        "contacts/apple_group_addressbookserver_kind.vcf",
    ),
    "9 cancelled events": ("events/status_cancelled_master.ics",),
    "10 vCard 2.1 line breaks": ("contacts/vcard21_qp_crlf_line_breaks.vcf",),
    "11 what a CRM → mail copy keeps": ("contacts/vcard30_family_first_cjk_pref_types.vcf",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running DAV server (default: start a Radicale)")
    parser.add_argument("--user", default=SERVICE_ACCOUNT)
    parser.add_argument("--password", default=SERVICE_PASSWORD)
    parser.add_argument("--only", default="", help="only fixtures whose name contains this")
    args = parser.parse_args()
    every = (
        fixture_names("events")
        + fixture_names("contacts")
        + skipped_fixture_names()
        + fixture_names("malformed")
    )
    names = [n for n in every if args.only in n]
    with tempfile.TemporaryDirectory(prefix="crmsync-fidelity-") as tmp:
        folder = Path(tmp)
        radicale = None
        url = args.url
        if url is None:
            radicale = start_radicale(folder, {email: "rep-secret" for email in REPS})
            url = radicale.url
        try:
            server = DavServerInfo("dav", url, args.user, args.password, "/{email}/", REPS[0])
            results = run_corpus(server, folder / "home", names)
        finally:
            if radicale is not None:
                radicale.stop()
    by_name = {r.name: r for r in results}
    print_fixtures(results)
    print_counts(results)
    print_issue_13(by_name)


def print_fixtures(results: list[FixtureResult]) -> None:
    rows = []
    for result in results:
        cells = [result.name]
        if result.name.startswith("malformed/"):
            reported = {True: "error row", False: "NOT REPORTED", None: "-"}[result.reported]
            cells += [reported, "-", "-", "-"]
        else:
            for path in PATHS:
                changed = result.paths[path]
                text = changed if isinstance(changed, str) else ", ".join(changed) or "none"
                cells.append(text)
            cells.append({True: "yes", False: "NO", None: "-"}[result.unmapped_kept])
        cells.append(result.server_note or "-")
        rows.append(cells)
    # Cells name the fields whose meaning changed on that path ("none": all survived).
    columns = ["Fixture", "mail→CRM", "CRM→mail", "round trip", "edit keeps rest", "server"]
    common.print_table("Fields that survived each path", columns, rows)


def _counts(results: Iterable[FixtureResult]) -> tuple[str, str, str]:
    """(mail → CRM right, CRM edit keeps the rest, malformed reported) as "n of m"."""
    mapped = right = edited = kept = malformed = reported = 0
    for r in results:
        if r.name.startswith("malformed/"):
            if r.reported is not None:
                malformed += 1
                reported += r.reported
            continue
        if r.paths.get(PATHS[0]) == "never stored":
            continue  # the server refused it: its column says so
        mapped += 1
        right += r.paths.get(PATHS[0]) == {}
        if r.unmapped_kept is not None:
            edited += 1
            kept += r.unmapped_kept
    pairs = ((right, mapped), (kept, edited), (reported, malformed))
    first, second, third = (f"{n} of {m}" if m else "-" for n, m in pairs)
    return first, second, third


def print_counts(results: list[FixtureResult]) -> None:
    families: dict[str, list[FixtureResult]] = defaultdict(list)
    for result in results:
        folder, _, file = result.name.partition("/")
        families["malformed" if folder == "malformed" else file.split("_")[0]].append(result)
    refused: dict[str, int] = defaultdict(int)
    for family, members in families.items():
        refused[family] = sum(1 for r in members if r.server_note.startswith(("refused", "stores")))
    rows = [
        [family, str(len(members)), *_counts(members), str(refused[family] or "-")]
        for family, members in sorted(families.items())
    ]
    rows.append(["all", str(len(results)), *_counts(results), str(sum(refused.values()) or "-")])
    columns = [
        "Kind",
        "items",
        "mail → CRM right",
        "CRM edit keeps the rest",
        "malformed reported",
        "server refused or repaired",
    ]
    common.print_table("Per kind (file-name prefix)", columns, rows)
    right, kept, reported = _counts(results)
    print(f"mail → CRM, every mapped field right: {right} items the server stored")
    print(f"CRM edit keeps everything else: {kept}")
    print(f"malformed items reported as error rows: {reported} the server kept as sent")
    faithful = sum(r.faithful for r in results)
    print(f"{faithful} of {len(results)} items fully faithful")
    for result in results:
        if not result.faithful:
            print(f"  not faithful: {result.name} ({result.server_note or 'crmsync'})")


def print_issue_13(by_name: dict[str, FixtureResult]) -> None:
    rows = []
    for kind, names in ISSUE_13.items():
        for name in names:
            result = by_name.get(name)
            if result is None:
                verdict = "not run"
            elif result.server_note.startswith(("refused", "stores")):
                verdict = f"server {result.server_note} (format level: tests/groupware/dav)"
            else:
                verdict = "passes" if result.faithful else "FAILS"
            rows.append([kind, name, verdict])
    common.print_table("Issue 13's kinds and their fixtures", ["Kind", "Fixture", "Result"], rows)


if __name__ == "__main__":
    main()
