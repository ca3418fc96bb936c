"""The `crmsync` command: setup, configurations, sync cycles, statuses, the demo.

Every command works on the deployment in ``--home`` (or ``CRMSYNC_HOME``, or the user's
state directory); see `crmsync.service.deployment.Deployment`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import make_url

from crmsync.admin import config_file
from crmsync.admin.accounts_cli import admin_app
from crmsync.admin.crm_cli import crm_app
from crmsync.admin.demo_hint import demo_hint
from crmsync.admin.reports import preview_table, print_report, status_table
from crmsync.admin.serve_cli import serve
from crmsync.admin.setup_cli import setup_app
from crmsync.admin.validation import configuration_name_problem
from crmsync.admin.workers_cli import scheduler, worker
from crmsync.domain.contact_fields import ContactFilter, FieldMapping
from crmsync.domain.crm_settings import CrmSettings
from crmsync.domain.settings import (
    ConflictBehaviour,
    ContactOwnership,
    ContactSettings,
    Direction,
    EventSelection,
    EventSettings,
    EventWindow,
    SyncConfig,
    configuration_warnings,
)
from crmsync.service.deployment import Deployment
from crmsync.service.leased import IfBusy, default_worker_id, run_leased
from crmsync.service.runner import SyncService
from crmsync.store import ConfigConflict

app = typer.Typer(
    help="Keep a CRM's contacts and events in sync with mail and calendar servers.",
    no_args_is_help=True,
)
app.add_typer(crm_app, name="crm")
app.add_typer(admin_app, name="admin")
app.add_typer(setup_app, name="setup")
console = Console()


@app.callback()
def _home(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Deployment folder (databases, keys).", envvar="CRMSYNC_HOME"),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option(help="The org to work on (default: CRMSYNC_ORG, else the default org)."),
    ] = None,
) -> None:
    if home is not None:
        os.environ["CRMSYNC_HOME"] = str(home)
    if org is not None:
        # For this command only: one process may run several (tests, scripts).
        before = os.environ.get("CRMSYNC_ORG")
        os.environ["CRMSYNC_ORG"] = org
        ctx.call_on_close(lambda: _restore("CRMSYNC_ORG", before))


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def open_service() -> SyncService:
    return SyncService(Deployment.from_env())


@app.command()
def demo(
    cycles: Annotated[int | None, typer.Option(help="Stop after this many live cycles.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between live cycles.")] = 5.0,
    port: Annotated[int, typer.Option(help="Port for the local CalDAV/CardDAV server.")] = 5232,
) -> None:
    """Start a local CalDAV/CardDAV server, a sample org, and sync it live until Ctrl-C."""
    from crmsync.admin.demo import run_demo

    run_demo(
        Deployment.from_env().home / "demo", console, cycles=cycles, interval=interval, port=port
    )


config_app = typer.Typer(help="Sync configurations for groups of reps.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("add")
def configs_add(
    name: str,
    user: Annotated[list[str] | None, typer.Option(help="Rep email (repeatable).")] = None,
    profile: Annotated[list[str] | None, typer.Option(help="Profile name (repeatable).")] = None,
    contacts: Annotated[Direction, typer.Option(help="Contacts sync direction.")] = Direction.BOTH,
    events: Annotated[Direction, typer.Option(help="Events sync direction.")] = Direction.BOTH,
    contacts_conflict: Annotated[ConflictBehaviour, typer.Option()] = ConflictBehaviour.CRM_WINS,
    events_conflict: Annotated[ConflictBehaviour, typer.Option()] = ConflictBehaviour.CRM_WINS,
    sync_private: Annotated[bool, typer.Option(help="Sync private events.")] = False,
    delete_synced_events: Annotated[bool, typer.Option()] = True,
    propagate_contact_deletions: Annotated[bool, typer.Option()] = False,
    ownership: Annotated[
        ContactOwnership,
        typer.Option(
            help="Which CRM contacts go to the mail server: the rep's own (users_records), "
            "every contact (all), or none (selected_none)."
        ),
    ] = ContactOwnership.USERS_RECORDS,
    contact_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="CRM → mail contact filter 'FIELD OPERATOR [VALUE]', e.g. "
            "'mailing_address.country equals DE' (repeatable, AND-ed).",
        ),
    ] = None,
    field_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="MAIL_FIELD=CRM_FIELD, e.g. phone=custom:direct_line; MAIL_FIELD= stops "
            "the field from syncing (repeatable).",
        ),
    ] = None,
    window: Annotated[EventWindow, typer.Option(help="Events that end from when on sync.")] = (
        EventWindow.TODAY
    ),
    window_days: Annotated[int, typer.Option(help="N for last_n_days (1-180).")] = 30,
    auto_relate: Annotated[
        bool,
        typer.Option(
            help="Relate events from the mail server to their attendees' contacts or lead."
        ),
    ] = False,
    user_selected_events: Annotated[
        bool,
        typer.Option(help="Sync mail-side events only when the rep gives them the org's category."),
    ] = False,
    sync_series: Annotated[
        bool, typer.Option(help="Sync recurring events (off: series are left out).")
    ] = True,
    description: Annotated[str, typer.Option(help="What the configuration is for.")] = "",
    inactive: Annotated[bool, typer.Option(help="Save without activating.")] = False,
) -> None:
    """Create or replace a configuration."""
    with open_service() as service:
        # A stored name (perhaps from before names were checked) may be kept.
        if service.store.config(name) is None and (problem := configuration_name_problem(name)):
            console.print(f"[red]error:[/red] {problem}", highlight=False)
            raise typer.Exit(1)
        user_ids = tuple(service.rep_by_email(email).id for email in user or ())
        profile_ids = []
        for profile_name in profile or ():
            found = service.crm.find_profile(profile_name)
            if found is None:
                console.print(f"[red]error:[/red] no profile named {profile_name!r}")
                raise typer.Exit(1)
            profile_ids.append(found.id)
        config = SyncConfig(
            name=name,
            active=not inactive,
            description=description,
            user_ids=user_ids,
            profile_ids=tuple(profile_ids),
            contacts=ContactSettings(
                contacts,
                contacts_conflict,
                propagate_contact_deletions,
                ownership,
                filters=tuple(ContactFilter.parse(text) for text in contact_filter or ()),
                field_mappings=tuple(FieldMapping.parse(text) for text in field_map or ()),
            ),
            events=EventSettings(
                events,
                events_conflict,
                sync_private,
                delete_synced_events,
                sync_series=sync_series,
                window=window,
                window_days=window_days,
                auto_relate=auto_relate,
                selection=(
                    EventSelection.USER_SELECTED if user_selected_events else EventSelection.ALL
                ),
            ),
        )
        warnings = service.save_config(config)
    console.print(f"Saved configuration {name!r}.")
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@config_app.command("export")
def config_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
) -> None:
    """Print (or write) the org's settings and configurations as YAML."""
    with open_service() as service:
        text = config_file.export_text(service)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"Wrote {output}.")


