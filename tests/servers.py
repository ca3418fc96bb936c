"""Real CalDAV/CardDAV servers on 127.0.0.1 for tests: Radicale, Xandikos and SabreDAV.

Plain functions for any test (`start_radicale`, `start_xandikos`, `tests.sabredav`) and
the ``dav_server`` fixture, parametrized over the three, yielding a `DavServerInfo`.
SabreDAV (PHP) skips with the reason where it can't run. Each server gets its own
temporary folder and free port, so tests run in parallel (pytest-xdist) safely.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmsync.domain.settings import OrgSettings
from crmsync.groupware.dav.local_server import (
    LocalRadicale,
    free_port,
    stop_process,
    wait_until_answering,
)
from tests import sabredav
from tests.sabredav import sabredav_missing, start_sabredav

SERVICE_ACCOUNT = "crmsync-service"
SERVICE_PASSWORD = "service-secret"
REP_EMAIL = "rep@example.com"
REP_PASSWORD = "rep-secret"


@dataclass(frozen=True)
class DavServerInfo:
    """How to reach a running test server as the service account, and the rep to sync."""

    name: str
    url: str
    username: str
    password: str
    principal_path: str
    email: str
    # How the rep's own mail program signs in (``None``: the server has no sign-in).
    rep_auth: tuple[str, str] | None = None

    def settings(self, **overrides: object) -> OrgSettings:
        values: dict[str, object] = {
            "server_url": self.url,
            "service_account": self.username,
            "principal_path": self.principal_path,
        }
        values.update(overrides)
        return OrgSettings(**values)  # type: ignore[arg-type]


def start_radicale(
    tmp_path: Path,
    users: dict[str, str] | None = None,
    service_account: str = SERVICE_ACCOUNT,
) -> LocalRadicale:
    """A started Radicale under ``tmp_path`` (``.url``, ``.stop()``); by default with the
    service account and one rep, ``rep@example.com``."""
    all_users = {service_account: SERVICE_PASSWORD, REP_EMAIL: REP_PASSWORD}
    all_users.update(users or {})
    return LocalRadicale(tmp_path / "radicale", all_users, service_account).start()


class XandikosServer:
    """A Xandikos child process: no authentication, a single principal at ``/user/``."""

    principal_path = "/user/"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> XandikosServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "xandikos.log").open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xandikos.web",
                "--directory",
                str(self.data_dir / "dav"),
                "--state-dir",
                str(self.data_dir / "state"),
                "--defaults",
                "--current-user-principal",
                self.principal_path,
                "--listen-address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-detect-systemd",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until_answering(self.url, self._process, timeout, self.data_dir / "xandikos.log")
        return self

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None


def start_xandikos(tmp_path: Path) -> XandikosServer:
    """A started Xandikos under ``tmp_path`` (``.url``, ``.stop()``)."""
    return XandikosServer(tmp_path / "xandikos").start()


@contextlib.contextmanager
def running_dav_server(name: str, tmp_path: Path) -> Iterator[DavServerInfo]:
    """Start server ``name`` ("radicale", "xandikos" or "sabredav") and yield how to reach
    it; skips the test when SabreDAV can't run here."""
    if name == "radicale":
        radicale = start_radicale(tmp_path)
        try:
            yield DavServerInfo(
                name,
                radicale.url,
                SERVICE_ACCOUNT,
                SERVICE_PASSWORD,
                "/{email}/",
                REP_EMAIL,
                (REP_EMAIL, REP_PASSWORD),
            )
        finally:
            radicale.stop()
    elif name == "sabredav":
        missing = sabredav_missing()
        if missing:
            pytest.skip(missing)
        # The service account is a SabreDAV admin principal here (it sees every rep);
        # the Nextcloud-style setups (proxy, per-rep logins, Digest) have tests of their own.
        sabre = start_sabredav(tmp_path / "sabredav")
        try:
            yield DavServerInfo(
                name,
                sabre.url,
                sabredav.SERVICE_ACCOUNT,
                sabredav.SERVICE_PASSWORD,
                sabredav.PRINCIPAL_PATH,
                "ann@example.com",
                ("ann@example.com", sabredav.REPS["ann@example.com"]),
            )
        finally:
            sabre.stop()
    elif name == "xandikos":
        xandikos = start_xandikos(tmp_path)
        try:
            # Xandikos runs without auth here (it allows Basic auth only with TLS); the
            # credentials are sent and ignored.
            yield DavServerInfo(
                name,
                xandikos.url,
                SERVICE_ACCOUNT,
                SERVICE_PASSWORD,
                XandikosServer.principal_path,
                REP_EMAIL,
            )
        finally:
            xandikos.stop()
    else:
        raise ValueError(f"unknown DAV server {name!r}")


DAV_SERVERS = ("radicale", "xandikos", "sabredav")


@pytest.fixture(params=DAV_SERVERS)
def dav_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DavServerInfo]:
    """A fresh Radicale, Xandikos or SabreDAV for one test."""
    with running_dav_server(request.param, tmp_path) as info:
        yield info
