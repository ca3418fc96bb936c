"""The DAV server a benchmark runs against: its command-line arguments, its start and
stop (Radicale, Xandikos or SabreDAV), its accounts and reps."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import common  # noqa: F401  (puts the repository root on sys.path before crmsync imports)
import psutil
from meters import tree_cpu

from crmsync.domain.settings import OrgSettings
from crmsync.groupware.dav.local_server import LocalRadicale

SERVICE_ACCOUNT = "crmsync-service"
SERVICE_PASSWORD = "service-secret"
REP_PASSWORD = "rep-secret"
SERVERS = ("radicale", "xandikos", "sabredav")


# ---------------------------------------------------------------------------- arguments


def arguments(description: str, *, items: int, reps: int = 1) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--server", choices=SERVERS, default="radicale")
    parser.add_argument("--reps", type=int, default=reps, help="reps (CRM users) to sync")
    parser.add_argument(
        "--items", type=int, default=items, help="contacts per rep, and as many events per rep"
    )
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--user", default=SERVICE_ACCOUNT, help="service account (with --url)")
    parser.add_argument("--password", default=SERVICE_PASSWORD, help="its password (--url)")
    parser.add_argument(
        "--principal-path",
        help="principal path template (default: /{email}/ for Radicale, /user/ for Xandikos)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the sample data")
    return parser


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A DAV server to benchmark against, and (when we started it) its process."""

    name: str
    url: str
    username: str
    password: str
    principal_path: str
    process: psutil.Process | None
    data_dir: Path | None = None
    stop: Callable[[], None] = lambda: None

    def settings(self) -> OrgSettings:
        return OrgSettings(
            server_url=self.url, service_account=self.username, principal_path=self.principal_path
        )

    def cpu_seconds(self) -> float:
        """User + system CPU the server process (and its children) used so far; NaN
        without a process of ours or once it is gone."""
        if self.process is None or not self.process.is_running():
            return float("nan")
        return tree_cpu([self.process])

    def raw_home(self) -> str:
        """A server-absolute folder where the raw loop may create its own collections."""
        if self.name == "xandikos":
            return "/user/"
        return f"/{self.username}/"


def rep_emails(count: int, server: str = "") -> list[str]:
    """The reps' addresses; SabreDAV's setup knows only its own reps (ann, bob)."""
    if server == "sabredav":
        from tests.sabredav import REPS

        if count > len(REPS):
            raise SystemExit(f"SabreDAV's setup has {len(REPS)} reps: run it with --reps 1")
        return list(REPS)[:count]
    return [f"rep{i}@example.com" for i in range(count)]


def sabredav_missing() -> str | None:
    """Why SabreDAV cannot run here (its test helper has not landed, PHP is missing ...)."""
    try:
        from tests.sabredav import sabredav_missing as missing
    except ImportError as exc:
        return f"SabreDAV support (tests/sabredav.py) is not in this checkout ({exc})"
    return missing()


def child_listening_on(port: int) -> psutil.Process | None:
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(str(port) in part for part in child.cmdline()):
                return child
    return None


@contextlib.contextmanager
def dav_server(args: argparse.Namespace, workdir: Path, emails: Sequence[str]) -> Iterator[Server]:
    """The server the arguments name: started under ``workdir`` unless ``--url`` is given."""
    default_principal = "/user/" if args.server == "xandikos" else "/{email}/"
    principal = args.principal_path or default_principal
    if args.url:
        yield Server(args.server, args.url.rstrip("/"), args.user, args.password, principal, None)
        return
    if args.server == "radicale":
        users = {SERVICE_ACCOUNT: SERVICE_PASSWORD, **dict.fromkeys(emails, REP_PASSWORD)}
        radicale = LocalRadicale(workdir / "radicale", users, SERVICE_ACCOUNT).start()
        try:
            yield Server(
                "radicale",
                radicale.url,
                SERVICE_ACCOUNT,
                SERVICE_PASSWORD,
                principal,
                child_listening_on(radicale.port),
                workdir / "radicale",
                radicale.stop,
            )
        finally:
            radicale.stop()
        return
    if args.server == "sabredav":
        yield from _sabredav(args, workdir)
        return
    if len(emails) > 1 and principal == "/user/":
        raise SystemExit("Xandikos serves one principal (/user/): run it with --reps 1")
    from tests.servers import XandikosServer

    xandikos = XandikosServer(workdir / "xandikos").start()
    try:
        yield Server(
            "xandikos",
            xandikos.url,
            SERVICE_ACCOUNT,
            SERVICE_PASSWORD,
            principal,
            child_listening_on(xandikos.port),
            workdir / "xandikos",
            xandikos.stop,
        )
    finally:
        xandikos.stop()


def _sabredav(args: argparse.Namespace, workdir: Path) -> Iterator[Server]:
    missing = sabredav_missing()
    if missing:
        raise SystemExit(f"SabreDAV cannot run here: {missing}")
    from tests import sabredav

    sabre = sabredav.SabreDavServer(workdir / "sabredav").start()
    try:
        yield Server(
            "sabredav",
            sabre.url,
            sabredav.SERVICE_ACCOUNT,
            sabredav.SERVICE_PASSWORD,
            args.principal_path or sabredav.PRINCIPAL_PATH,
            child_listening_on(sabre.port),
            None,
            sabre.stop,
        )
    finally:
        sabre.stop()
