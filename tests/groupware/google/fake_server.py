"""`FakeGoogleServer`: a `FakeGoogle` served over HTTP on 127.0.0.1, at one address for
all three of Google's: ``/token`` (oauth2.googleapis.com/token), ``/calendar/v3/...``
(www.googleapis.com) and ``/v1/...`` (people.googleapis.com), the layout an org's
``server_url`` stands for (`crmsync.service.mailboxes.google_config`). The service-level
tests reach it through the org settings, from other processes too (crash tests)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.groupware.google.fake_google import FakeGoogle

MAX_BODY = 8 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/token"):
            url = "https://oauth2.fake.test" + self.path
        elif self.path.startswith("/calendar/"):
            url = "https://calendar.fake.test" + self.path
        else:
            url = "https://people.fake.test" + self.path
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer = self.server.fake.handle(
            httpx.Request(self.command, url, headers=headers, content=body)
        )
        content = answer.read()
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGoogle


class FakeGoogleServer:
    """Serves ``fake`` (a new `FakeGoogle` by default) at ``url`` until `stop`."""

    def __init__(self, fake: FakeGoogle | None = None) -> None:
        self.fake = fake or FakeGoogle()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self.fake
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
