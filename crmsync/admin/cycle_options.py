"""Options of the commands that run or schedule cycles (`crmsync serve`, `crmsync
scheduler`, `crmsync worker`), declared once so each reads and checks them alike."""

from __future__ import annotations

from typing import Annotated

import typer

Interval = Annotated[float, typer.Option(help="Seconds between two cycles of one rep (jittered).")]
UsersEvery = Annotated[
    float,
    typer.Option(help="Seconds between two reads of the CRM's user list (new reps).", min=0),
]
VisibilityTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds before the broker hands a batch a worker took but never acknowledged "
        "to another worker; the same on the workers and the scheduler.",
        envvar="CRMSYNC_VISIBILITY_TIMEOUT",
        min=1,
    ),
]
