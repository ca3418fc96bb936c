"""What a connection test reports: its `Step`s, in order, and their names."""

from __future__ import annotations

from dataclasses import dataclass

SERVER_ADDRESS = "Server address"
SERVICE_ACCOUNT = "Service account recognized"
# Per-rep sign-in (DAV): the rep's own login takes the service account's place.
REP_LOGIN = "Rep's login recognized"
REP_DOMAIN = "Rep's email in the service account's domains"
REP_MAILBOX = "Rep's mailbox found"
DEFAULT_CALENDAR = "Default calendar found"
CONTACTS_FOLDER = "Contacts folder found or can be created"
SYNC_TOKENS = "Sync tokens supported"
# Exchange Server (EWS) and Microsoft 365 (Graph) steps.
EXCHANGE_VERSION = "Service account recognized; mailbox on a supported Exchange version"
IMPERSONATION = "Service account may impersonate the rep"
GRAPH_TOKEN = "App registration recognized (token with admin consent)"
GRAPH_MAILBOX = "Rep's calendar and contacts folder reachable"
GRAPH_DELTA = "Delta queries supported"
# Google Workspace steps (SYNC_TOKENS and REP_DOMAIN as above).
GOOGLE_KEY = "Service account key valid"
GOOGLE_DELEGATION = "Domain-wide delegation granted for each scope"
GOOGLE_USER = "Rep is a user of the Workspace"
GOOGLE_CALENDAR = "Primary calendar reachable"
GOOGLE_CONTACTS = "Contact group found or can be created"
# The DAV steps, in order.
STEP_NAMES = (
    SERVER_ADDRESS,
    SERVICE_ACCOUNT,
    REP_DOMAIN,
    REP_MAILBOX,
    DEFAULT_CALENDAR,
    CONTACTS_FOLDER,
    SYNC_TOKENS,
)
# The steps that test the service account itself, whichever the backend.
ACCOUNT_STEPS = (SERVER_ADDRESS, SERVICE_ACCOUNT, REP_LOGIN, GRAPH_TOKEN, GOOGLE_KEY)


@dataclass(frozen=True)
class Step:
    """One check of the connection test.

    ``passed`` is ``None`` when the step was not run because an earlier one failed.
    ``detail`` says what was found; ``fix`` what the admin can do (set on failures and
    warnings). ``warning`` marks a passed step with a caveat.
    """

    name: str
    passed: bool | None
    detail: str = ""
    fix: str = ""
    warning: bool = False

    @property
    def status(self) -> str:
        """``"passed"``, ``"warning"``, ``"failed"`` or ``"not_run"``."""
        if self.passed is None:
            return "not_run"
        if not self.passed:
            return "failed"
        return "warning" if self.warning else "passed"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "warning": self.warning,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class ConnectionTestResult:
    """The steps of one connection test, in order.

    ``server_url`` is shown without any user name or password it may hold.
    """

    server_url: str
    email: str
    steps: tuple[Step, ...]

    @property
    def passed(self) -> bool:
        """Whether every step that ran passed (warnings included)."""
        return all(step.passed is not False for step in self.steps)

    @property
    def warnings(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.status == "warning")

    def step(self, name: str) -> Step:
        """The step called ``name``; `KeyError` if there is none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def as_dict(self) -> dict[str, object]:
        """Plain values only, for a JSON API."""
        return {
            "server_url": self.server_url,
            "email": self.email,
            "passed": self.passed,
            "steps": [step.as_dict() for step in self.steps],
        }
