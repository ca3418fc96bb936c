"""Shared pieces of the benchmark scripts: servers, data, seeding, meters, tables.

Not a test module: the scripts under ``bench/`` import it (they run as
``python bench/NAME.py`` from the repository root, so this folder is on ``sys.path``;
this module puts the repository root there too, for ``crmsync`` and ``tests.servers``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crmsync.crm.builtin import BuiltinCrm, writes  # noqa: E402
from crmsync.crm.builtin.rows import OwnedKind  # noqa: E402
from crmsync.domain.records import (  # noqa: E402
    Address,
    Attendee,
    AttendeeStatus,
    Contact,
    Event,
    EventTiming,
    ItemKind,
    Occurrence,
    Recurrence,
    ShowAs,
    User,
)
from crmsync.domain.settings import OrgSettings, SyncConfig  # noqa: E402
from crmsync.groupware.dav.collection import item_name  # noqa: E402
from crmsync.groupware.dav.ical import render_new_ical  # noqa: E402
from crmsync.groupware.dav.local_server import LocalRadicale  # noqa: E402
from crmsync.groupware.dav.multistatus import (  # noqa: E402
    mkcalendar_body,
    mkcol_addressbook_body,
)
from crmsync.groupware.dav.vcard import render_new_vcard  # noqa: E402
from crmsync.service.deployment import Deployment  # noqa: E402
from crmsync.service.runner import SyncService  # noqa: E402
from crmsync.store import schema  # noqa: E402

SERVICE_ACCOUNT = "crmsync-service"
SERVICE_PASSWORD = "service-secret"
REP_PASSWORD = "rep-secret"
UTC = dt.UTC
SERVERS = ("radicale", "xandikos", "sabredav")


# ---------------------------------------------------------------------------- arguments


def arguments(description: str, *, items: int, reps: int = 1) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--server", choices=SERVERS, default="radicale")
    parser.add_argument("--reps", type=int, default=reps, help="reps (CRM users) to sync")
    parser.add_argument(
        "--items", type=int, default=items, help="contacts per rep, and as many events per rep"
    )
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--user", default=SERVICE_ACCOUNT, help="service account (with --url)")
    parser.add_argument("--password", default=SERVICE_PASSWORD, help="its password (--url)")
    parser.add_argument(
        "--principal-path",
        help="principal path template (default: /{email}/ for Radicale, /user/ for Xandikos)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the sample data")
    return parser


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A DAV server to benchmark against, and (when we started it) its process."""

    name: str
    url: str
    username: str
    password: str
    principal_path: str
    process: psutil.Process | None
    data_dir: Path | None = None
    stop: Callable[[], None] = lambda: None

    def settings(self) -> OrgSettings:
        return OrgSettings(
            server_url=self.url, service_account=self.username, principal_path=self.principal_path
        )

    def cpu_seconds(self) -> float:
        """User + system CPU the server process (and its children) used so far; NaN
        without a process of ours or once it is gone."""
        if self.process is None or not self.process.is_running():
            return float("nan")
        return tree_cpu([self.process])

    def raw_home(self) -> str:
        """A server-absolute folder where the raw loop may create its own collections."""
        if self.name == "xandikos":
            return "/user/"
        return f"/{self.username}/"


def rep_emails(count: int, server: str = "") -> list[str]:
    """The reps' addresses; SabreDAV's setup knows only its own reps (ann, bob)."""
    if server == "sabredav":
        from tests.sabredav import REPS

        if count > len(REPS):
            raise SystemExit(f"SabreDAV's setup has {len(REPS)} reps: run it with --reps 1")
        return list(REPS)[:count]
    return [f"rep{i}@example.com" for i in range(count)]


def sabredav_missing() -> str | None:
    """Why SabreDAV cannot run here (its test helper has not landed, PHP is missing ...)."""
    try:
        from tests.sabredav import sabredav_missing as missing
    except ImportError as exc:
        return f"SabreDAV support (tests/sabredav.py) is not in this checkout ({exc})"
    return missing()


def _child_listening_on(port: int) -> psutil.Process | None:
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(str(port) in part for part in child.cmdline()):
                return child
    return None


