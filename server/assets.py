"""The client-asset version (docs/protocol.md §5): a short content hash of public/ and
templates/. Stable across restarts; changes exactly when a served file's content does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from .config import Settings

# Editor droppings and tool caches never count as content (vim swap and its 4913
# probe file, emacs locks and backups, JetBrains/VS Code temp files, OS metadata).
_IGNORED_SUFFIXES = (".swp", ".swo", ".swx", ".tmp", ".temp", ".bak", ".orig", ".crdownload", "~")
_IGNORED_NAMES = frozenset({"4913", ".DS_Store", "Thumbs.db", "__pycache__", "node_modules"})


def is_ignored(path: Path, root: Path | None = None) -> bool:
    """True for files whose changes must neither bump the version nor trigger a reload."""
    parts = path.relative_to(root).parts if root and path.is_relative_to(root) else path.parts[-1:]
    for part in parts:
        if part.startswith(".") or part in _IGNORED_NAMES:  # .git, .#lock, .cache, ...
            return True
        if part.startswith("#") and part.endswith("#"):
            return True
    return path.name.endswith(_IGNORED_SUFFIXES)


def asset_files(roots: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(root, file) for every served file under the roots, in a stable order."""
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not is_ignored(path, root):
                yield root, path


def asset_roots(settings: Settings) -> list[Path]:
    """What the asset version covers, in hashing order: the app and live reload agree."""
    return [settings.public_dir, settings.templates_dir]


def compute_version(roots: Iterable[Path]) -> str:
    """12 hex digits of SHA-256 over every file's relative path and content."""
    digest = hashlib.sha256()
    for index, root in enumerate(roots):
        digest.update(f"root{index}\0".encode())
        for _, path in asset_files([root]):
            try:
                content = path.read_bytes()
            except OSError:  # deleted between listing and reading: an editor's rename
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:12]
