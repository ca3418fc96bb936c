"""CalDAV/CardDAV backend: a rep's default calendar and contacts folder as ``ItemSide``s.

connection = connect(settings, password)            # or DavConnection(url, user, pw)
mailbox = open_mailbox(connection, settings, "rep@example.com")
mailbox.contacts.changes(cursor, known); mailbox.events.create(event, crm_id)
"""

from crmsync.groupware.dav.collection import DavCollection
from crmsync.groupware.dav.connection import DavConnection, RetryPolicy, WouldWrite
from crmsync.groupware.dav.mailbox import DavMailbox, MailboxFacts, connect, open_mailbox

__all__ = [
    "DavCollection",
    "DavConnection",
    "DavMailbox",
    "MailboxFacts",
    "RetryPolicy",
    "WouldWrite",
    "connect",
    "open_mailbox",
]
