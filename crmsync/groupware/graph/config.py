"""`GraphConfig`: how crmsync reaches one Microsoft 365 tenant through Microsoft Graph."""

from __future__ import annotations

from dataclasses import dataclass, field

from crmsync.transport.throttling import RetryPolicy

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class GraphConfig:
    """An app registration with application permissions (Calendars.ReadWrite,
    Contacts.ReadWrite) and admin consent in ``tenant_id``.

    Give either ``client_secret`` or ``certificate_pem`` (the PEM private key) with
    ``certificate_thumbprint``. ``authority_url`` and ``graph_url`` are overridable for
    national clouds and tests. With ``notify_attendees_on_crm_edits`` off, crmsync refuses
    to change or delete a meeting that has attendees, because Graph mails them each time.
    """

    tenant_id: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    certificate_pem: str = field(default="", repr=False)
    certificate_thumbprint: str = ""
    authority_url: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH
    contacts_folder: str = "CRM_Sync"
    notify_attendees_on_crm_edits: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # calendarView delta needs a window (v1.0 has no unbounded events delta).
    window_days_past: int = 365
    window_days_future: int = 730
    # Untrusted input is bounded before it is parsed: a delta page or a batch of 20 items
    # (plain-text bodies, no attachments) stays far below this.
    max_response_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.client_secret and not (self.certificate_pem and self.certificate_thumbprint):
            raise ValueError("give a client secret, or a certificate's private key and thumbprint")

    @property
    def authority(self) -> str:
        return f"{self.authority_url.rstrip('/')}/{self.tenant_id}"

    @property
    def credential(self) -> str | dict[str, str]:
        """What msal's ``client_credential`` takes."""
        if self.client_secret:
            return self.client_secret
        return {"private_key": self.certificate_pem, "thumbprint": self.certificate_thumbprint}
