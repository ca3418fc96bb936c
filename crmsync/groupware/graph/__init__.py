"""The Microsoft 365 backend: a rep's calendar and contacts folder through Microsoft Graph
v1.0 (httpx for Graph, msal for app-only tokens)."""

from crmsync.groupware.graph.calendar_folder import GraphEvents, WouldNotifyAttendees
from crmsync.groupware.graph.config import GraphConfig
from crmsync.groupware.graph.connection import GraphConnection
from crmsync.groupware.graph.contact_folder import GraphContacts
from crmsync.groupware.graph.mailbox import GraphMailbox, open_graph_mailbox
from crmsync.groupware.graph.tokens import GraphTokens
from crmsync.transport.throttling import RetryPolicy

__all__ = [
    "GraphConfig",
    "GraphConnection",
    "GraphContacts",
    "GraphEvents",
    "GraphMailbox",
    "GraphTokens",
    "RetryPolicy",
    "WouldNotifyAttendees",
    "open_graph_mailbox",
]
