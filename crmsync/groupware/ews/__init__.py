"""Exchange Server backend over EWS (exchangelib): on-premises Exchange 2016, 2019 and SE.

config = EwsConfig("svc@example.com", password, "https://mail.example.com/EWS/Exchange.asmx")
mailbox = open_ews_mailbox(config, "rep@example.com")
mailbox.contacts.changes(cursor, known); mailbox.events.create(event, crm_id)
"""

from crmsync.groupware.ews.checks import check_impersonation, check_server_version
from crmsync.groupware.ews.config import EwsAuth, EwsConfig, EwsRetry
from crmsync.groupware.ews.connection import EwsConnection, MailboxUnreachable
from crmsync.groupware.ews.folder import EwsFolder
from crmsync.groupware.ews.mailbox import EwsMailbox, open_ews_mailbox

__all__ = [
    "EwsAuth",
    "EwsConfig",
    "EwsConnection",
    "EwsFolder",
    "EwsMailbox",
    "EwsRetry",
    "MailboxUnreachable",
    "check_impersonation",
    "check_server_version",
    "open_ews_mailbox",
]
