"""The asset version hash and the live-reload watch filter (docs/protocol.md §5, issue 4): which
edits change the version, and which files the watcher ignores."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from watchfiles import Change

from server.assets import compute_version
from server.livereload import asset_filter


def make_tree(root: Path) -> tuple[Path, Path]:
    public, templates = root / "public", root / "templates"
    (public / "css").mkdir(parents=True)
    templates.mkdir()
    (public / "app.js").write_text("console.log('hi');\n")
    (public / "css" / "app.css").write_text("body { color: black; }\n")
    (templates / "index.html").write_text("<!doctype html><p>{{ version }}</p>\n")
    return public, templates


# --- the version hash (unit) -----------------------------------------------------------


def test_version_is_stable_across_calls_and_locations(tmp_path: Path) -> None:
    public, templates = make_tree(tmp_path / "a")
    version = compute_version([public, templates])
    assert len(version) == 12 and int(version, 16) >= 0
    assert compute_version([public, templates]) == version
    copy = tmp_path / "b"
    shutil.copytree(tmp_path / "a", copy)  # another checkout, another mtime: same content
    assert compute_version([copy / "public", copy / "templates"]) == version


def test_version_changes_exactly_with_content(tmp_path: Path) -> None:
    public, templates = make_tree(tmp_path)
    roots = [public, templates]
    original = compute_version(roots)
    css = public / "css" / "app.css"

    css.write_text("body { color: red; }\n")
    edited = compute_version(roots)
    assert edited != original

    css.write_text("body { color: black; }\n")  # undo: content, not mtime, counts
    assert compute_version(roots) == original

    (templates / "index.html").write_text("<!doctype html><p>changed</p>\n")
    assert compute_version(roots) not in (original, edited)


def test_version_changes_on_add_delete_and_rename(tmp_path: Path) -> None:
    public, templates = make_tree(tmp_path)
    roots = [public, templates]
    seen = {compute_version(roots)}
    (public / "new.js").write_text("export {};\n")
    seen.add(compute_version(roots))
    (public / "new.js").rename(public / "renamed.js")
    seen.add(compute_version(roots))
    (public / "renamed.js").unlink()
    assert compute_version(roots) in seen  # back to the start
    assert len(seen) == 3


def test_version_separates_roots(tmp_path: Path) -> None:
    """The same file moved from public/ to templates/ is a different asset set."""
    public, templates = make_tree(tmp_path)
    before = compute_version([public, templates])
    (public / "app.js").rename(templates / "app.js")
    assert compute_version([public, templates]) != before


IGNORED = [
    ".app.js.swp",  # vim swap
    ".app.js.swo",
    "4913",  # vim's write probe
    "app.js~",  # backup
    ".#app.js",  # emacs lock
    "#app.js#",  # emacs autosave
    ".git/HEAD",
    ".git/objects/ab/cdef",
    "css/.cache/x",
    "__pycache__/x.pyc",
    ".DS_Store",
    "app.js.tmp",
]


@pytest.mark.parametrize("name", IGNORED)
def test_version_ignores_editor_and_tool_files(tmp_path: Path, name: str) -> None:
    public, templates = make_tree(tmp_path)
    before = compute_version([public, templates])
    target = public / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("scratch")
    assert compute_version([public, templates]) == before


@pytest.mark.parametrize("name", IGNORED)
def test_watch_filter_drops_ignored_files(tmp_path: Path, name: str) -> None:
    public, templates = tmp_path / "public", tmp_path / "templates"
    accept = asset_filter([public, templates])
    assert not accept(Change.modified, str(public / name))
    assert not accept(Change.added, str(templates / name))


def test_watch_filter_keeps_served_files(tmp_path: Path) -> None:
    public, templates = tmp_path / "public", tmp_path / "templates"
    accept = asset_filter([public, templates])
    for path in (public / "app.js", public / "css" / "app.css", templates / "index.html"):
        for change in Change:
            assert accept(change, str(path)), (change, path)
    # Hidden parents *outside* a root (e.g. a checkout under ~/.local) do not matter.
    hidden_home = tmp_path / ".local" / "public"
    assert asset_filter([hidden_home])(Change.modified, str(hidden_home / "app.js"))
