"""One `GoogleConnection` per Google Workspace in the process, whatever the number of
services (the scheduler's workers, the console, previews) that sync its reps.

The connection is the org's one token source (each rep's tokens, minted once an hour
whichever worker runs the rep), and it holds the reps Google parked after "Calendar usage
limits exceeded", so no worker of the process sends them anything until the pause ends.
Services take it with `acquire` and give it back with `release`; the last release closes
it. Two setups share one only when everything in their configuration is equal (the key,
the addresses, the contact label ...): a changed setup gets a connection of its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from crmsync.groupware.google import GoogleConfig, GoogleConnection


@dataclass
class _Shared:
    connection: GoogleConnection
    users: int


_SHARED: dict[GoogleConfig, _Shared] = {}
_LOCK = threading.Lock()


def acquire(config: GoogleConfig) -> GoogleConnection:
    """The process's connection for ``config``, made on first use."""
    with _LOCK:
        shared = _SHARED.get(config)
        if shared is None:
            shared = _SHARED[config] = _Shared(GoogleConnection(config), 0)
        shared.users += 1
        return shared.connection


def release(connection: GoogleConnection) -> None:
    """Give back a connection `acquire` gave; the last user's release closes it."""
    with _LOCK:
        for config, shared in list(_SHARED.items()):
            if shared.connection is connection:
                shared.users -= 1
                if shared.users <= 0:
                    del _SHARED[config]
                    connection.close()
                return
    connection.close()  # not shared (made elsewhere): the caller owns it
