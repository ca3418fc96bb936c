"""The fake Graph's recurring events: a series' occurrences and exceptions, expanded on
demand from its pattern (daily and weekly patterns only: a simplification)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from tests.groupware.graph.fake_graph_values import UTC, error, utc


class FakeGraphSeries:
    """`FakeGraph`'s series handlers; the store of items and ``_touch`` are FakeGraph's."""

    def _touch(self, coll: Any, item: dict[str, Any]) -> None:
        raise NotImplementedError

    # https://learn.microsoft.com/graph/api/resources/patternedrecurrence and
    # https://learn.microsoft.com/graph/api/event-list-instances (occurrences and
    # exceptions with originalStart; a cancelled occurrence is absent).
    def _expand(self, master: dict[str, Any]) -> list[dict[str, Any]]:
        tz = zoneinfo.ZoneInfo(master["start"]["timeZone"])
        start = dt.datetime.fromisoformat(master["start"]["dateTime"]).replace(tzinfo=tz)
        end = dt.datetime.fromisoformat(master["end"]["dateTime"]).replace(tzinfo=tz)
        pattern, span = master["recurrence"]["pattern"], master["recurrence"]["range"]
        step = pattern.get("interval", 1)
        days = {
            "monday": 0,
            "tuesday": 1,
            "wednesday": 2,
            "thursday": 3,
            "friday": 4,
            "saturday": 5,
            "sunday": 6,
        }
        wanted = {days[d] for d in pattern.get("daysOfWeek") or ()}
        count = span.get("numberOfOccurrences") if span["type"] == "numbered" else None
        until = dt.date.fromisoformat(span["endDate"]) if span["type"] == "endDate" else None
        starts: list[dt.datetime] = []
        day = start.date()
        while len(starts) < (count or 10**6) and day <= (until or start.date() + dt.timedelta(730)):
            weeks = (day - start.date()).days // 7
            if (pattern["type"] == "daily" and (day - start.date()).days % step == 0) or (
                pattern["type"] == "weekly" and day.weekday() in wanted and weeks % step == 0
            ):
                starts.append(dt.datetime.combine(day, start.timetz()))
            day += dt.timedelta(days=1)
        out = []
        for s in starts:
            key = s.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            if key in master["_cancelled"]:
                continue
            inst = {
                "id": f"{master['id']}~{key}",
                "seriesMasterId": master["id"],
                "type": "occurrence",
                "originalStart": s.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "start": utc({"dateTime": s.replace(tzinfo=None).isoformat(), "timeZone": str(tz)}),
                "end": utc(
                    {
                        "dateTime": (s + (end - start)).replace(tzinfo=None).isoformat(),
                        "timeZone": str(tz),
                    }
                ),
                "subject": master.get("subject"),
                "location": master.get("location"),
                "body": master.get("body"),
                "@odata.etag": master["@odata.etag"],
            }
            if key in master["_exceptions"]:
                changes = dict(master["_exceptions"][key])
                for k in ("start", "end"):
                    if k in changes:
                        changes[k] = utc(changes[k])
                inst.update(changes, type="exception")
            out.append(inst)
        return out

    def _instances(self, coll: Any, master_id: str, query: dict) -> tuple:
        master = coll.items.get(master_id)
        if master is None or master.get("_deleted"):
            return error(404, "ErrorItemNotFound", "The specified object was not found.")
        if "startDateTime" not in query or "endDateTime" not in query:
            return error(400, "ErrorInvalidParameter", "startDateTime and endDateTime needed")
        if not master.get("recurrence"):
            return 200, {}, {"value": []}
        return 200, {}, {"value": self._expand(master)}

    # https://learn.microsoft.com/graph/api/event-update and event-delete on an occurrence
    def _instance(self, coll: Any, instance_id: str, method: str, body: Any) -> tuple:
        master_id, key = instance_id.split("~")
        master = coll.items.get(master_id)
        if master is None or master.get("_deleted") or key in master["_cancelled"]:
            return error(404, "ErrorItemNotFound", "The specified object was not found.")
        if method == "DELETE":
            master["_cancelled"].add(key)
        elif method == "PATCH":
            master["_exceptions"].setdefault(key, {}).update(body)
        elif method == "GET":
            found = [i for i in self._expand(master) if i["id"] == instance_id]
            return 200, {}, found[0]
        self._touch(coll, master)  # simplification: the master's change key moves too
        return (204, {}, None) if method == "DELETE" else (200, {}, {"id": instance_id})
