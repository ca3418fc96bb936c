"""Salesforce as crmsync's CRM, through a small REST client of our own on httpx.

Why not simple-salesforce: its released versions are synchronous on ``requests``, force
``https://`` for a custom instance URL (so no plain-HTTP test fake), have no sObject
Collections helper and no hook for reading ``Sforce-Limit-Info`` on every response, and
re-login on an expired session only for the username-password flow. crmsync needs a few
calls done exactly (watermark queries, collections of 200 with per-record results, upsert
by external id, describe, limits), typed errors and a metered connection, so one module
per wire operation: `auth`, `connection`, `query`, `sobject_collections`, `upsert`,
`describe`, `limits`; the mappings `contact_map`, `event_map`, `series`; the org-wide
change `feed`; and the sides `contacts`, `events`, assembled by `SalesforceCrm`.
"""

from crmsync.crm.salesforce.config import AuthFlow, SalesforceConfig
from crmsync.crm.salesforce.connection import ApiUsage, RetryPolicy, SalesforceConnection
from crmsync.crm.salesforce.contacts import ContactSide
from crmsync.crm.salesforce.crm import SalesforceCrm
from crmsync.crm.salesforce.events import EventSide

__all__ = [
    "ApiUsage",
    "AuthFlow",
    "ContactSide",
    "EventSide",
    "RetryPolicy",
    "SalesforceConfig",
    "SalesforceConnection",
    "SalesforceCrm",
]