@contextlib.contextmanager
def dav_server(args: argparse.Namespace, workdir: Path, emails: Sequence[str]) -> Iterator[Server]:
    """The server the arguments name: started under ``workdir`` unless ``--url`` is given."""
    default_principal = "/user/" if args.server == "xandikos" else "/{email}/"
    principal = args.principal_path or default_principal
    if args.url:
        yield Server(args.server, args.url.rstrip("/"), args.user, args.password, principal, None)
        return
    if args.server == "radicale":
        users = {SERVICE_ACCOUNT: SERVICE_PASSWORD, **dict.fromkeys(emails, REP_PASSWORD)}
        radicale = LocalRadicale(workdir / "radicale", users, SERVICE_ACCOUNT).start()
        try:
            yield Server(
                "radicale",
                radicale.url,
                SERVICE_ACCOUNT,
                SERVICE_PASSWORD,
                principal,
                _child_listening_on(radicale.port),
                workdir / "radicale",
                radicale.stop,
            )
        finally:
            radicale.stop()
        return
    if args.server == "sabredav":
        yield from _sabredav(args, workdir)
        return
    if len(emails) > 1 and principal == "/user/":
        raise SystemExit("Xandikos serves one principal (/user/): run it with --reps 1")
    from tests.servers import XandikosServer

    xandikos = XandikosServer(workdir / "xandikos").start()
    try:
        yield Server(
            "xandikos",
            xandikos.url,
            SERVICE_ACCOUNT,
            SERVICE_PASSWORD,
            principal,
            _child_listening_on(xandikos.port),
            workdir / "xandikos",
            xandikos.stop,
        )
    finally:
        xandikos.stop()


def _sabredav(args: argparse.Namespace, workdir: Path) -> Iterator[Server]:
    missing = sabredav_missing()
    if missing:
        raise SystemExit(f"SabreDAV cannot run here: {missing}")
    from tests import sabredav

    sabre = sabredav.SabreDavServer(workdir / "sabredav").start()
    try:
        yield Server(
            "sabredav",
            sabre.url,
            sabredav.SERVICE_ACCOUNT,
            sabredav.SERVICE_PASSWORD,
            args.principal_path or sabredav.PRINCIPAL_PATH,
            _child_listening_on(sabre.port),
            None,
            sabre.stop,
        )
    finally:
        sabre.stop()


# ---------------------------------------------------------------------------- sample data

_FIRST = (
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "François",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kateřina",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pedro",
    "Qing",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Víctor",
    "Wen",
    "Xavier",
    "Yuki",
    "Zoë",
)
_LAST = (
    "Müller",
    "Smith",
    "O'Brien",
    "García",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Johansson",
    "Yamamoto",
    "van der Berg",
    "Okafor",
    "Ivanova",
    "Silva",
    "Cohen",
    "Andersen",
    "Schmidt",
    "Larsen",
    "Novak",
    "Papadopoulos",
)
_COMPANIES = (
    "Acme Corp",
    "Globex, Inc.",
    "Initech",
    "Umbrella GmbH",
    "Stark Industries",
    "Wayne Enterprises",
    "Müller & Söhne KG",
    "Soylent; Ltd",
    "Tyrell Corp.",
)
_TITLES = ("VP Sales", "Buyer", "CTO", "Office Manager", "Procurement Lead", "CEO", "")
_DEPARTMENTS = ("Sales", "Purchasing", "IT", "Finance", "", "R&D")
_CITIES = (
    ("Berlin", "BE", "10115", "Germany"),
    ("New York", "NY", "10001", "USA"),
    ("Tokyo", "", "100-0001", "Japan"),
    ("São Paulo", "SP", "01000-000", "Brazil"),
    ("London", "", "EC1A 1BB", "United Kingdom"),
)
_SUBJECTS = (
    "Quarterly review",
    "Demo: new pricing",
    "Call re: renewal",
    "Lunch",
    "Kick-off, phase 2",
    "Contract signing; final",
    "Site visit",
    "Pipeline sync",
)
_ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
)


