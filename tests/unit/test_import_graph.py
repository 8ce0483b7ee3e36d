"""What the running server imports (issue 10, item 5): never the Python peer (the
`lancall_peer` package, outside the server's), and no import circle through the entry
point (`__main__ -> app -> livereload -> __main__` was one; the RELOAD=server supervisor
now gets its entry point by name).

Two views: the modules a fresh interpreter has loaded after importing the server (a subprocess,
so this test run's own imports do not count), and the import statements in the source,
including those inside functions, which only run later (e.g. on RELOAD=server)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from server.config import PROJECT_ROOT

SERVER = PROJECT_ROOT / "server"
PEER = PROJECT_ROOT / "lancall_peer"
TEST_ONLY = ("lancall_peer",)


def loaded_after_importing(*modules: str) -> set[str]:
    code = f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
    code += "print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout))


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def static_imports() -> dict[str, set[str]]:
    """server or peer module -> the server and peer modules it imports anywhere in its source."""
    graph: dict[str, set[str]] = {}
    for path in [*SERVER.rglob("*.py"), *PEER.rglob("*.py")]:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
                targets.add(module)
                # `from . import x` / `from .pkg import mod`: the names may be modules too.
                targets.update(f"{module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t.startswith(("server", "lancall_peer"))}
    return {name: {t for t in targets if t in graph} for name, targets in graph.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_running_server_never_loads_the_test_peer() -> None:
    loaded = loaded_after_importing("server.app", "server.__main__", "server.echo", "server.supervisor")
    assert "server.webrtc" in loaded  # the check sees the echo's helpers, so it is not vacuous
    assert not {m for m in loaded if m.startswith(TEST_ONLY)}


def test_no_server_module_imports_the_peer_even_lazily() -> None:
    graph = static_imports()
    assert "server.webrtc" in graph["lancall_peer.connection"]  # the peer does use the server's helpers
    importers = {name for name, targets in graph.items() if any(t.startswith(TEST_ONLY) for t in targets)}
    assert importers and {name for name in importers if not name.startswith(TEST_ONLY)} == set()


def test_no_import_circle_through_the_entry_point() -> None:
    graph = static_imports()
    assert "server.supervisor" in reachable(graph, "server.__main__")  # RELOAD=server is seen
    assert "server.__main__" not in reachable(graph, "server.__main__")
    assert "server.__main__" not in loaded_after_importing("server.app", "server.supervisor")
