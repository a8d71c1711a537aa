"""The console's layers import downwards only: core imports no other app, and the ownership
records do not import the permission checks that read them (see docs/console.md)."""

from __future__ import annotations

import ast
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_imports_no_other_console_app():
    above = {path.relative_to(CONSOLE).as_posix(): sorted(
        name for name in imported_modules(path)
        if name.startswith("console.") and not name.startswith("console.core"))
        for path in (CONSOLE / "core").rglob("*.py")}
    assert {path: names for path, names in above.items() if names} == {}


def test_ownership_does_not_import_the_permission_checks():
    names = imported_modules(CONSOLE / "access" / "ownership.py")
    assert not {name for name in names if name.startswith("console.access.permissions")}
