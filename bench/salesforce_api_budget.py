"""Salesforce API calls per sync cycle for N reps: the org-wide feed vs. per-rep polling.

    python bench/salesforce_api_budget.py [--reps 10,100] [--items 20] [--cycles 10]
        [--churn 0.01] [--write-reps 10,100]

For each N (fresh fake org on 127.0.0.1, the test suite's `FakeSalesforce`): N reps with
M contacts and M events each. Each rep's contact and event sides list everything once
(the initial cycle, not counted). Then C cycles at one a minute (an injected clock, no
waiting): before each, people edit ``churn`` of the org's records in Salesforce (no API
call counted), then every rep's change detection runs, in the same run two ways:

- shared: what crmsync does, one `SalesforceCrm` for the org; each rep's
  ``ContactSide.changes`` / ``EventSide.changes`` from its cursor (the feed polls each
  object once per interval for everyone; users re-read every 5 minutes);
- naive: a per-rep poller, one ``queryAll`` per object per rep per cycle
  (``OwnerId = rep AND SystemModstamp >= cursor``).

Counted: API calls the fake answered (token requests are not API calls). The day
columns assume one cycle a minute (1,440 a day) and an Enterprise org's allocation of
100,000 + 1,000 per licence (a licence per rep). The goal of issue 11: 1,000 reps at
one-minute cycles in under 25 % of that allocation.

Writes (``--write-reps``, a second table): each rep's mailbox (in memory) holds M contacts
and M events the org lacks; full engine cycles (`sync_kind`) write them into Salesforce
(the initial sync), then C cycles a minute apart each follow ``churn`` of the mailbox
items edited. Two ways in the same run: batched, as crmsync writes (the sides'
``create_many`` ..., 200 records per collection call), and one by one (the same sides
with only the item-by-item methods, as before batching). Counted: every API call of
those cycles, reads and writes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests/

from crmsync.crm.salesforce import RetryPolicy, SalesforceConfig, SalesforceCrm
from crmsync.crm.salesforce.query import datetime_literal, query_all, quote
from crmsync.crm.salesforce.versions import cursor_watermark, parse_instant
from crmsync.domain.records import Contact, Event, EventTiming, ItemKind, Record
from crmsync.domain.sync import Changes, Seen, Written
from crmsync.engine.cycle import sync_kind
from crmsync.engine.planner import Policy
from crmsync.engine.ports import ItemSide
from tests.crm.salesforce.fake_org import FakeOrg, sf_instant
from tests.crm.salesforce.fake_server import FakeSalesforce, new_key_pair
from tests.engine.memory import MemorySide, MemoryState

CYCLES_PER_DAY = 24 * 60
BASE_ALLOCATION = 100_000
PER_LICENCE = 1_000
GOAL_SHARE = 0.25
HOUR_MS = 3_600_000


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


class BenchOrg(FakeOrg):
    """The fake org, its SystemModstamps taken from a simulated wall clock (so a minute
    between cycles is a minute in the stamps the feed's overlap window reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.wall = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def stamp(self) -> str:
        now = max(self.wall, self._last_stamp + dt.timedelta(milliseconds=1))
        self._last_stamp = now
        return sf_instant(now)


@dataclass
class Result:
    reps: int
    mode: str
    calls: int
    cycles: int

    @property
    def per_cycle(self) -> float:
        return self.calls / self.cycles

    @property
    def per_rep_cycle(self) -> float:
        return self.per_cycle / self.reps

    @property
    def per_day(self) -> float:
        return self.per_cycle * CYCLES_PER_DAY

    @property
    def share(self) -> float:
        return self.per_day / (BASE_ALLOCATION + PER_LICENCE * self.reps)


def seed(org: FakeOrg, reps: int, items: int) -> list[str]:
    profile = org.add_profile("Sales")
    org.add_user("integration@example.com", "Integration")
    rep_ids = []
    for r in range(reps):
        rep = org.add_user(f"rep{r}@example.com", f"Rep {r}", profile_id=profile)
        rep_ids.append(rep)
        for n in range(items):
            org.create("Contact", {"LastName": f"C{r}-{n}", "OwnerId": rep})
            hour = 1_900_000_000_000 + (r * items + n) * HOUR_MS  # 2030, an hour apart
            start = _instant(hour)
            org.create(
                "Event",
                {
                    "Subject": f"E{r}-{n}",
                    "StartDateTime": start,
                    "EndDateTime": _instant(hour + HOUR_MS // 2),
                    "OwnerId": rep,
                },
            )
    return rep_ids


def _instant(ms: int) -> str:
    return sf_instant(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def churn(org: FakeOrg, rng: random.Random, share: float, cycle: int) -> int:
    """Edit ``share`` of the org's contacts and events, as people in Salesforce do."""
    edited = 0
    for sobject, field in (("Contact", "Title"), ("Event", "Location")):
        ids = [i for i, row in org.rows[sobject].items() if not row["IsDeleted"]]
        for record_id in rng.sample(ids, max(1, round(len(ids) * share))):
            org.edit(record_id, **{field: f"edit {cycle}"})
            edited += 1
    return edited


def run(reps: int, items: int, cycles: int, share: float, seed_value: int) -> list[Result]:
    pem, public = new_key_pair()
    org = BenchOrg()
    rep_ids = seed(org, reps, items)
    fake = FakeSalesforce(org, public_key=public).start()
    clock = Clock()
    config = SalesforceConfig(
        instance_url=fake.url,
        client_id=fake.client_id,
        username="integration@example.com",
        private_key_pem=pem,
    )
    crm = SalesforceCrm(config, retry=RetryPolicy(), poll_interval=60.0, clock=clock)
    rng = random.Random(seed_value)
    try:
        kinds = (ItemKind.CONTACT, ItemKind.EVENT)
        sides = {(rep, kind): crm.side(rep, kind) for rep in rep_ids for kind in kinds}
        cursors = {key: side.changes(None, {}).cursor for key, side in sides.items()}
        naive: dict[tuple[str, ItemKind], dt.datetime] = {}
        for key, cursor in cursors.items():
            since = cursor_watermark(cursor)
            assert since is not None
            naive[key] = since
        fields = {"Contact": crm.contact_fields(), "Event": crm.event_fields()}
        shared_calls = naive_calls = 0
        org.wall += dt.timedelta(minutes=10)  # the day goes on after the initial sync
        # Cycle 0 warms up: its feed read still spans the overlap back to the initial
        # listing. Cycles 1..C are counted.
        for cycle in range(cycles + 1):
            clock.now += 60.0
            org.wall += dt.timedelta(minutes=1)
            churn(org, rng, share, cycle)
            if cycle == 0:
                for key, side in sides.items():
                    cursors[key] = side.changes(cursors[key], {}).cursor
                continue
            before = len(fake.calls)
            for key, side in sides.items():
                cursors[key] = side.changes(cursors[key], {}).cursor
            shared_calls += len(fake.calls) - before
            before = len(fake.calls)
            for (rep, kind), since in naive.items():
                sobject = "Contact" if kind is ItemKind.CONTACT else "Event"
                soql = (
                    f"SELECT {', '.join(fields[sobject])} FROM {sobject} "
                    f"WHERE OwnerId = {quote(rep)} AND SystemModstamp >= "
                    f"{datetime_literal(since)}"
                )
                rows = list(query_all(crm.conn, soql))
                stamps = [parse_instant(r.get("SystemModstamp")) for r in rows]
                naive[(rep, kind)] = max([since, *(s for s in stamps if s is not None)])
            naive_calls += len(fake.calls) - before
    finally:
        crm.close()
        fake.stop()
    return [
        Result(reps, "shared feed (crmsync)", shared_calls, cycles),
        Result(reps, "naive per-rep queries", naive_calls, cycles),
    ]


class OneByOne:
    """A side's item-by-item methods only: the engine then writes one item per call."""

    def __init__(self, side: ItemSide) -> None:
        self.side = side

    def changes(self, cursor: str | None, known: dict[str, str]) -> Changes:
        return self.side.changes(cursor, known)

    def fetch(self, item_id: str) -> Seen | None:
        return self.side.fetch(item_id)

    def create(self, record: Record, marker: str) -> Written:
        return self.side.create(record, marker)

    def planned_id(self, marker: str) -> str | None:
        return self.side.planned_id(marker)

    def update(self, item_id: str, version: str, record: Record) -> Written:
        return self.side.update(item_id, version, record)

    def delete(self, item_id: str, version: str) -> None:
        self.side.delete(item_id, version)


@dataclass
class WriteResult:
    reps: int
    mode: str
    initial: int
    steady: int
    cycles: int
    edits: int

    @property
    def per_cycle(self) -> float:
        return self.steady / self.cycles

    @property
    def per_edit(self) -> float:
        return self.steady / max(self.edits, 1)


def mailbox(rep: int, kind: ItemKind, items: int) -> MemorySide:
    mail = MemorySide(f"m{rep}{kind.value}-")
    for n in range(items):
        if kind is ItemKind.CONTACT:
            mail.put(Contact(first_name=f"P{n}", last_name=f"Rep{rep}", email=f"p{n}@r{rep}.test"))
        else:
            start = dt.datetime(2030, 2, 1, 8, tzinfo=dt.UTC) + dt.timedelta(hours=n)
            mail.put(Event(f"M{rep}-{n}", EventTiming(start, start + dt.timedelta(minutes=30))))
    return mail


def run_writes(
    reps: int, items: int, cycles: int, share: float, seed_value: int, batched: bool
) -> WriteResult:
    pem, public = new_key_pair()
    org = BenchOrg()
    # The org starts empty: its feed starts at the server's Date header (the real clock),
    # so the simulated stamps must start there too.
    org.wall = dt.datetime.now(dt.UTC)
    rep_ids = seed(org, reps, 0)
    fake = FakeSalesforce(org, public_key=public).start()
    clock = Clock()
    config = SalesforceConfig(
        instance_url=fake.url,
        client_id=fake.client_id,
        username="integration@example.com",
        private_key_pem=pem,
    )
    crm = SalesforceCrm(config, retry=RetryPolicy(), poll_interval=60.0, clock=clock)
    rng = random.Random(seed_value)
    state = MemoryState()
    kinds = (ItemKind.CONTACT, ItemKind.EVENT)
    mail = {(rep, kind): mailbox(n, kind, items) for n, rep in enumerate(rep_ids) for kind in kinds}

    def cycle() -> int:
        before = len(fake.calls)
        for (rep, kind), side in mail.items():
            crm_side: ItemSide = crm.side(rep, kind)
            report = sync_kind(
                rep, kind, crm_side if batched else OneByOne(crm_side), side, state, Policy()
            )
            assert report.errors == 0, state.errors[:3]
        return len(fake.calls) - before

    try:
        initial = cycle()
        steady = edits = 0
        for _ in range(cycles):
            clock.now += 60.0
            org.wall += dt.timedelta(minutes=1)
            for side in mail.values():
                for item_id in sorted(side.items):
                    if rng.random() < share:
                        edits += 1
                        record = side.items[item_id].record
                        if isinstance(record, Contact):
                            side.put(replace(record, title=f"t{rng.random():.6f}"), item_id)
                        else:
                            side.put(replace(record, location=f"r{rng.random():.6f}"), item_id)
            steady += cycle()
    finally:
        crm.close()
        fake.stop()
    mode = "batched (crmsync)" if batched else "one by one (before)"
    return WriteResult(reps, mode, initial, steady, cycles, edits)


def print_writes(results: list[WriteResult], args: argparse.Namespace) -> None:
    header = (
        f"{'reps':>6}  {'writes':<20} {'initial sync':>12} {'per rep':>8} "
        f"{'edits/cycle':>11} {'calls/cycle':>11} {'calls/edit':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.reps:>6}  {r.mode:<20} {r.initial:>12,} {r.initial / r.reps:>8.1f} "
            f"{r.edits / r.cycles:>11.1f} {r.per_cycle:>11.1f} {r.per_edit:>10.2f}"
        )
    print(
        f"({args.items} contacts and {args.items} events per mailbox written into the org, "
        f"then {args.cycles} full cycles a minute apart, each mailbox item edited with "
        f"probability {args.churn:.0%} before each; every API call counted, reads and "
        "writes, the org feed's polls included in calls/edit)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", default="10,100", help="rep counts, comma-separated")
    parser.add_argument("--items", type=int, default=20, help="contacts (and events) per rep")
    parser.add_argument("--cycles", type=int, default=10, help="cycles, one a minute")
    parser.add_argument("--churn", type=float, default=0.01, help="share edited per cycle")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--write-reps", default="10,100", help="rep counts of the writes table ('' for none)"
    )
    args = parser.parse_args()
    results = []
    for reps in (int(n) for n in args.reps.split(",")):
        results += run(reps, args.items, args.cycles, args.churn, args.seed)
    header = (
        f"{'reps':>6}  {'mode':<22} {'calls/cycle':>11} {'calls/rep/cycle':>15} "
        f"{'calls/day':>11} {'of allocation':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.reps:>6}  {r.mode:<22} {r.per_cycle:>11.1f} {r.per_rep_cycle:>15.3f} "
            f"{r.per_day:>11,.0f} {r.share:>12.1%}"
        )
    print(
        f"({args.items} contacts and {args.items} events per rep, {args.cycles} cycles a "
        f"minute apart, {args.churn:.0%} of the records edited before each; allocation = "
        f"{BASE_ALLOCATION:,} + {PER_LICENCE:,} per rep)"
    )
    shared = [r for r in results if r.mode.startswith("shared")]
    worst = max(shared, key=lambda r: r.share)
    verdict = "meets" if worst.share < GOAL_SHARE else "misses"
    print(
        f"SUMMARY shared feed: at most {worst.share:.1%} of the allocation "
        f"({worst.reps} reps, {worst.per_rep_cycle:.3f} calls per rep per cycle); "
        f"{verdict} the goal of < {GOAL_SHARE:.0%}"
    )
    writes = [
        run_writes(int(n), args.items, args.cycles, args.churn, args.seed, batched)
        for n in args.write_reps.split(",")
        if n
        for batched in (True, False)
    ]
    if writes:
        print_writes(writes, args)


if __name__ == "__main__":
    main()
