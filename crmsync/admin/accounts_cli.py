"""`crmsync admin ...`: the console's local admin accounts and their API tokens."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from crmsync.admin.web.security import MANAGE, Permission, hash_password
from crmsync.service.deployment import Deployment
from crmsync.store import StateStore
from crmsync.store.accounts import AccountExists

admin_app = typer.Typer(help="Admin accounts of the web console and API.", no_args_is_help=True)


def _store() -> StateStore:
    deployment = Deployment.from_env()
    return StateStore(deployment.state_url, deployment.secrets_key_path)


def _password(env: str) -> str:
    """From the environment variable ``env``, else asked twice (never an argument: shell
    history and process lists would keep it)."""
    value = os.environ.get(env)
    if value:
        return value
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@admin_app.command("create")
def create(
    username: str,
    permission: Annotated[
        list[Permission] | None,
        typer.Option(help="Grant this permission (repeatable; default: all four)."),
    ] = None,
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password (else prompted).")
    ] = "CRMSYNC_ADMIN_PASSWORD",
) -> None:
    """Create an admin account for the console."""
    granted = set(permission or [*MANAGE, Permission.VIEW_ALL_DATA])
    with _store() as store:
        try:
            store.create_admin(username, hash_password(_password(password_env)), granted)
        except (AccountExists, ValueError) as refused:
            typer.echo(f"error: {refused}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"Created {username} with: {', '.join(sorted(p.label for p in granted))}.")


@admin_app.command("password")
def password(
    username: str,
    password_env: Annotated[str, typer.Option()] = "CRMSYNC_ADMIN_PASSWORD",
) -> None:
    """Set a new password (signs the admin out everywhere)."""
    with _store() as store:
        try:
            changed = store.update_admin(
                username, password_hash=hash_password(_password(password_env))
            )
        except ValueError as refused:
            typer.echo(f"error: {refused}", err=True)
            raise typer.Exit(1) from None
    if not changed:
        typer.echo(f"error: no admin named {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Changed the password of {username}.")


@admin_app.command("list")
def list_admins() -> None:
    """The admins and their permissions."""
    with _store() as store:
        for admin in store.admins():
            labels = ", ".join(sorted(Permission(p).label for p in admin.permissions))
            typer.echo(f"{admin.username}\t{labels}")


@admin_app.command("token")
def token(
    username: str,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'monitoring'.")],
) -> None:
    """Create an API token acting as USERNAME (printed once; store it safely)."""
    with _store() as store:
        if store.admin(username) is None:
            typer.echo(f"error: no admin named {username!r}", err=True)
            raise typer.Exit(1)
        typer.echo(store.create_api_token(username, name))


@admin_app.command("delete")
def delete(username: str) -> None:
    """Delete an admin account with its sessions and tokens."""
    with _store() as store:
        if not store.delete_admin(username):
            typer.echo(f"error: no admin named {username!r}", err=True)
            raise typer.Exit(1)
    typer.echo(f"Deleted {username}.")
