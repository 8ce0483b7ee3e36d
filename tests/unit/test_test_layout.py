"""The test tree's own rules (issue 10, item 7): helpers come from tests/support, never from a
conftest.py (fixtures stay there), and every test module lives in the folder that marks it."""

from __future__ import annotations

import ast
from pathlib import Path

from server.config import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
KIND_FOLDERS = {"unit", "integration", "browser"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_nothing_imports_from_a_conftest() -> None:
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): sorted(m for m in imported_modules(path) if "conftest" in m)
        for path in [*TESTS.rglob("*.py"), *(PROJECT_ROOT / "bench").rglob("*.py")]
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_every_test_module_is_in_a_kind_folder() -> None:
    misplaced = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in KIND_FOLDERS
    ]
    assert misplaced == []
