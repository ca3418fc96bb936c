"""The built-in CRM imports only `crmsync.domain` from crmsync (DESIGN: the dependency rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import crmsync.crm.builtin

PACKAGE = Path(crmsync.crm.builtin.__file__).parent


def test_backend_imports_only_the_domain() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                allowed = ("crmsync.domain", "crmsync.crm.builtin")
                if name.startswith("crmsync") and not name.startswith(allowed):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
