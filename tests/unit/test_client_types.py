"""The browser client's JSDoc types, checked by TypeScript (issue 21, part 5): the page's
scripts (public/tsconfig.json) and the worker scripts (public/tsconfig.workers.json) have
no type errors, so e.g. `link.is('conected')` fails here. Nothing is emitted. TypeScript is
an npm devDependency (scripts/setup runs `npm ci`); the folder marks this test `unit`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from server.config import PROJECT_ROOT

TSC = PROJECT_ROOT / "node_modules" / ".bin" / "tsc"
CONFIGS = ("public", "public/tsconfig.workers.json")


def missing() -> str | None:
    """Why the check cannot run here (one line), or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed (scripts/setup installs it)"
    if not TSC.exists():
        return "TypeScript is not installed (scripts/setup runs npm ci)"
    return None


@pytest.mark.parametrize("config", CONFIGS)
def test_client_has_no_type_errors(config: str) -> None:
    reason = missing()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [str(TSC), "-p", config, "--pretty", "false"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"tsc -p {config}:\n{result.stdout}{result.stderr}"
