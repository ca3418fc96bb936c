"""`crmsync serve`: the web console, the REST API and the scheduler in one process."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.console import Console

from crmsync.admin.cycle_options import Interval, UsersEvery
from crmsync.admin.web.limits import DEFAULT_MAX_BODY_BYTES
from crmsync.admin.web.proxies import TrustedProxies
from crmsync.service.crm_users import DEFAULT_EVERY
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore

console = Console()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    interval: Interval = 60.0,
    workers: Annotated[int, typer.Option(help="Cycles run at once at most.")] = 2,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            help="PostgreSQL: the org's reps in a cycle at once at most, across every "
            "serve process (default: no cap beyond --workers per process)."
        ),
    ] = None,
    users_every: UsersEvery = DEFAULT_EVERY,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark session cookies Secure (serve behind HTTPS).")
    ] = False,
    no_scheduler: Annotated[
        bool, typer.Option(help="Serve the console only; sync elsewhere (e.g. cron).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses or networks of the reverse proxies whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed, e.g. 127.0.0.1; '*' for "
            "any peer. Default: none (the client is whoever connects).",
            envvar="CRMSYNC_FORWARDED_ALLOW_IPS",
        ),
    ] = "",
    max_body_bytes: Annotated[
        int,
        typer.Option(
            help="Largest request body accepted from a signed-in caller (413 above it).",
            envvar="CRMSYNC_MAX_BODY_BYTES",
            min=1024,
        ),
    ] = DEFAULT_MAX_BODY_BYTES,
    broker: Annotated[
        str | None,
        typer.Option(
            help="The Redis broker of `crmsync worker` (with --no-scheduler): /metrics "
            "shows its queue length.",
            envvar="CRMSYNC_BROKER_URL",
        ),
    ] = None,
) -> None:
    """Run the web console, the REST API (/api/v1) and the scheduler in one process.

    SIGTERM or Ctrl-C stops accepting requests, lets the cycles in flight finish, then
    exits.
    """
    import uvicorn

    from crmsync.admin.web import create_app
    from crmsync.service.crms import org_api_state
    from crmsync.service.logs import configure_logging
    from crmsync.service.metrics import SyncMetrics
    from crmsync.service.scheduler import Scheduler

    try:
        trusted = TrustedProxies.parse(forwarded_allow_ips)
    except ValueError as invalid:
        raise typer.BadParameter(str(invalid), param_hint="--forwarded-allow-ips") from None
    configure_logging()
    deployment = Deployment.from_env()
    # Open for the life of the process: the reps gauge reads it at each scrape.
    store = StateStore(deployment.state_url, deployment.secrets_key_path)
    metrics = SyncMetrics(store.rep_statuses, crm_state=lambda: org_api_state(deployment))
    if broker:
        from crmsync.service.worker_metrics import BrokerQueue

        metrics.registry.register(BrokerQueue(broker))
    if not store.admins():
        console.print(
            "[yellow]warning:[/yellow] no admin account yet; create one with "
            "`crmsync admin create NAME`"
        )
    scheduler = None
    if not no_scheduler:
        scheduler = Scheduler(
            deployment,
            interval=interval,
            workers=workers,
            metrics=metrics,
            max_in_flight=max_in_flight,
            users_every=users_every,
        )
    web = create_app(
        deployment,
        scheduler=scheduler,
        metrics=metrics,
        secure_cookies=secure_cookies,
        forwarded_allow_ips=trusted,
        max_body_bytes=max_body_bytes,
    )
    # uvicorn handles SIGTERM / SIGINT: it stops serving, then runs the app's shutdown,
    # which stops the scheduler after the cycles in flight; then it re-raises the signal
    # to the handler found before it started, which exits with status 0: a stop asked for.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    try:
        # proxy_headers off: the app reads forwarded headers itself, from the proxies named
        # above only (uvicorn's own default believes anyone connecting from 127.0.0.1).
        uvicorn.run(
            web, host=host, port=port, log_config=None, access_log=False, proxy_headers=False
        )
    finally:
        store.close()


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)
