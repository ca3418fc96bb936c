"""Fidelity report: the fixture corpus through a DAV server and the CRM, field by field.

    python bench/fidelity.py [--url URL --user USER --password PASSWORD] [--only SUBSTRING]

Without ``--url`` a Radicale is started in a temp dir. With ``--url`` the server must
serve principals at ``/{email}/`` for first@, second@ and third@example.com to the given
service account (their calendars and contacts folders are created). Each fixture of
``tests/fixtures`` goes mail → CRM (rep 1), CRM → mail (rep 2's mailbox) and that item
back to the CRM (rep 3); then a CRM-side edit must leave every other line of rep 1's item
as the server stored it. The table lists, per path, the fields whose meaning changed; the
last line is "N of M items fully faithful". See tests/fidelity.py for what is compared.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common

from tests.fidelity import PATHS, fixture_names, run_corpus
from tests.servers import SERVICE_ACCOUNT, SERVICE_PASSWORD, DavServerInfo, start_radicale

REPS = ("first@example.com", "second@example.com", "third@example.com")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running DAV server (default: start a Radicale)")
    parser.add_argument("--user", default=SERVICE_ACCOUNT)
    parser.add_argument("--password", default=SERVICE_PASSWORD)
    parser.add_argument("--only", default="", help="only fixtures whose name contains this")
    args = parser.parse_args()
    names = [
        n for n in fixture_names("events") + fixture_names("contacts") if args.only in n
    ]
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
    rows = []
    for result in results:
        cells = [result.name]
        for path in PATHS:
            changed = result.paths[path]
            cells.append(changed if isinstance(changed, str) else ", ".join(changed) or "none")
        kept = {True: "yes", False: "NO", None: "-"}[result.unmapped_kept]
        cells += [kept, result.server_note or "-"]
        rows.append(cells)
    # Cells name the fields whose meaning changed on that path ("none": all survived).
    columns = ["Fixture", "mail→CRM", "CRM→mail", "round trip", "edit keeps rest", "server"]
    common.print_table("Fields that survived each path", columns, rows)
    faithful = sum(r.faithful for r in results)
    print(f"{faithful} of {len(results)} items fully faithful")
    unfaithful = [r for r in results if not r.faithful]
    for result in unfaithful:
        print(f"  not faithful: {result.name} ({result.server_note or 'crmsync'})")


if __name__ == "__main__":
    main()
