"""The browser client's layout: Prettier (.prettierrc.json, an npm devDependency) formats
public/, tests/js and the Node helpers in tests/support, and no line there is longer than
its printWidth (110, like the server's ruff). Prettier leaves comments and string literals
as they are, so the line check catches what it does not break. Nothing is rewritten."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from server.config import PROJECT_ROOT

PRETTIER = PROJECT_ROOT / "node_modules" / ".bin" / "prettier"
PATTERNS = ("public/**/*.js", "tests/js/*.mjs", "tests/support/*.mjs")
SKIPPED = "public/vendor"  # a library's own code, never ours to format
MAX_LINE = json.loads((PROJECT_ROOT / ".prettierrc.json").read_text())["printWidth"]


def missing() -> str | None:
    """Why the Prettier check cannot run here (one line), or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed (scripts/setup installs it)"
    if not PRETTIER.exists():
        return "Prettier is not installed (scripts/setup runs npm ci)"
    return None


def client_files() -> list[Path]:
    files = {path for pattern in PATTERNS for path in PROJECT_ROOT.glob(pattern)}
    return sorted(path for path in files if not path.relative_to(PROJECT_ROOT).as_posix().startswith(SKIPPED))


def test_client_is_formatted_by_prettier() -> None:
    reason = missing()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [str(PRETTIER), "--check", *PATTERNS, f"!{SKIPPED}/**"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"node_modules/.bin/prettier --write fixes these:\n{result.stdout}{result.stderr}"
    )


def test_no_client_line_is_too_long() -> None:
    files = client_files()
    assert files, "no client files found"
    too_long = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {len(line)} characters"
        for path in files
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if len(line) > MAX_LINE
    ]
    assert too_long == [], (
        f"lines over {MAX_LINE} characters (Prettier breaks neither comments nor strings: "
        "reflow the comment, or split the string with +):\n" + "\n".join(too_long)
    )
