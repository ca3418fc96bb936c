"""How the broker's queue of batches behaves: the defaults `crmsync worker`, `crmsync
scheduler` and `crmsync.service.workers` share, kept apart so the CLI reads them without
importing Celery."""

from __future__ import annotations

# Seconds before the broker hands a batch that a worker took but never acknowledged (the
# worker died, or is still running it) to another worker (CRMSYNC_VISIBILITY_TIMEOUT).
# Longer than a batch takes, so a running batch is seldom handed out twice; one that is
# redelivered after its leases moved on writes nothing (the fence).
VISIBILITY_TIMEOUT = 3600.0
# Batches allowed to wait in the broker before the scheduler stops claiming: beyond this
# the workers are behind, and claiming more only ages leases that expire in the queue.
MAX_QUEUED = 4
