"""`crmsync demo`: a local Radicale, a sample org, an initial sync, then live syncing.

Everything lives under the demo folder (``<home>/demo``): the SQLite databases, the
Radicale data and the generated passwords, so a second run picks up where the first
stopped and a person can keep editing in a real calendar client.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import socket
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress

from crmsync.admin.reports import describe_action, print_report, status_table, subject_of
from crmsync.domain.records import (
    Address,
    Attendee,
    Contact,
    Event,
    EventTiming,
    Lead,
    Occurrence,
    Recurrence,
    User,
)
from crmsync.domain.settings import EventSettings, OrgSettings, SyncConfig
from crmsync.engine.executor import ActionListener
from crmsync.engine.planner import Action
from crmsync.groupware.dav.local_server import LocalRadicale, free_port
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

SERVICE_ACCOUNT = "crmsync-service"
REPS = (
    ("ann@example.com", "Ann Archer", "Europe/Berlin"),
    ("ben@example.com", "Ben Brook", "America/New_York"),
    ("cho@example.com", "Cho Chen", "Asia/Kolkata"),
)


def run_demo(
    home: Path, console: Console, *, cycles: int | None, interval: float, port: int
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(
        home, f"sqlite:///{home / 'state.sqlite'}", f"sqlite:///{home / 'crm.sqlite'}"
    )
    passwords = _passwords(home / "passwords.json")
    server = LocalRadicale(
        home / "radicale",
        passwords,
        SERVICE_ACCOUNT,
        port=port if _port_free(port) else free_port(),
    )
    with server, SyncService(deployment) as service:
        if set_up_demo_org(service, server.url, passwords[SERVICE_ACCOUNT]):
            console.print("Created a sample org: 3 reps, their contacts, leads and events.")
        _initial_sync(service, console)
        console.print(status_table(service, service.reps()))
        _print_access(console, server.url, passwords)
        _live(service, console, cycles, interval)


def set_up_demo_org(service: SyncService, server_url: str, password: str) -> bool:
    """Point ``service``'s org at the demo's DAV server and, on the first run, create the
    sample org; whether it was created."""
    service.configure_server(
        OrgSettings(
            server_url=server_url, service_account=SERVICE_ACCOUNT, principal_path="/{email}/"
        ),
        password,
    )
    if service.crm.list_users():
        return False
    seed_sample_org(service)
    return True


def _initial_sync(service: SyncService, console: Console) -> None:
    total = sum(
        len(service.crm.list_contacts(owner_id=u.id)) + len(service.crm.list_events(owner_id=u.id))
        for u in service.reps()
    )
    with Progress(console=console) as progress:
        task = progress.add_task("Initial sync", total=max(total, 1))

        def listener(user: User) -> ActionListener:
            def advance(action: Action, error: str | None) -> None:
                progress.advance(task)

            return advance

        reports = service.sync_all(listener)
        progress.update(task, completed=max(total, 1))
    for report in reports:
        print_report(console, report)


def _live(service: SyncService, console: Console, cycles: int | None, interval: float) -> None:
    console.print(
        f"\nSyncing every {interval:g} s until Ctrl-C. Edit in a calendar client, or in "
        f"the CRM: crmsync --home {service.deployment.home} crm list contacts\n"
    )

    def listener(user: User) -> ActionListener:
        def show(action: Action, error: str | None) -> None:
            line = describe_action(action, subject_of(action))
            if line:
                stamp = dt.datetime.now().strftime("%H:%M:%S")
                suffix = f" [red]failed: {error}[/red]" if error else ""
                console.print(f"{stamp} {user.email}: {line}{suffix}")

        return show

    done = 0
    try:
        while cycles is None or done < cycles:
            time.sleep(interval)
            for report in service.sync_all(listener):
                if report.error:
                    console.print(f"[red]{report.rep.email}: {report.error}[/red]")
            done += 1
    except KeyboardInterrupt:
        console.print("Stopped.")


def _print_access(console: Console, url: str, passwords: dict[str, str]) -> None:
    console.print(
        "\nOpen a rep's calendar and contacts in a CalDAV/CardDAV client "
        "(Thunderbird, Evolution, khal):"
    )
    console.print(f"  server: {url}/")
    for email, _name, _zone in REPS:
        console.print(
            f"  user: {email}  password: {passwords[email]}  "
            f"calendar: {url}/{email}/  contacts: the 'CRM_Sync' address book"
        )


def _passwords(path: Path) -> dict[str, str]:
    if path.exists():
        return json.loads(path.read_text())
    passwords = {
        name: secrets.token_urlsafe(9) for name in (SERVICE_ACCOUNT, *(r[0] for r in REPS))
    }
    path.write_text(json.dumps(passwords))
    path.chmod(0o600)
    return passwords


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def seed_sample_org(service: SyncService) -> None:
    """Three reps with contacts, leads and events; one configuration for all of them."""
    crm = service.crm
    sales = crm.create_profile("Sales")
    today = dt.date.today()
    monday = today + dt.timedelta(days=7 - today.weekday())
    users = [
        crm.create_user(email, name, profile_id=sales.id, time_zone=zone)
        for email, name, zone in REPS
    ]
    for index, user in enumerate(users):
        contacts = _sample_contacts(index)
        stored = [crm.create_contact(user.id, contact) for contact in contacts]
        crm.create_lead(
            user.id,
            Lead(
                first_name="Lena",
                last_name=f"Lead{index}",
                company="Prospect GmbH",
                email=f"lena{index}@prospect.test",
            ),
        )
        zone = ZoneInfo(user.time_zone)
        start = dt.datetime.combine(monday + dt.timedelta(days=index), dt.time(10), zone)
        meeting = crm.create_event(
            user.id,
            Event(
                subject=f"Discovery call with {contacts[0].display_name}",
                timing=_timing(start, 1, user.time_zone),
                location="Phone",
                attendees=(Attendee(contacts[0].email, contacts[0].display_name),),
            ),
        )
        crm.relate_event(meeting.id, contact_id=stored[0].id)
    ann = users[0]
    berlin = "Europe/Berlin"
    series_start = dt.datetime.combine(monday, dt.time(9), ZoneInfo(berlin))
    crm.create_event(
        ann.id,
        Event(
            subject="Weekly pipeline review",
            timing=_timing(series_start, 1, berlin),
            location="Room 3",
            recurrence=Recurrence(
                rule="FREQ=WEEKLY;COUNT=8",
                exdates=(_utc(series_start + dt.timedelta(weeks=2)),),
                overrides=(
                    Occurrence(
                        recurrence_id=_utc(series_start + dt.timedelta(weeks=1)),
                        timing=_timing(series_start + dt.timedelta(weeks=1, hours=2), 1, berlin),
                        subject="Weekly pipeline review (moved)",
                        location="Room 3",
                    ),
                ),
            ),
        ),
    )
    crm.create_event(
        ann.id,
        Event(
            subject="Trade fair",
            timing=EventTiming(monday + dt.timedelta(days=14), monday + dt.timedelta(days=17)),
            location="Messe Frankfurt",
            categories=("CRM",),
        ),
    )
    crm.create_event(
        ann.id,
        Event(
            subject="Dentist",
            is_private=True,
            timing=_timing(
                dt.datetime.combine(monday + dt.timedelta(days=3), dt.time(8), ZoneInfo(berlin)),
                1,
                berlin,
            ),
        ),
    )
    crm.create_event(
        ann.id,
        Event(
            subject="Call with the New York office",
            timing=_timing(
                dt.datetime.combine(
                    monday + dt.timedelta(days=2), dt.time(11), ZoneInfo("America/New_York")
                ),
                1,
                "America/New_York",
            ),
        ),
    )
    service.store.save_config(
        SyncConfig(
            name="Sales Reps",
            description="All sales reps: contacts and events both ways",
            profile_ids=(sales.id,),
            events=EventSettings(sync_private=True),
        )
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _timing(start: dt.datetime, hours: int, zone: str) -> EventTiming:
    return EventTiming(_utc(start), _utc(start + dt.timedelta(hours=hours)), zone)


_COMPANIES = ("Analytical Engines", "Cobol Corp", "Bletchley Ltd", "Shortest Path BV")


def _sample_contacts(index: int) -> list[Contact]:
    firsts = ("Ada", "Grace", "Alan", "Edsger")
    lasts = ("Lovelace", "Hopper", "Turing", "Dijkstra")
    contacts = []
    for n, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
        contacts.append(
            Contact(
                first_name=first,
                last_name=f"{last}-{index}",
                title=("CTO", "VP Engineering", "Buyer", "Founder")[n],
                account_name=(
                    "Analytical Engines",
                    "Cobol Corp",
                    "Bletchley Ltd",
                    "Shortest Path BV",
                )[n],
                email=f"{first.lower()}.{index}@customer.test",
                phone=f"+49 30 1234 {index}{n}0",
                mobile_phone=f"+49 170 555 {index}{n}1",
                mailing_address=Address("Hauptstraße 1", "Berlin", "", "10115", "Germany"),
                birthdate=dt.date(1970 + n, 1 + n, 10 + n),
                description="Met at the trade fair.\nPrefers email.",
                is_person_account=(n == 3),
            )
        )
    return contacts
