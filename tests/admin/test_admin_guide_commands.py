"""Every command printed in docs/admin-guide.md works as printed: the ```sh blocks are read
from the guide and run in order, through the CLI, against a deployment like the demo's
(its sample org of three reps, on a local Radicale).

What the guide marks before a block, in an HTML comment, steers this test:
``<!-- guide test: scratch deployment -->`` runs the block in a deployment of its own (its
servers are examples that do not exist; the commands only save settings), and
``<!-- guide test: not run: crmsync serve -->`` leaves out the commands starting so
(long-running), and ``brings: FILE`` makes a file the reader downloads elsewhere (a Google
service account's key); directives are separated by ";". ``<!-- guide test: file NAME -->``
before a code block writes the block to NAME, as the reader would. A word in capitals
standing for the reader's value (CONTACT_ID, EVENT_ID) is filled in from the deployment.
``export NAME=VALUE`` lines set the environment; other programs (openssl) run as printed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.admin import cli, setup_cli
from crmsync.admin.cli import app
from crmsync.admin.demo import REPS, SERVICE_ACCOUNT, set_up_demo_org
from crmsync.groupware.dav.local_server import LocalRadicale
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService
from tests.groupware.google.fake_google import service_account_key

GUIDE = Path(__file__).parents[2] / "docs" / "admin-guide.md"
BLOCK = re.compile(
    r"(?:<!-- guide test: (?P<directive>[^>]*?) -->\s*\n)?```sh\n(?P<body>.*?)```", re.S
)
SHOWN_FILE = re.compile(
    r"<!-- guide test: file (?P<name>\S+) -->\s*\n```\w*\n(?P<content>.*?)```", re.S
)
PLACEHOLDER = re.compile(r"\b[A-Z]+_ID\b")
PASSWORD = "a long enough console password"
# The files a reader brings, by name, and how the test makes one.
BROUGHT = {"crmsync-sa.json": service_account_key}


@dataclass
class Block:
    line: int
    commands: list[str]
    scratch: bool = False
    not_run: list[str] = field(default_factory=list)
    brings: list[str] = field(default_factory=list)
    writes: tuple[str, str] | None = None  # a file the guide shows: name, content


def guide_blocks(text: str) -> Iterator[Block]:
    """The sh blocks in order; a file the guide shows comes as a block that writes it."""
    files = {m.start(): m for m in SHOWN_FILE.finditer(text)}
    for match in sorted([*BLOCK.finditer(text), *files.values()], key=lambda m: m.start()):
        if match.start() in files:
            yield Block(_line(text, match), [], writes=(match["name"], match["content"]))
            continue
        directives = (match["directive"] or "").split(";")
        block = Block(_line(text, match), _commands(match["body"]))
        for directive in (d.strip() for d in directives if d.strip()):
            if directive == "scratch deployment":
                block.scratch = True
            elif directive.startswith("not run: "):
                block.not_run.append(directive.removeprefix("not run: "))
            elif directive.startswith("brings: "):
                block.brings.append(directive.removeprefix("brings: "))
            else:
                raise AssertionError(f"line {block.line}: unknown directive {directive!r}")
        yield block


def _line(text: str, match: re.Match[str]) -> int:
    return text[: match.start()].count("\n") + 1


def _commands(body: str) -> list[str]:
    """The block's command lines: continuations joined, comments and blank lines dropped."""
    joined = body.replace("\\\n", " ")
    return [line for line in joined.splitlines() if shlex.split(line, comments=True)]


def test_the_guide_marks_few_commands_not_run() -> None:
    skipped = [c for b in guide_blocks(GUIDE.read_text()) for c in b.not_run]
    assert len(skipped) <= 2, skipped


def test_every_command_in_the_guide_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CRMSYNC_ORG", "CRMSYNC_STATE_URL", "CRMSYNC_CRM_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    home, scratch = tmp_path / "home", tmp_path / "scratch"
    passwords = {SERVICE_ACCOUNT: "service password", **{e: f"{e} pw" for e, _, _ in REPS}}
    server = LocalRadicale(tmp_path / "radicale", passwords, SERVICE_ACCOUNT).start()
    try:
        with SyncService(Deployment.from_env(home)) as service:
            set_up_demo_org(service, server.url, passwords[SERVICE_ACCOUNT])
            ann = service.crm.get_user_by_email(REPS[0][0])
            assert ann is not None
            values = {
                "CONTACT_ID": service.crm.list_contacts(owner_id=ann.id)[0].id,
                "EVENT_ID": service.crm.list_events(owner_id=ann.id)[0].id,
            }
        runner = CliRunner()
        ran = 0
        for block in guide_blocks(GUIDE.read_text()):
            monkeypatch.setenv("CRMSYNC_HOME", str(scratch if block.scratch else home))
            for name in block.brings:
                (tmp_path / name).write_text(BROUGHT[name]())
            if block.writes:
                (tmp_path / block.writes[0]).write_text(block.writes[1])
            for line in block.commands:
                words = shlex.split(PLACEHOLDER.sub(lambda m: values[m[0]], line), comments=True)
                where = f"docs/admin-guide.md:{block.line}: {line.strip()}"
                if words[0] == "export":
                    name, _, value = words[1].partition("=")
                    monkeypatch.setenv(name, value)
                elif any(line.strip().startswith(prefix) for prefix in block.not_run):
                    continue
                elif words[0] == "crmsync":
                    for module in (cli, setup_cli):
                        monkeypatch.setattr(module, "console", cli.Console(width=250))
                    result = runner.invoke(app, words[1:], input=f"{PASSWORD}\n{PASSWORD}\n")
                    assert result.exit_code == 0, f"{where}\n{result.output}{result.exception!r}"
                    ran += 1
                else:
                    if shutil.which(words[0]) is None:
                        pytest.skip(f"{where}: {words[0]} is not installed")
                    done = subprocess.run(words, capture_output=True, text=True, timeout=120)
                    assert done.returncode == 0, f"{where}\n{done.stderr}"
        assert ran >= 30, ran
    finally:
        server.stop()
