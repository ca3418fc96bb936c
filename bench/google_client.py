"""Google Calendar client library choice: CPU per event listed, google-api-python-client
against crmsync's httpx + json path (issue 15).

Both list every event of one rep's primary calendar (``singleEvents=false``, pages of
1,000, the backend's page size) from the fake Calendar v3 served on 127.0.0.1 by this
(parent) process, with the same bearer token, and keep the parsed JSON rows. crmsync's
path is `event_api.list_events` over `GoogleConnection` (httpx); the library's is
``build("calendar", "v3", static_discovery=True)`` (the discovery document it ships, no
network) and ``events().list(...).execute()`` page by page over httplib2. Only the
child's own CPU is counted (the fake's is the parent's); the library's ``build`` is timed
apart, as it is paid once per process. Each phase is a fresh process; the pairs are
interleaved (bench/pairs.py).

    python bench/google_client.py --items 5000 --pairs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import common
import httpx
import pairs

from crmsync.groupware.google import GoogleConfig, GoogleConnection, event_api
from crmsync.service.mailboxes import google_config
from tests.groupware.google.fake_google import CALENDAR, PEOPLE, FakeGoogle, service_account_key
from tests.groupware.google.fake_server import FakeGoogleServer
from tests.service.google_world import google_settings

REP = "rep@example.com"
PAGE = event_api.PAGE_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000, help="events in the calendar")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved pairs (>= 3)")
    parser.add_argument("--child", choices=("httpx", "library"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import tempfile
    from pathlib import Path

    fake = FakeGoogle(page_size=PAGE)
    key = service_account_key()
    seed(fake, key, args.items)
    server = FakeGoogleServer(fake)
    try:
        with tempfile.TemporaryDirectory(prefix="crmsync-bench-") as tmp:
            key_file = Path(tmp) / "key.json"
            key_file.write_text(key)
            base = ["--url", server.url, "--key-file", str(key_file)]
            found = list(
                pairs.interleaved(
                    args.pairs,
                    lambda k: pairs.run_child(__file__, [*base, "--child", "library"], "library"),
                    lambda k: pairs.run_child(__file__, [*base, "--child", "httpx"], "httpx"),
                )
            )
    finally:
        server.stop()
    report(args, found)


def seed(fake: FakeGoogle, key: str, items: int) -> None:
    """``items`` timed events with a location, a description, three attendees and
    crmsync's marker, as the backend writes them (through the fake's transport)."""
    config = GoogleConfig(key_json=key, calendar_url=CALENDAR, people_url=PEOPLE)
    client = httpx.Client(transport=fake.transport())
    connection = GoogleConnection(config, client)
    start = dt.datetime(2030, 1, 7, 8, tzinfo=dt.UTC)
    for n in range(items):
        begins = start + dt.timedelta(hours=n)
        body = {
            "summary": f"Meeting {n} about the renewal",
            "location": f"Room {n % 40}",
            "description": "Agenda: pricing, timeline, next steps. " * 4,
            "start": {"dateTime": begins.isoformat(), "timeZone": "Europe/Paris"},
            "end": {
                "dateTime": (begins + dt.timedelta(hours=1)).isoformat(),
                "timeZone": "Europe/Paris",
            },
            "attendees": [
                {"email": f"guest{n % 97}.{i}@example.org", "displayName": f"Guest {i}"}
                for i in range(3)
            ],
            "extendedProperties": {"private": {"crmsync": f"marker-{n}"}},
        }
        answer = event_api.insert(connection, REP, body, notify=False)
        assert answer.ok, answer.body
    connection.close()


def child(args: argparse.Namespace) -> None:
    from pathlib import Path

    key = Path(args.key_file).read_text()
    connection = GoogleConnection(google_config(google_settings(args.url), key))
    token = connection.tokens.token(REP, "calendar")  # minted before the clock starts
    build_cpu = import_cpu = 0.0
    if args.child == "httpx":
        with pairs.TimedBlock(None) as timed:
            rows, _ = event_api.list_events(connection, REP)
    else:
        cpu0 = time.process_time()
        import google.oauth2.credentials
        import google_auth_httplib2
        import httplib2
        from googleapiclient.discovery import build

        import_cpu = time.process_time() - cpu0
        credentials = google.oauth2.credentials.Credentials(token)
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http())
        cpu0 = time.process_time()
        service = build(
            "calendar",
            "v3",
            http=http,
            static_discovery=True,
            client_options={"api_endpoint": args.url + "/calendar/v3/"},
        )
        build_cpu = time.process_time() - cpu0
        with pairs.TimedBlock(None) as timed:
            rows, page_token = [], None
            while True:
                page = (
                    service.events()
                    .list(
                        calendarId="primary",
                        maxResults=PAGE,
                        singleEvents=False,
                        pageToken=page_token,
                    )
                    .execute()
                )
                rows += page.get("items", [])
                page_token = page.get("nextPageToken")
                if not page_token:
                    break
    connection.close()
    pairs.emit(
        {**timed.as_dict(), "items": len(rows), "build_cpu": build_cpu, "import_cpu": import_cpu}
    )


def report(args: argparse.Namespace, found: list[tuple[pairs.Phase, pairs.Phase, str]]) -> None:
    for library, ours, _ in found:
        assert library["items"] == ours["items"] == args.items, (library["items"], ours["items"])
    per_item = pairs.Ratio(
        "CPU per event (library / httpx)", [lib["cpu"] / own["cpu"] for lib, own, _ in found]
    )
    wall = pairs.Ratio(
        "wall (library / httpx)", [lib["wall"] / own["wall"] for lib, own, _ in found]
    )

    def median(values: list[float]) -> float:
        return pairs.Ratio("", values).median

    rows = [
        [
            "httpx + json (crmsync)",
            common.fmt(median([own["cpu"] * 1e6 / args.items for _, own, _ in found])),
            common.fmt(median([own["wall"] for _, own, _ in found])),
            common.fmt(median([own["max_rss_mb"] for _, own, _ in found])),
            "-",
            "-",
        ],
        [
            "google-api-python-client",
            common.fmt(median([lib["cpu"] * 1e6 / args.items for lib, _, _ in found])),
            common.fmt(median([lib["wall"] for lib, _, _ in found])),
            common.fmt(median([lib["max_rss_mb"] for lib, _, _ in found])),
            common.fmt(median([lib["import_cpu"] * 1e3 for lib, _, _ in found])),
            common.fmt(median([lib["build_cpu"] * 1e3 for lib, _, _ in found])),
        ],
    ]
    common.print_table(
        f"Listing {args.items:,} events, pages of {PAGE} ({args.pairs} interleaved pairs, each "
        "phase a fresh process; medians over the pairs; client CPU only)",
        [
            "client",
            "CPU µs per event",
            "wall s",
            "max RSS MB",
            "import CPU ms",
            "build() CPU ms (once per process)",
        ],
        rows,
    )
    common.print_table(
        "Ratios pair by pair",
        ["ratio", "median", "spread (min-max)", "per pair", "target", "verdict"],
        pairs.ratio_rows([per_item, wall]),
    )
    print(pairs.load_note([p for pair in found for p in pair[:2]]))
    print("SUMMARY google client: " + per_item.summary())


if __name__ == "__main__":
    main()