@config_app.command("apply")
def config_apply(
    file: Path,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Validate and show the diff only.")] = False,
) -> None:
    """Validate FILE, show what changes, then save it (after confirmation or --yes)."""
    with open_service() as service:
        try:
            document = config_file.read_document(service, file.read_text())
        except config_file.DocumentError as refused:
            for problem in refused.problems:
                console.print(f"[red]error:[/red] {problem}", highlight=False)
            raise typer.Exit(1) from None
        changes = config_file.diff(
            config_file.export_text(service),
            config_file.document_text(service, document),
            str(file),
        )
        if document.password is not None:
            changes += "(the service account password is replaced)\n"
        if document.crm_secret is not None:
            changes += "(the Salesforce key or secret is replaced)\n"
        if not changes:
            console.print("Nothing to change.")
            return
        typer.echo(changes, nl=False)
        if dry_run or not (yes or typer.confirm("Apply these changes?")):
            console.print("Nothing was changed.")
            return
        warnings = config_file.apply_document(service, document)
    console.print(f"Applied {file}.")
    for name, found in warnings.items():
        for warning in found:
            console.print(f"[yellow]warning:[/yellow] {name}: {warning}")


org_app = typer.Typer(help="The orgs (CRMs) this deployment serves.", no_args_is_help=True)
app.add_typer(org_app, name="org")


@org_app.command("add")
def org_add(
    name: str,
    crm_url: Annotated[str | None, typer.Option(help="The org's CRM database URL.")] = None,
    state_url: Annotated[str | None, typer.Option(help="The org's state database URL.")] = None,
) -> None:
    """Register another org, e.g. a sandbox; use it with `crmsync --org NAME ...`."""
    Deployment.add_org(Deployment.from_env().home, name, state_url, crm_url)
    console.print(f"Added org {name!r}; select it with --org {name}.")


