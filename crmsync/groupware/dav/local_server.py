"""Run a Radicale CalDAV/CardDAV server on 127.0.0.1 for the demo and the tests.

`LocalRadicale` starts ``python -m radicale`` as a child process with its own data folder,
htpasswd file (plain passwords) and rights file: the service account may read and write
every principal, each other user only their own. It waits until the server answers, and
`stop` (or leaving the ``with`` block) ends it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

_RIGHTS = """\
[service-account-all]
user: {service}
collection: .*
permissions: RrWw

[principal-self]
user: .+
collection: {{user}}
permissions: RW

[owner-collections]
user: .+
collection: {{user}}/[^/]+
permissions: rw

[root]
user: .+
collection:
permissions: R
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRadicale:
    """A Radicale child process serving ``data_dir`` at `url` (``http://127.0.0.1:PORT``).

    ``users`` maps user names to passwords; ``service_account`` (one of them) gets read and
    write access to every principal. With ``create_principals`` each user's principal
    collection exists from the start, as if the user had logged in once.
    """

    def __init__(
        self,
        data_dir: Path,
        users: dict[str, str],
        service_account: str,
        *,
        port: int | None = None,
        create_principals: bool = True,
    ) -> None:
        if service_account not in users:
            raise ValueError("the service account must be one of the users")
        self.data_dir = Path(data_dir)
        self.users = dict(users)
        self.service_account = service_account
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._create_principals = create_principals
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> LocalRadicale:
        """Start the server and return once it answers HTTP; raises `RuntimeError` if not."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        htpasswd = self.data_dir / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        rights = self.data_dir / "rights"
        rights.write_text(_RIGHTS.format(service=_regex_literal(self.service_account)))
        storage = self.data_dir / "collections"
        if self._create_principals:
            for user in self.users:
                (storage / "collection-root" / user).mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "radicale.log").open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "radicale",
                "--config",
                "",
                "--server-hosts",
                f"127.0.0.1:{self.port}",
                "--auth-type",
                "htpasswd",
                "--auth-htpasswd-filename",
                str(htpasswd),
                "--auth-htpasswd-encryption",
                "plain",
                "--rights-type",
                "from_file",
                "--rights-file",
                str(rights),
                "--storage-filesystem-folder",
                str(storage),
                "--logging-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until_answering(self.url, self._process, timeout, self.data_dir / "radicale.log")
        return self

    def stop(self) -> None:
        """End the child process (idempotent)."""
        stop_process(self._process)
        self._process = None

    def __enter__(self) -> LocalRadicale:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _regex_literal(text: str) -> str:
    # The rights file is a regex and also a str.format template: escape both.
    return re.escape(text).replace("{", "{{").replace("}", "}}")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a server child, killing it if it does not end within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], timeout: float, log: Path
) -> None:
    """Return once ``url`` answers HTTP; raise `RuntimeError` (with the log's tail) if the
    process exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the server exited with code {process.returncode}: {tail}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url + "/", timeout=1.0)
            return
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"the server at {url} did not answer within {timeout:.0f} s")
