"""Putting a rep's latest cycle into the state store as a page test needs it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from crmsync.store import StateStore, schema
from crmsync.store.database import ensure_rep


def stamp_cycle(
    store: StateStore, rep_id: str, started: dt.datetime, error: str | None = None
) -> None:
    """The rep's latest cycle ran from ``started`` to one minute later, ending with
    ``error`` (or none)."""
    with store._write() as conn:
        ensure_rep(conn, rep_id)
        conn.execute(
            update(schema.reps)
            .where(schema.reps.c.rep_id == rep_id)
            .values(
                last_cycle_started=started,
                last_cycle_finished=started + dt.timedelta(minutes=1),
                last_error=error,
            )
        )