@org_app.command("list")
def org_list() -> None:
    """The deployment's orgs with their active configurations and covered mailboxes."""
    table = Table("Org", "CRM", "Active configurations", "Mailboxes")
    for org in Deployment.from_env().orgs():
        with SyncService(org) as service:
            active = [c.name for c in service.store.configs() if c.active]
            table.add_row(
                org.org,
                _crm_shown(service.crm_settings(), org.crm_url),
                ", ".join(active),
                str(len(service.claimed_mailboxes())),
            )
    console.print(table)


def _crm_shown(settings: CrmSettings, builtin_url: str) -> str:
    """The org's CRM: a Salesforce org by its My Domain URL, else the built-in CRM's
    database."""
    if settings.is_salesforce:
        return f"Salesforce {settings.my_domain_url}" + (" (sandbox)" if settings.sandbox else "")
    return f"built-in: {_without_password(builtin_url)}"


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@config_app.command("delete")
def config_delete(name: str) -> None:
    """Delete a configuration; its reps stop syncing (nothing is deleted on either side)."""
    with open_service() as service:
        if not service.store.delete_config(name):
            raise LookupError(f"no configuration named {name!r}")
    console.print(f"Deleted configuration {name!r}.")


@config_app.command("list")
def configs_list() -> None:
    """List the configurations with their assignments and directions."""
    with open_service() as service:
        table = Table("Name", "Active", "Users", "Profiles", "Contacts", "Events", "Warnings")
        for config in service.store.configs():
            table.add_row(
                config.name,
                "yes" if config.active else "no",
                str(len(config.user_ids)),
                str(len(config.profile_ids)),
                config.contacts.direction.value,
                config.events.direction.value,
                "\n".join(configuration_warnings(config)),
            )
        console.print(table)


@app.command()
def sync(
    rep: Annotated[str | None, typer.Option(help="Only this rep's email.")] = None,
    if_busy: Annotated[
        IfBusy,
        typer.Option(help="A rep whose cycle runs elsewhere (serve, a worker): wait or skip."),
    ] = IfBusy.WAIT,
    wait_at_most: Annotated[
        float, typer.Option(help="Seconds to wait for a busy rep before skipping it.")
    ] = 600.0,
) -> None:
    """Run one sync cycle for every rep (or one rep) and print what it did.

    Each cycle takes the rep's lease, as `serve` and the workers do, so it never runs
    beside another cycle of the same rep.
    """
    worker = default_worker_id("cli")
    with open_service() as service:
        reps = [service.rep_by_email(rep)] if rep else service.reps()
        failed = False
        for user in reps:

            def busy(owner: str, email: str = user.email) -> None:
                doing = "waiting for it" if if_busy is IfBusy.WAIT else "skipping the rep"
                console.print(f"{email}: a cycle runs elsewhere ({owner}); {doing}")

            run = run_leased(
                service,
                user,
                worker=worker,
                if_busy=if_busy,
                wait_at_most=wait_at_most,
                on_busy=busy,
            )
            if run.report is None:
                console.print(f"{user.email}: skipped, its cycle runs elsewhere ({run.busy_with})")
                continue
            if run.busy_with is not None:
                console.print(f"{user.email}: waited {run.waited:.0f} s for the other cycle")
            print_report(console, run.report)
            failed = failed or run.report.error is not None
    if failed:
        raise typer.Exit(1)


@app.command()
def preview(
    config: Annotated[
        str | None,
        typer.Option(
            help="Preview this configuration (active or not) for the reps assigned to it."
        ),
    ] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep's email.")] = None,
) -> None:
    """Print what the next cycle would create, update, delete or skip, writing nothing."""
    with open_service() as service:
        chosen = None
        if config is not None:
            chosen = service.store.config(config)
            if chosen is None:
                raise LookupError(f"no configuration named {config!r}")
        reps = [service.rep_by_email(rep)] if rep else service.reps()
        if chosen is not None and not rep:
            reps = [
                u
                for u in reps
                if u.id in chosen.user_ids
                or (u.profile_id is not None and u.profile_id in chosen.profile_ids)
            ]
        for user in reps:
            result = service.preview_rep(user, chosen)
            if result.note:
                console.print(f"{user.email}: {result.note}")
            elif not any(result.kinds.values()):
                console.print(f"{user.email}: nothing to do")
            else:
                console.print(preview_table(result))


