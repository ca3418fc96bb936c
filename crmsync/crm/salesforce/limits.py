"""The org's limits from ``/limits``: the daily API allocation and what is left of it.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
(``DailyApiRequests: {Max, Remaining}``). Every other response's ``Sforce-Limit-Info``
header keeps `SalesforceConnection.usage` current; this call is for the connection test
and the org status.
"""

from __future__ import annotations

from crmsync.crm.salesforce.connection import ApiUsage, SalesforceConnection
from crmsync.crm.salesforce.errors import UnexpectedAnswer


def daily_api_usage(conn: SalesforceConnection) -> ApiUsage:
    answer = conn.get("limits/", what="the org's limits")
    daily = answer.body.get("DailyApiRequests") if isinstance(answer.body, dict) else None
    if not isinstance(daily, dict) or "Max" not in daily or "Remaining" not in daily:
        raise UnexpectedAnswer("a limits answer without DailyApiRequests", "")
    limit = int(daily["Max"])
    return ApiUsage(limit - int(daily["Remaining"]), limit)
