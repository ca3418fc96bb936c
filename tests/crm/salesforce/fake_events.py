"""How the fake org stores an Event: the fields Salesforce derives (ActivityDateTime,
DurationInMinutes, WhoId), the 14-day limit, and a Lightning series generated from the
first occurrence's pattern
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_event_series_delete.htm).
Mixed into `FakeOrg`, whose records and ids it writes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from tests.crm.salesforce import fake_schema as schema
from tests.crm.salesforce.fake_values import UTC, error, parse_instant, sf_instant

MAX_EVENT = dt.timedelta(days=14)
MAX_GENERATED = 100  # occurrences generated for an open-ended pattern


class FakeEventSeries:
    """`FakeOrg`'s event rules; the attributes are `FakeOrg`'s."""

    schema: dict[str, dict[str, schema.Spec]]
    rows: dict[str, dict[str, dict[str, Any]]]
    series: dict[str, list[str]]
    new_id: Callable[[str], str]
    stamp: Callable[[], str]

    def _event_problem(
        self, fields: Mapping[str, Any], row: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        merged = {**row, **fields}
        if "EventWhoIds" in fields and "EventWhoIds" not in self.schema["Event"]:
            return error(
                "INVALID_FIELD", "No such column 'EventWhoIds' on entity 'Event'", ["EventWhoIds"]
            )
        if merged.get("IsAllDayEvent"):
            return None
        try:
            start, end = (
                parse_instant(merged["StartDateTime"]),
                parse_instant(merged["EndDateTime"]),
            )
        except (KeyError, TypeError, ValueError):
            return error(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [EndDateTime]",
                ["EndDateTime"],
            )
        if end < start or end - start > MAX_EVENT:
            # [verify] the code Salesforce uses for an event longer than 14 days.
            return error(
                "FIELD_INTEGRITY_EXCEPTION", "Event duration cannot exceed 14 days", ["EndDateTime"]
            )
        return None

    def _derive_event(self, row: dict[str, Any]) -> None:
        if row.get("EventWhoIds"):
            row["WhoId"] = row["EventWhoIds"][0]
        row["ShowAs"] = row.get("ShowAs") or "Busy"
        for flag in (
            "IsChild",
            "IsGroupEvent",
            "IsRecurrence",
            "IsRecurrence2",
            "IsRecurrence2Exception",
            "IsRecurrence2Exclusion",
            "IsPrivate",
            "IsAllDayEvent",
        ):
            row[flag] = bool(row.get(flag))
        if not row["IsAllDayEvent"]:
            start = parse_instant(row["StartDateTime"])
            row["ActivityDateTime"] = row["StartDateTime"]
            row["ActivityDate"] = start.date().isoformat()
            row["DurationInMinutes"] = int(
                (parse_instant(row["EndDateTime"]) - start).total_seconds() // 60
            )

    def _create_event(self, row: dict[str, Any]) -> str:
        self._derive_event(row)
        pattern = row.get("Recurrence2PatternText")
        if not pattern:
            self.rows["Event"][row["Id"]] = row
            return str(row["Id"])
        zone = self.rows["User"][row["OwnerId"]]["TimeZoneSidKey"]
        rule = str(pattern).removeprefix("RRULE:")
        all_day = row["IsAllDayEvent"]
        if all_day:
            first_day = dt.date.fromisoformat(row["ActivityDate"])
            last = parse_instant(row["EndDateTime"]).date() if row.get("EndDateTime") else first_day
            days = (last - first_day).days
            starts = [
                d.date()
                for d in itertools.islice(
                    rrulestr(rule, dtstart=dt.datetime.combine(first_day, dt.time())), MAX_GENERATED
                )
            ]
            pattern_start: str = first_day.isoformat()
        else:
            start = parse_instant(row["StartDateTime"])
            length = parse_instant(row["EndDateTime"]) - start
            local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            starts = [
                w.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
                for w in itertools.islice(rrulestr(rule, dtstart=local), MAX_GENERATED)
            ]
            pattern_start = sf_instant(start)
        ids = []
        for n, when in enumerate(starts):
            occurrence = dict(row)
            occurrence["Id"] = row["Id"] if n == 0 else self.new_id("Event")
            occurrence |= {
                "IsRecurrence2": True,
                "IsRecurrence2Exception": False,
                "Recurrence2PatternStartDate": pattern_start,
                "Recurrence2PatternTimeZone": zone,
                "Recurrence2PatternVersion": "1",
                "SystemModstamp": self.stamp(),
            }
            if all_day:
                assert isinstance(when, dt.date)
                occurrence["ActivityDate"] = when.isoformat()
                occurrence["StartDateTime"] = sf_instant(dt.datetime.combine(when, dt.time(), UTC))
                occurrence["EndDateTime"] = sf_instant(
                    dt.datetime.combine(when + dt.timedelta(days=days), dt.time(), UTC)
                )
            else:
                assert isinstance(when, dt.datetime)
                occurrence["StartDateTime"] = sf_instant(when)
                occurrence["EndDateTime"] = sf_instant(when + length)
                self._derive_event(occurrence)
            self.rows["Event"][occurrence["Id"]] = occurrence
            ids.append(occurrence["Id"])
        self.series[ids[0]] = ids
        return ids[0]