@app.command()
def status(rep: Annotated[str | None, typer.Option(help="Only this rep's email.")] = None) -> None:
    """Print per-rep statuses (the spec's Tables 4-6), then what needs attention (a pause
    the mail server asked for, a refused sign-in, held deletions, an overdue cycle ...)
    and which worker runs a rep's cycle now."""
    from crmsync.admin.web.views import rep_lines

    with open_service() as service:
        reps = [service.rep_by_email(rep)] if rep else service.reps()
        # The table and the lines below it share one read: the rep's status, or every rep's.
        store = service.store
        statuses = (
            {reps[0].id: store.rep_status(reps[0].id)}
            if rep
            else {s.rep_id: s for s in store.rep_statuses()}
        )
        console.print(status_table(service, reps, statuses))
        for line in rep_lines(service, reps, service.clock(), statuses):
            if line["attention"]:
                attention = ", ".join(line["attention"])
                console.print(f"{line['email']}: needs attention: {attention}", markup=False)
            if line["running_on"]:
                console.print(
                    f"{line['email']}: cycle running on {line['running_on']}", markup=False
                )


@app.command()
def reset(rep: Annotated[str, typer.Option(help="The rep's email.")]) -> None:
    """Mark a rep for reset: the next cycle re-pairs their items, changing no record."""
    with open_service() as service:
        service.mark_for_reset(service.rep_by_email(rep))
    console.print(f"{rep}: Marked for reset.")


@app.command("connection-test")
def connection_test(rep: Annotated[str, typer.Option(help="A rep's email.")]) -> None:
    """Check, step by step and without writing anything, that crmsync can reach a rep's
    mailbox; exits with status 1 if a step fails."""
    from crmsync.admin.web.views import connection_test as run

    with open_service() as service:
        result = run(service, rep)
    table = Table("Step", "Result", "Detail", "What to do", title=f"Connection test for {rep}")
    for step in result["steps"]:
        table.add_row(step["name"], step["status"].replace("_", " "), step["detail"], step["fix"])
    console.print(table)
    if not result["passed"]:
        raise typer.Exit(1)


@app.command()
def why(item_id: Annotated[str, typer.Argument(help="A CRM id or a mail-server item id.")]) -> None:
    """Print an item's history: each cycle's action or skip and the rule that decided it."""
    with open_service() as service:
        history = service.store.item_history(item_id)
        if not history:
            console.print(f"No history for {item_id} (within the audit retention).")
            return
        table = Table(
            "Time", "Kind", "Action", "Writes to", "Rule", "Error", title=f"History of {item_id}"
        )
        for entry in history:
            table.add_row(
                entry.at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.kind.value,
                entry.action,
                entry.target.value if entry.target else "",
                entry.rule,
                entry.error or "",
            )
        console.print(table)


@app.command("confirm-deletes")
def confirm_deletes(rep: Annotated[str, typer.Option(help="The rep's email.")]) -> None:
    """Let the rep's next cycle carry out the deletions the mass-delete guard held back."""
    with open_service() as service:
        service.confirm_deletes(service.rep_by_email(rep))
    console.print(f"{rep}: the next cycle carries out the held-back deletions.")


@app.command()
def errors(
    rep: Annotated[str | None, typer.Option(help="Only this rep's email.")] = None, limit: int = 50
) -> None:
    """Print the newest rows of the error report."""
    with open_service() as service:
        rep_id = service.rep_by_email(rep).id if rep else None
        rows = service.store.errors(rep_id=rep_id, limit=limit)
        if not rows:
            console.print("No sync errors.")
            return
        emails = {user.id: user.email for user in service.crm.list_users()}
        table = Table("Time", "Rep", "Kind", "Item", "Operation", "Type", "Message", "Suggestion")
        for row in rows:
            table.add_row(
                row.at.strftime("%Y-%m-%d %H:%M"),
                emails.get(row.rep_id, row.rep_id),
                row.kind.value if row.kind else "",
                row.item_id or "",
                row.operation,
                row.error_type.value,
                row.message,
                row.suggestion,
            )
        console.print(table)


# Long-running processes, listed after the commands an admin runs by hand.
app.command()(serve)
app.command()(worker)
app.command()(scheduler)


def main() -> None:
    from crmsync.service import shared_rate_limits

    shared_rate_limits.configure(Deployment.redis_url_from_env())
    if note := demo_hint(sys.argv[1:]):
        Console(stderr=True).print(
            f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True
        )
    try:
        app()
    except (LookupError, ConfigConflict, ValueError) as refused:
        Console(stderr=True).print(f"[red]error:[/red] {refused.args[0]}")
        sys.exit(1)
