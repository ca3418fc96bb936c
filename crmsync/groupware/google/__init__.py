"""The Google Workspace backend: a rep's primary calendar (Calendar v3) and a contacts
group (People v1) through a service account with domain-wide delegation (httpx for the
APIs, google-auth for the tokens)."""

from crmsync.groupware.google.calendar import GoogleEvents
from crmsync.groupware.google.config import SCOPES, GoogleConfig, parse_key
from crmsync.groupware.google.connection import GoogleConnection
from crmsync.groupware.google.contacts import GoogleContacts
from crmsync.groupware.google.errors import NotOrganizer, UsageLimitExceeded
from crmsync.groupware.google.mailbox import GoogleMailbox, open_google_mailbox
from crmsync.groupware.google.tokens import DelegationMissing, GoogleTokens
from crmsync.transport.throttling import RetryPolicy

__all__ = [
    "SCOPES",
    "DelegationMissing",
    "GoogleConfig",
    "GoogleConnection",
    "GoogleContacts",
    "GoogleEvents",
    "GoogleMailbox",
    "GoogleTokens",
    "NotOrganizer",
    "RetryPolicy",
    "UsageLimitExceeded",
    "open_google_mailbox",
    "parse_key",
]