def make_contact(rng: random.Random, n: int) -> Contact:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state, postal, country = rng.choice(_CITIES)
    return Contact(
        first_name=first,
        last_name=last,
        salutation=rng.choice(("Mr.", "Ms.", "Dr.", "")),
        title=rng.choice(_TITLES),
        department=rng.choice(_DEPARTMENTS),
        account_name=rng.choice(_COMPANIES),
        email=f"{first.lower()[:3]}.{n}@{rng.choice(('example.org', 'example.net'))}",
        phone=f"+49 30 {rng.randrange(1000000, 9999999)}",
        mobile_phone=f"+1 212 555 {rng.randrange(1000, 9999)}" if rng.random() < 0.7 else "",
        home_phone="",
        other_phone="",
        fax="+49 30 1234567" if rng.random() < 0.1 else "",
        mailing_address=Address(
            f"{rng.randrange(1, 300)} Main Street", city, state, postal, country
        ),
        other_address=Address(),
        birthdate=dt.date(1950 + rng.randrange(50), rng.randrange(1, 13), rng.randrange(1, 29))
        if rng.random() < 0.3
        else None,
        description="Met at the trade fair.\nPrefers email, not phone; German/English."
        if rng.random() < 0.3
        else "",
        is_person_account=rng.random() < 0.05,
    )


def make_event(rng: random.Random, n: int, owner_email: str) -> Event:
    # In the future, so the default date window (TODAY) keeps every event in scope.
    base = dt.datetime(2027, 1, 4, tzinfo=UTC) + dt.timedelta(hours=rng.randrange(0, 24 * 300))
    minutes = rng.choice((30, 45, 60, 90))
    roll = rng.random()
    if roll < 0.05:  # all day
        day = base.date()
        timing = EventTiming(day, day + dt.timedelta(days=1))
    elif roll < 0.35:  # written in another zone than UTC
        timing = EventTiming(base, base + dt.timedelta(minutes=minutes), rng.choice(_ZONES))
    else:
        timing = EventTiming(base, base + dt.timedelta(minutes=minutes))
    recurrence = None
    if n % 40 == 7 and not timing.all_day:  # a few series, some with an exception
        second = base + dt.timedelta(weeks=2)
        third = base + dt.timedelta(weeks=3)
        moved = third + dt.timedelta(hours=2)
        recurrence = Recurrence(
            "FREQ=WEEKLY;COUNT=10",
            exdates=(second,),
            overrides=(
                Occurrence(
                    third,
                    EventTiming(moved, moved + dt.timedelta(minutes=minutes), timing.tzid),
                    subject="Moved: weekly sync",
                ),
            ),
        )
    attendees = tuple(
        Attendee(f"guest{n}-{i}@example.org", f"Guest {i}", rng.choice(tuple(AttendeeStatus)))
        for i in range(rng.choice((0, 0, 1, 2, 3)))
    )
    return Event(
        subject=f"{rng.choice(_SUBJECTS)} #{n}",
        timing=timing,
        location=rng.choice(("", "Room 4.12", "Zoom", "Hauptstraße 5, Berlin")),
        description="Agenda:\n- numbers\n- next steps, owners" if rng.random() < 0.4 else "",
        is_private=False,
        show_as=rng.choice((ShowAs.BUSY, ShowAs.BUSY, ShowAs.FREE, ShowAs.TENTATIVE)),
        categories=("CRM",),
        attendees=attendees,
        organizer=owner_email if attendees else "",
        recurrence=recurrence,
    )


@dataclass
class Seeded:
    """The reps and the ids of the records seeded for each (same order as generated)."""

    reps: list[User]
    contacts: dict[str, list[tuple[str, Contact]]] = field(default_factory=dict)
    events: dict[str, list[tuple[str, Event]]] = field(default_factory=dict)

    @property
    def total_contacts(self) -> int:
        return sum(len(v) for v in self.contacts.values())

    @property
    def total_events(self) -> int:
        return sum(len(v) for v in self.events.values())


