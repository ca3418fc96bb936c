"""A real Redis on 127.0.0.1 for tests: Debian's ``redis-server`` in a temporary folder.

`start_redis` starts one on a free port with persistence off; the ``redis_url`` fixture
yields its URL and stops it after the test. Where the binary is missing (``.ci/run``
installs it), `redis_missing` says why and the tests using the fixture skip with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.groupware.dav.local_server import free_port, stop_process


def redis_missing() -> str | None:
    """Why a Redis server can't be started here, or ``None`` if it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis Python package is not installed (pip install -e '.[test]')"
    return None


class RedisServer:
    """A ``redis-server`` child process serving ``redis://127.0.0.1:PORT/0``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        import redis

        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.data_dir), "--save", "", "--appendonly", "no"]
        args += ["--logfile", str(log)]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=1.0)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._process.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server exited: {tail}")
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None


def start_redis(data_dir: Path) -> RedisServer:
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    return RedisServer(data_dir).start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
