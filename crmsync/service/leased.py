"""One cycle of one rep under the rep's lease, for runs outside the scheduler (`crmsync
sync`): the same lease `serve` and the workers take, so two cycles of a rep never overlap.

A rep whose lease another process holds is waited for or skipped, as the caller says.
While the cycle runs, `LeaseKeeper` renews the lease (fence unchanged) every third of its
time to live, so a long cycle keeps it; a process that dies lets it expire.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from crmsync.domain.records import User
from crmsync.service.rep_cycle import RepActionListener, RepReport
from crmsync.service.runner import SyncService
from crmsync.store import StateStore

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = dt.timedelta(minutes=5)


def default_worker_id(kind: str = "worker") -> str:
    """``kind:host:pid:random``: unique per process, readable as a rep's lease owner."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class IfBusy(StrEnum):
    """What to do with a rep whose cycle runs elsewhere."""

    WAIT = "wait"
    SKIP = "skip"


@dataclass
class LeasedRun:
    """A rep's cycle under its lease: ``report`` is ``None`` when it was skipped."""

    rep: User
    report: RepReport | None
    busy_with: str | None = None  # who held the lease when this run found it taken
    waited: float = 0.0  # seconds spent waiting for that lease


class LeaseKeeper:
    """Renews one lease in a thread until the block ends; ``lost`` once it could not."""

    def __init__(self, store: StateStore, rep_id: str, fence: int, ttl: dt.timedelta) -> None:
        self._store = store
        self._rep_id = rep_id
        self._fence = fence
        self._ttl = ttl
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{rep_id}", daemon=True)
        self.lost = False

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        every = self._ttl.total_seconds() / 3
        while not self._done.wait(every):
            try:
                if not self._store.renew_lease(self._rep_id, self._fence, self._ttl):
                    self.lost = True  # the cycle's fenced writes are refused from now on
                    return
            except Exception:  # the database briefly away: the next try may pass
                log.exception("could not renew the lease of rep %s", self._rep_id)


def run_leased(
    service: SyncService,
    user: User,
    *,
    worker: str,
    if_busy: IfBusy = IfBusy.WAIT,
    ttl: dt.timedelta = DEFAULT_LEASE_TTL,
    wait_at_most: float = 600.0,
    poll: float = 1.0,
    on_busy: Callable[[str], None] | None = None,
    on_action: RepActionListener | None = None,
) -> LeasedRun:
    """Claim the rep's lease and run its cycle under it (the closing write gives it up).

    A rep leased elsewhere is skipped, or waited for (polling every ``poll`` seconds, at
    most ``wait_at_most``, then skipped); ``on_busy`` hears the holder's name first.
    """
    store = service.store
    started = time.monotonic()
    run = LeasedRun(user, None)
    while (fence := store.claim_rep(user.id, worker, ttl)) is None:
        if run.busy_with is None:
            run.busy_with = store.rep_status(user.id).lease_owner or "another process"
            if on_busy is not None:
                on_busy(run.busy_with)
        run.waited = time.monotonic() - started
        if if_busy is IfBusy.SKIP or run.waited >= wait_at_most:
            return run
        time.sleep(poll)
    run.waited = time.monotonic() - started if run.busy_with else 0.0
    with LeaseKeeper(store, user.id, fence, ttl):
        try:
            run.report = service.sync_rep(user, on_action, fence=fence)
        except BaseException:  # the cycle never closed: free the rep for others at once
            store.release_rep(user.id, fence)
            raise
    return run
