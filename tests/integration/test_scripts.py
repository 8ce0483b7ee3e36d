"""scripts/setup (behind scripts/serve and scripts/test): one install serves both, and
pip's noise about the machine's missing index locations is not shown. Runs in a copy of
the scripts with a stand-in `.venv/bin/python` that records what pip was asked to do, and
a stand-in `npm` first on PATH that records what npm was asked to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from server.config import PROJECT_ROOT

FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
echo "WARNING: Location 'file:///opt/nowhere/simple/x/' is ignored: it is neither a file nor a directory." >&2
echo "WARNING: a warning that matters" >&2
"""
FAKE_NPM = """#!/bin/sh
echo "$*" >> "$(pwd)/npm.log"
mkdir -p node_modules
"""


def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "setup", root / "scripts" / "setup")
    for name in ("pyproject.toml", "package.json", "package-lock.json"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return root


def setup(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{root.parent / 'bin'}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(root / "scripts" / "setup"), *args], capture_output=True, text=True, timeout=60, env=env
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
    assert (root / "npm.log").read_text().splitlines() == ["ci --no-audit --no-fund --loglevel=error"]


def test_a_changed_package_lock_installs_the_npm_packages_once_more(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    setup(root)
    setup(root)
    (root / "package-lock.json").write_text((root / "package-lock.json").read_text() + "\n")
    setup(root)
    setup(root, "--browser")
    assert len((root / "npm.log").read_text().splitlines()) == 2


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
