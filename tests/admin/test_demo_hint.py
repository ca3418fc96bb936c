"""After `crmsync demo`, a command run without ``--home`` says where the demo's deployment
is (the default one is empty), with the command to run on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.admin.demo_hint import demo_hint
from crmsync.crm.builtin import BuiltinCrm


def demo_deployment(home: Path) -> Path:
    demo = home / "demo"
    demo.mkdir(parents=True)
    with BuiltinCrm(f"sqlite:///{demo / 'crm.sqlite'}") as crm:
        crm.create_user("ann@example.com", "Ann")
    return demo


def crmsync(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update(CRMSYNC_HOME=str(home), COLUMNS="400")
    command = [sys.executable, "-c", "from crmsync.admin.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_export_after_the_demo_names_the_demos_deployment(tmp_path: Path) -> None:
    demo = demo_deployment(tmp_path)
    ran = crmsync(tmp_path, "crm", "export")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""  # the default deployment is empty ...
    # ... and the note says so, with the command that reads the demo's.
    assert f"the demo's is in {demo}" in ran.stderr
    assert f"crmsync --home {demo} crm export" in ran.stderr
    again = crmsync(tmp_path, "--home", str(demo), "crm", "export")
    assert "ann@example.com" in again.stdout and "note:" not in again.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--cycles", "1"],
        ["--org", "east", "status"],
        ["--help"],
        [],
    ],
)
def test_no_note_where_it_does_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    demo_deployment(tmp_path)
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path))
    assert demo_hint(argv) is None


def test_no_note_once_the_default_deployment_holds_something(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_deployment(tmp_path)
    monkeypatch.setenv("CRMSYNC_HOME", str(tmp_path / "elsewhere"))
    assert demo_hint(["--home", str(tmp_path), "status"]) is not None
    assert demo_hint(["status"]) is None  # no demo under the home in CRMSYNC_HOME
    with BuiltinCrm(f"sqlite:///{tmp_path / 'crm.sqlite'}") as crm:
        crm.create_user("bob@example.com", "Bob")
    assert demo_hint([f"--home={tmp_path}", "status"]) is None
