"""SabreDAV 4.7 (the engine inside Nextcloud and Baïkal) on 127.0.0.1 for tests.

The server itself is `../shared/servers/sabredav/` beside the checkout (read-only; its
README says how it is set up), or the folder ``CRMSYNC_SABREDAV_DIR`` names. It needs
Debian's ``php-cli php-sqlite3 php-xml php-mbstring php-psr-log``; where PHP or the folder
can't be had, `sabredav_missing` says why and the tests using it skip with that reason.

Users: the service account ``crmsync@example.com`` and the reps ``ann@example.com`` and
``bob@example.com`` (`REPS`; the benchmarks pass their own), each rep with a "default"
calendar and address book. ``service`` is how much the service account may do: ``admin``
(everything, custom deployments only), ``proxy`` (in each rep's ``calendar-proxy-write``
group: CalDAV delegation, calendars only) or ``none`` (nothing: reps sign in with their own
logins).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from crmsync.groupware.dav.local_server import free_port, stop_process, wait_until_answering

SERVICE_ACCOUNT = "crmsync@example.com"
SERVICE_PASSWORD = "svcpass"
REPS = {"ann@example.com": "annpass", "bob@example.com": "bobpass"}
PRINCIPAL_PATH = "/principals/{email}/"
_DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "servers" / "sabredav"
_PHP_MODULES = ("pdo_sqlite", "xml", "mbstring")


def sabredav_dir() -> Path:
    return Path(os.environ.get("CRMSYNC_SABREDAV_DIR") or _DEFAULT_DIR)


@functools.cache
def sabredav_missing() -> str | None:
    """Why SabreDAV cannot run on this machine, or ``None`` when it can."""
    folder = sabredav_dir()
    if not (folder / "server.php").is_file():
        return f"SabreDAV is not at {folder} (set CRMSYNC_SABREDAV_DIR)"
    php = shutil.which("php")
    if php is None:
        return "PHP is not installed (apt-get install php-cli php-sqlite3 php-xml php-mbstring)"
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout
    lacking = [m for m in _PHP_MODULES if m not in modules.lower().split()]
    if lacking:
        return (
            f"PHP lacks the modules {', '.join(lacking)} (Debian: php-sqlite3 php-xml php-mbstring)"
        )
    if not Path("/usr/share/php/Psr/Log/autoload.php").is_file():
        return "psr/log is missing (Debian: php-psr-log)"
    return None


class SabreDavServer:
    """A SabreDAV child process (PHP's built-in server) with its own SQLite database."""

    def __init__(
        self,
        data_dir: Path,
        auth: str = "basic",
        service: str = "admin",
        *,
        reps: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        """``reps``: each rep's address and password (default `REPS`; the benchmarks ask
        for hundreds); ``port``: where to listen (default: a free one)."""
        if auth not in ("basic", "digest") or service not in ("admin", "proxy", "none"):
            raise ValueError(f"unknown SabreDAV mode {auth}/{service}")
        self.data_dir = data_dir
        self.auth = auth
        self.service = service
        self.reps = dict(REPS if reps is None else reps)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def request_log(self) -> Path:
        """One line per request the server answered: ``time METHOD PATH STATUS ...``."""
        return self.data_dir / "requests.log"

    def start(self, timeout: float = 20.0, *, keep_data: bool = False) -> SabreDavServer:
        """Create the database afresh (the users, each rep's calendar and address book) and
        start serving it; ``keep_data``: serve the database the folder holds (a restart)."""
        missing = sabredav_missing()
        if missing:
            raise RuntimeError(missing)
        folder = sabredav_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        database = self.data_dir / "db.sqlite"
        self.request_log.write_text("")
        users = [f"{SERVICE_ACCOUNT}:{SERVICE_PASSWORD}"]
        users += [f"{u}:{p}" for u, p in self.reps.items()]
        if not keep_data:
            subprocess.run(
                ["php", "setup_db.php", str(database), self.service, *users],
                cwd=folder,
                check=True,
                capture_output=True,
            )
        env = dict(
            os.environ,
            SABRE_DB=str(database),
            SABRE_LOG=str(self.request_log),
            SABRE_AUTH=self.auth,
            SABRE_SERVICE=self.service,
        )
        log = (self.data_dir / "php.log").open("ab")
        self._process = subprocess.Popen(
            [
                "php",
                "-d",
                "display_errors=0",
                "-d",
                "log_errors=1",
                "-S",
                f"127.0.0.1:{self.port}",
                "server.php",
            ],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until_answering(self.url, self._process, timeout, self.data_dir / "php.log")
        return self

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered so far."""
        found = []
        for line in self.request_log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[3].isdigit():
                found.append((parts[1], parts[2], int(parts[3])))
        return found

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None


def start_sabredav(data_dir: Path, auth: str = "basic", service: str = "admin") -> SabreDavServer:
    return SabreDavServer(data_dir, auth, service).start()