def seed_crm(
    crm: BuiltinCrm, emails: Sequence[str], items: int, seed: int, *, batch: int = 1000
) -> Seeded:
    """Create the reps and ``items`` contacts and ``items`` events for each, in batches of
    ``batch`` records per transaction (the CRM's own insert path, one transaction per batch
    instead of per record, for speed)."""
    rng = random.Random(seed)
    seeded = Seeded([crm.create_user(email, f"Rep {i}") for i, email in enumerate(emails)])
    for rep in seeded.reps:
        contacts = [make_contact(rng, n) for n in range(items)]
        events = [make_event(rng, n, rep.email) for n in range(items)]
        seeded.contacts[rep.id] = _insert(crm, OwnedKind.CONTACT, rep.id, contacts, batch)
        seeded.events[rep.id] = _insert(crm, OwnedKind.EVENT, rep.id, events, batch)
    return seeded


def _insert(
    crm: BuiltinCrm, kind: OwnedKind, owner: str, records: list[Any], batch: int
) -> list[tuple[str, Any]]:
    done: list[tuple[str, Any]] = []
    for start in range(0, len(records), batch):
        with crm.writing() as conn:
            for record in records[start : start + batch]:
                stored = writes.insert_record(conn, kind, owner, record)
                done.append((stored.id, record))
    return done


def configure(service: SyncService, server: Server, reps: Sequence[User]) -> None:
    service.configure_server(server.settings(), server.password)
    service.store.save_config(SyncConfig("bench", user_ids=tuple(r.id for r in reps)))


def open_service(home: Path) -> SyncService:
    home.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(
        home, f"sqlite:///{home / 'state.sqlite'}", f"sqlite:///{home / 'crm.sqlite'}"
    )
    return SyncService(deployment)


def render_contact(crm_id: str, contact: Contact) -> tuple[str, str]:
    """(resource name, text) exactly as crmsync would create it."""
    name = item_name(crm_id)
    return name + ".vcf", render_new_vcard(contact, crm_id, name)


def render_event(crm_id: str, event: Event) -> tuple[str, str]:
    name = item_name(crm_id)
    return name + ".ics", render_new_ical(event, crm_id, name)


# ---------------------------------------------------------------------------- raw HTTP


def raw_client(server: Server) -> httpx.Client:
    return httpx.Client(
        auth=httpx.BasicAuth(server.username, server.password),
        timeout=60.0,
        headers={"User-Agent": "crmsync-bench"},
    )


def make_collection(client: httpx.Client, server: Server, name: str, kind: str) -> str:
    """Create an empty address book (``kind="contacts"``) or calendar; its path."""
    path = server.raw_home() + name + "/"
    client.request("DELETE", server.url + path)
    xml = {"Content-Type": "application/xml; charset=utf-8"}
    if kind == "contacts":
        response = client.request(
            "MKCOL", server.url + path, headers=xml, content=mkcol_addressbook_body(name).encode()
        )
    else:
        response = client.request(
            "MKCALENDAR", server.url + path, headers=xml, content=mkcalendar_body(name).encode()
        )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"cannot create {path}: HTTP {response.status_code} {response.text}")
    return path


def put_items(
    client: httpx.Client,
    server: Server,
    path: str,
    items: Iterator[tuple[str, str]] | Sequence[tuple[str, str]],
    content_type: str,
) -> int:
    """PUT each (name, text) into ``path`` sequentially, If-None-Match: *; the request count."""
    count = 0
    headers = {"Content-Type": content_type, "If-None-Match": "*"}
    for name, text in items:
        response = client.put(
            server.url + path + name, content=text.encode("utf-8"), headers=headers
        )
        count += 1
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"PUT {name}: HTTP {response.status_code} {response.text[:300]}")
    return count


VCARD_TYPE = "text/vcard; charset=utf-8"
ICAL_TYPE = "text/calendar; charset=utf-8"


# ---------------------------------------------------------------------------- a rep's edits


def retitled(text: str, kind: ItemKind, title: str) -> str:
    """A server item's text with its job title (contact) or subject (event) set to
    ``title``: a rep's edit on the mail server."""
    lines = text.split("\r\n")
    if kind is ItemKind.CONTACT:
        lines = [line for line in lines if not line.startswith("TITLE")]
        lines.insert(lines.index("END:VCARD"), f"TITLE:{title}")
    else:
        at = next(i for i, line in enumerate(lines) if line.startswith("SUMMARY"))
        lines[at] = f"SUMMARY:{title}"
    return "\r\n".join(lines)


