"""The README's systemd unit for `crmsync worker` works for every instance it names: the
instance name is the worker's metrics port (``910%i`` made the tenth worker's port 91010,
which the worker refuses)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main

from crmsync.admin.cli import app

README = Path(__file__).parents[2] / "README.md"


def test_each_named_worker_instance_starts_with_its_own_metrics_port() -> None:
    text = README.read_text()
    unit = text[text.index("crmsync-worker@.service") :]
    instances = re.search(r"systemctl enable --now ((?:crmsync-worker@\S+ ?)+)", unit)
    assert instances is not None
    names = [n.removeprefix("crmsync-worker@").rstrip(")") for n in instances[1].split()]
    exec_start = re.search(r"^ExecStart=\S+ (worker .*)$", unit, re.M)
    assert exec_start is not None and "%i" in exec_start[1]
    command = typer.main.get_command(app)
    parent = command.make_context("crmsync", ["worker"])
    worker = command.get_command(parent, "worker")
    for name in [*names, "65535"]:
        _, *args = shlex.split(exec_start[1].replace("%i", name))
        parsed = worker.make_context("worker", args, parent=parent)
        assert parsed.params["metrics_port"] == int(name), name
