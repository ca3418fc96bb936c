"""Where the demo's data is, for a person who runs a command without ``--home`` after
`crmsync demo`: the demo keeps its org in ``HOME/demo``, so the default deployment in
``HOME`` is empty, and reading it would quietly show (and create) an empty one."""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from crmsync.service.deployment import Deployment

# What makes a deployment not empty: a CRM user, or a configuration.
_CONTENT = (("crm.sqlite", "crm_users"), ("state.sqlite", "sync_configs"))
# The options before the command that take a value.
_GLOBAL_OPTIONS = ("--home", "--org")


def demo_hint(argv: Sequence[str]) -> str | None:
    """For the command line ``argv`` (without the program name): a note naming the demo's
    deployment and the same command run on it, when the command would work on the default
    org's deployment in its home folder, that deployment is empty, and ``HOME/demo`` holds
    the demo's. ``None`` otherwise (and for `crmsync demo` itself)."""
    options, command = _split(argv)
    if not command or command[0] in ("demo", "--help") or "--org" in options:
        return None
    if any(os.environ.get(v) for v in ("CRMSYNC_STATE_URL", "CRMSYNC_CRM_URL", "CRMSYNC_ORG")):
        return None  # a deployment named some other way than by its folder
    home = Path(options["--home"]) if "--home" in options else Deployment.home_from_env()
    demo = home / "demo"
    if not (demo / "crm.sqlite").is_file() or not _empty(home):
        return None
    again = shlex.join(["crmsync", "--home", str(demo), *command])
    return f"The deployment in {home} is empty; the demo's is in {demo}: {again}"


def _split(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The options given before the command (``--home PATH``, ``--org=NAME`` ...), and the
    command with its own arguments."""
    options: dict[str, str] = {}
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        name, _, value = rest.pop(0).partition("=")
        if name not in _GLOBAL_OPTIONS:
            return options, []  # --help, --install-completion ...: no command runs
        options[name] = value or (rest.pop(0) if rest else "")
    return options, rest


def _empty(home: Path) -> bool:
    return not any(_has_rows(home / name, table) for name, table in _CONTENT)


def _has_rows(database: Path, table: str) -> bool:
    """Whether ``table`` has a row, read without creating the file or its tables."""
    if not database.is_file():
        return False
    try:
        uri = f"{database.as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            return connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False  # no such table yet: nothing in it