def retitle_in_crm(crm: BuiltinCrm, kind: ItemKind, crm_id: str, title: str) -> Contact | Event:
    """Set the CRM record's job title (contact) or subject (event) through the built-in
    CRM's own update, as a rep's edit in the CRM; the record as updated."""
    record: Contact | Event
    if kind is ItemKind.CONTACT:
        record = replace(crm.get_contact(crm_id).record, title=title)
        crm.update_record(OwnedKind.CONTACT, crm_id, record)
    else:
        record = replace(crm.get_event(crm_id).record, subject=title)
        crm.update_record(OwnedKind.EVENT, crm_id, record)
    return record


# ---------------------------------------------------------------------------- meters


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def max_rss_mb() -> float:
    """This process's lifetime peak RSS: ``VmHWM`` of its memory map where Linux has it.

    Not ``ru_maxrss`` there: a child started by ``subprocess`` (vfork + exec) inherits its
    parent's peak in ``ru_maxrss``, so a small phase would report its parent's size."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_cpu() -> float:
    """CPU of this process's terminated, waited-for children (subprocess.run ones)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(processes: Sequence[psutil.Process]) -> float:
    """User + system CPU of the processes and their living children so far (a process
    gone meanwhile counts nothing)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for p in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = p.cpu_times()
                    total += times.user + times.system
    return total


@dataclass
class Measured:
    label: str
    items: int
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = float("nan")
    requests: int | None = None
    peak_rss: float = float("nan")
    load: float = float("nan")  # mean 1-minute load average while it ran

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.wall else float("nan")

    @property
    def cpu_per_item(self) -> float:
        return self.cpu / self.items if self.items else float("nan")

    @property
    def server_cpu_per_item(self) -> float:
        return self.server_cpu / self.items if self.items else float("nan")

    @property
    def requests_per_item(self) -> float:
        if self.requests is None or not self.items:
            return float("nan")
        return self.requests / self.items


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0.0
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)
            if ticks % 100 == 0:
                self.loads.append(os.getloadavg()[0])
            ticks += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


@contextlib.contextmanager
def measure(
    label: str, items: int, server: Server | None = None, requests: Callable[[], int] | None = None
) -> Iterator[Measured]:
    """Time a block: wall clock, this process's CPU, the server's CPU, requests, peak RSS."""
    result = Measured(label, items)
    server_before = server.cpu_seconds() if server else float("nan")
    requests_before = requests() if requests else 0
    with PeakRss() as peak:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        yield result
        result.wall = time.perf_counter() - wall0
        result.cpu = time.process_time() - cpu0
    result.peak_rss = peak.peak
    result.load = sum(peak.loads) / len(peak.loads) if peak.loads else os.getloadavg()[0]
    if server is not None:
        result.server_cpu = server.cpu_seconds() - server_before
    if requests is not None:
        result.requests = requests() - requests_before


# ---------------------------------------------------------------------------- crmsync processes

# How long a pass of every rep through crmsync processes may take before a bench gives up
# (minutes at 1,000 reps; a pass that never ends means a process is stuck).
PASS_TIMEOUT = 1800.0
T = TypeVar("T")


def start_crmsync(argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``crmsync ARGV`` in a session of its own (`stop_processes` reaches its children
    too), its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from crmsync.admin.cli import main; main()", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM to every process's session at once, then up to ``timeout`` seconds each
    to finish (cycles in flight end first); SIGKILL for one still running."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(
    done: Callable[[], T | None],
    *,
    timeout: float,
    poll: float,
    what: Callable[[], str],
    check: Callable[[], None] = lambda: None,
) -> T:
    """``done()`` every ``poll`` seconds until it returns something, which is returned;
    ``check()`` between tries (it raises if a process the wait depends on died). After
    ``timeout`` seconds: SystemExit saying ``what()`` is not done."""
    deadline = time.monotonic() + timeout
    while (found := done()) is None:
        check()
        if time.monotonic() > deadline:
            raise SystemExit(f"{what()} not done after {timeout:.0f} s")
        time.sleep(poll)
    return found


def wait_for_pass(
    engine: Any,
    rep_ids: Sequence[str],
    since: dt.datetime,
    *,
    poll: float,
    timeout: float = PASS_TIMEOUT,
    check: Callable[[], None] = lambda: None,
) -> tuple[float, int]:
    """Seconds from ``since`` until every rep finished a cycle after it and gave its lease
    up (read from the state database ``engine``), and how many of those cycles ended in
    an error."""
    reps = schema.reps
    finished = select(reps.c.last_error).where(
        reps.c.rep_id.in_(rep_ids),
        reps.c.last_cycle_finished >= since,
        reps.c.lease_owner.is_(None),
    )
    done: list[Any] = []

    def all_done() -> tuple[float, int] | None:
        with engine.connect() as conn:
            done[:] = conn.execute(finished).all()
        if len(done) < len(rep_ids):
            return None
        wall = (dt.datetime.now(dt.UTC) - since).total_seconds()
        return wall, sum(1 for (error,) in done if error)

    return wait_until(
        all_done,
        timeout=timeout,
        poll=poll,
        what=lambda: f"pass ({len(done)} of {len(rep_ids)} reps)",
        check=check,
    )


# ---------------------------------------------------------------------------- output


def fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}g}"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table on a terminal-independent width (so logs keep every column)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(columns):
        # The first column names the row: never cut it.
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    Console(width=max(240, int(os.environ.get("COLUMNS", "0") or 0)), soft_wrap=False).print(table)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


@contextlib.contextmanager
def per_kind_meter(service: SyncService, server: Server) -> Iterator[dict[ItemKind, Measured]]:
    """Measure each engine ``sync_kind`` call (one rep, one kind) while the block runs.

    Wraps ``crmsync.service.rep_cycle.sync_kind`` for the block's duration (bench-only patch,
    no crmsync code changes); figures add up over reps; ``items`` counts writes.
    """
    import crmsync.service.rep_cycle as runner

    def requests() -> int:
        return service.mail_server().requests_made

    per_kind = {
        kind: Measured(f"{kind.value}s", 0, server_cpu=0.0, requests=0, peak_rss=0.0)
        for kind in runner.KINDS
    }
    per_kind_calls: dict[ItemKind, int] = dict.fromkeys(runner.KINDS, 0)
    original = runner.sync_kind

    def timed(rep_id: str, kind: ItemKind, *rest: Any) -> Any:
        with measure(kind.value, 0, server, requests) as m:
            result = original(rep_id, kind, *rest)
        acc = per_kind[kind]
        acc.items += result.total_writes
        acc.wall += m.wall
        acc.cpu += m.cpu
        acc.server_cpu += m.server_cpu
        acc.requests = (acc.requests or 0) + (m.requests or 0)
        acc.peak_rss = max(acc.peak_rss, m.peak_rss)
        acc.load = m.load if acc.load != acc.load else (acc.load + m.load) / 2
        per_kind_calls[kind] += 1
        return result

    runner.sync_kind = timed  # type: ignore[assignment]
    try:
        yield per_kind
    finally:
        runner.sync_kind = original


# ---------------------------------------------------------------------------- linked setups


@dataclass
class Linked:
    """A rep whose M contacts and M events exist on both sides and are linked."""

    service: SyncService
    seeded: Seeded
    server_seed: Measured
    pairing: Measured
    pairing_kinds: dict[ItemKind, Measured]
    how: str


def write_server_items(
    server: Server, path: str, items: Sequence[tuple[str, str]], content_type: str
) -> str:
    """Put items into a collection as fast as the server allows; says how it did it.

    Radicale (started by us): the item files are written straight into its storage folder,
    which Radicale reads as it would its own files. Otherwise: the raw PUT loop over HTTP.
    """
    if server.name == "radicale" and server.data_dir is not None:
        from urllib.parse import unquote

        folder = server.data_dir / "collections" / "collection-root" / unquote(path).strip("/")
        if not folder.is_dir():
            raise RuntimeError(f"no collection folder {folder}")
        for name, text in items:
            (folder / name).write_text(text, encoding="utf-8", newline="")
        _warm_radicale(server, path)
        return (
            "item files written into Radicale's storage folder, then listed once so "
            "Radicale builds its item cache as PUTs would have"
        )
    if server.name == "xandikos" and server.data_dir is not None:
        from urllib.parse import unquote

        folder = server.data_dir / "dav" / unquote(path).strip("/")
        if (folder / ".git").is_dir():
            _commit_into_git_collection(folder, items)
            return "item files committed in one git commit into Xandikos's collection repo"
    with raw_client(server) as client:
        put_items(client, server, path, items, content_type)
    return "raw PUT loop over HTTP"


def _warm_radicale(server: Server, path: str) -> None:
    """List a collection once (PROPFIND Depth 1, no time limit): Radicale caches each item
    it reads, and a PUT would have cached it. Without this, the first cycle's listing of a
    big seeded collection makes Radicale read every file (minutes at 50,000 items) and
    crmsync's request times out."""
    from crmsync.groupware.dav.multistatus import DAV, propfind_body, tag

    with raw_client(server) as client:
        response = client.request(
            "PROPFIND",
            server.url + path,
            timeout=None,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            content=propfind_body(tag(DAV, "getetag")).encode(),
        )
    if response.status_code != 207:
        raise RuntimeError(f"PROPFIND {path}: HTTP {response.status_code}")


