"""What the fake Graph's modules share: Graph's error body and its UTC date-times."""

from __future__ import annotations

import datetime as dt
import zoneinfo

UTC = dt.UTC


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> tuple:
    return status, headers or {}, {"error": {"code": code, "message": message}}


def utc(value: dict[str, str]) -> dict[str, str]:
    local = dt.datetime.fromisoformat(value["dateTime"].split(".")[0])
    zone = zoneinfo.ZoneInfo("UTC" if value["timeZone"] == "UTC" else value["timeZone"])
    when = local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": when.isoformat() + ".0000000", "timeZone": "UTC"}
