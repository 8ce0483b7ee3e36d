"""scripts/setup (behind scripts/serve and scripts/test): one install serves both, and
pip's noise about the machine's missing index locations is not shown. Runs in a copy of
the scripts with a stand-in `.venv/bin/python` that records what pip was asked to do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from server.config import PROJECT_ROOT

FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
echo "WARNING: Location 'file:///opt/nowhere/simple/x/' is ignored: it is neither a file nor a directory." >&2
echo "WARNING: a warning that matters" >&2
"""


def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "setup", root / "scripts" / "setup")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return root


def setup(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(root / "scripts" / "setup"), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


def installs(root: Path) -> list[str]:
    log = root / ".venv" / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if "install" in line and "-e" in line.split()]


def test_serve_after_test_installs_nothing_and_they_do_not_alternate(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    setup(root, "--browser")  # scripts/test
    assert len(installs(root)) == 1 and ".[fast,redis,test]" in installs(root)[0]
    for args in [(), ("--browser",), (), ("--browser",)]:  # serve, test, serve, test
        setup(root, *args)
    assert len(installs(root)) == 1


def test_a_changed_pyproject_installs_once_more(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    setup(root)
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# changed\n")
    setup(root)
    setup(root)
    assert len(installs(root)) == 2
    assert len(list((root / ".venv").glob(".installed-*"))) == 1


def test_missing_index_location_warnings_are_filtered_and_others_kept(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    result = setup(root)
    assert "is ignored: it is neither a file nor a directory" not in result.stderr + result.stdout
    assert "a warning that matters" in result.stderr
    assert "--quiet" in (root / ".venv" / "calls.log").read_text()