def _commit_into_git_collection(folder: Path, items: Sequence[tuple[str, str]]) -> None:
    """Add the items to a Xandikos tree-git collection as files plus one commit (Xandikos
    itself commits once per PUT, which makes bulk seeding quadratic)."""
    from dulwich.index import index_entry_from_stat
    from dulwich.objects import Blob
    from dulwich.repo import Repo

    repo = Repo(str(folder))
    index = repo.open_index()
    for name, text in items:
        data = text.encode("utf-8")
        target = folder / name
        target.write_bytes(data)
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        index[name.encode("utf-8")] = index_entry_from_stat(os.lstat(target), blob.id)
    index.write()
    tree = index.commit(repo.object_store)
    repo.get_worktree().commit(message=b"crmsync bench: seed items", tree=tree)


def linked_setup(server: Server, home: Path, items: int, seed: int) -> Linked:
    """Seed the CRM with one rep's M contacts + M events, put the same items (rendered by
    crmsync, carrying their CRM ids as markers) on the server, then run the first cycle,
    which lists and downloads everything and pairs the items by marker (no writes)."""
    service = open_service(home)
    seeded = seed_crm(service.crm, rep_emails(1, server.name), items, seed)
    configure(service, server, seeded.reps)
    rep = seeded.reps[0]
    mailbox = service.mail_server().open(rep.email)
    facts = mailbox.facts  # type: ignore[attr-defined]
    with measure("server seed", 2 * items, server) as seeding:
        how = write_server_items(
            server,
            facts.addressbook,
            [render_contact(i, c) for i, c in seeded.contacts[rep.id]],
            VCARD_TYPE,
        )
        write_server_items(
            server,
            facts.calendar,
            [render_event(i, e) for i, e in seeded.events[rep.id]],
            ICAL_TYPE,
        )

    def requests() -> int:
        return service.mail_server().requests_made

    with (
        per_kind_meter(service, server) as kinds,
        measure("pairing cycle", 2 * items, server, requests) as pairing,
    ):
        reports = service.sync_all()
    for r in reports:
        if r.error:
            raise RuntimeError(f"first cycle failed: {r.error}")
    writes_done = sum(r.writes for r in reports)
    linked = sum(service.store.count_links(rep.id, k) for k in (ItemKind.CONTACT, ItemKind.EVENT))
    if linked != 2 * items:
        print(f"WARNING: {linked} links after the first cycle, expected {2 * items}")
    if writes_done:
        print(f"NOTE: the first cycle wrote {writes_done} item(s) (expected 0: pairing only)")
    return Linked(service, seeded, seeding, pairing, kinds, how)


def machine_note() -> str:
    """CPUs and load averages: other processes on the machine skew wall-clock figures."""
    one, five, _ = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, load average {one:.1f} (1 min) / {five:.1f} "
        "(5 min) at the end; a load above the CPU count means other processes competed "
        "with the client and the server, so wall-clock rates are noisy (CPU figures less so)"
    )
