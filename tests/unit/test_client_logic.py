"""The browser client's pure logic (the peer link's transition table, the data-channel
message registry), tested with Node's built-in test runner: no browser, no call."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_client_logic_passes_node_test_runner() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the client's unit tests (scripts/setup installs it)"
    suites = sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert suites, "no client test suites found"
    # public/ is plain ES modules with no package.json: let Node detect the module syntax.
    result = subprocess.run(
        [node, "--experimental-detect-module", "--test", *suites],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith(("# pass", "# fail"))]
    assert result.returncode == 0 and "# fail 0" in summary, result.stdout[-4000:] + result.stderr[-2000:]
