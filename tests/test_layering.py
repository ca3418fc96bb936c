"""The dependency rule of DESIGN.md for the whole package: each layer imports only the
layers below it, and only backends touch vendor libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import crmsync

ROOT = Path(crmsync.__file__).parent
# What each layer may import from crmsync (besides itself).
ALLOWED = {
    "domain": (),
    "engine": ("crmsync.domain",),
    # Below the backends: what CRM and groupware backends share (they may not import
    # each other), such as reading a response with a size cap.
    "transport": ("crmsync.domain",),
    "crm": ("crmsync.domain", "crmsync.transport"),
    "groupware": ("crmsync.domain", "crmsync.transport"),
    "store": ("crmsync.domain",),
    "service": (
        "crmsync.domain",
        "crmsync.engine",
        "crmsync.crm",
        "crmsync.groupware",
        "crmsync.store",
        "crmsync.transport",
    ),
    "admin": ("crmsync.",),
}
VENDOR = ("exchangelib", "msal", "httpx", "sqlalchemy", "fastapi", "icalendar", "alembic")


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_a_layer_imports_only_the_layers_below(layer: str) -> None:
    offenders = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in imports(path):
            if not name.startswith("crmsync."):
                continue
            own = name.startswith(f"crmsync.{layer}")
            if not own and not name.startswith(ALLOWED[layer]):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


@pytest.mark.parametrize("layer", ["domain", "engine"])
def test_the_domain_and_the_engine_import_no_vendor_library(layer: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for name in imports(path)
        if name.split(".")[0] in VENDOR
    ]
    assert offenders == []
