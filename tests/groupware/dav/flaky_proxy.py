"""A TCP proxy on 127.0.0.1 that misbehaves for its first N connections.

Each incoming connection takes the next behaviour from ``script`` ("503", "reset",
"stall"); once the script is spent (or forever, with ``forever``) connections are piped
to the upstream server unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterable

_RESPONSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 4\r\n"
    b"Connection: close\r\n\r\nbusy"
)


class FlakyProxy:
    def __init__(self, upstream_port: int, script: Iterable[str], forever: str | None = None):
        self.upstream_port = upstream_port
        self.script = list(script)
        self.forever = forever
        self.connections = 0
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(32)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _next_behaviour(self) -> str:
        self.connections += 1
        if self.script:
            return self.script.pop(0)
        return self.forever or "pass"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            behaviour = self._next_behaviour()
            if behaviour == "503":
                with contextlib.suppress(OSError):
                    client.recv(65536)
                    client.sendall(_RESPONSE_503)
                client.close()
            elif behaviour == "reset":
                with contextlib.suppress(OSError):
                    client.recv(65536)
                    # SO_LINGER 0: close() sends RST instead of FIN.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            elif behaviour == "stall":
                self._held.append(client)  # never answered; the client must time out
            else:
                threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for held in self._held:
            held.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
