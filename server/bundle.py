"""The browser client as served (setting `BUNDLE`).

`public/` is the source: ES modules in feature folders, served as they are. When esbuild
is installed (an npm dev tool that scripts/setup installs, a native binary) the server
also builds them into a few files for the page to load: the lobby's entry, the chunks it
imports, and each feature's chunk, loaded when used (`import()`). A first visit on a
phone then needs a handful of requests instead of fifty (README "Performance").

Each process builds into its own temporary directory, once at start and again for each
new asset version (live reload builds before it tells the tabs to reload), so several
workers never share files and nothing is written under the project. The version is the
hash of the sources (server/assets.py), so a bundle is never served under another
version's URL. Without esbuild, or if a build fails (a syntax error mid-edit), the
sources are served: slower to load, the same app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .config import PROJECT_ROOT

log = logging.getLogger("server.bundle")

ESBUILD = PROJECT_ROOT / "node_modules" / ".bin" / "esbuild"
ENTRY = "app.js"
STYLES = "styles.css"  # @imports every stylesheet: one file on the wire instead of five
BUILD_TIMEOUT = 20.0  # seconds; esbuild takes tens of milliseconds


@dataclass(frozen=True, slots=True)
class Bundle:
    """One build: its files by served name, and what the page should preload."""

    version: str
    directory: Path
    files: frozenset[str]
    preload: tuple[str, ...]  # the chunks the entry imports statically
    stylesheet: str | None  # every stylesheet in one, when the sources have STYLES


def esbuild_arguments(public_dir: Path, out_dir: Path) -> list[str]:
    styles = [str(public_dir / STYLES)] if (public_dir / STYLES).is_file() else []
    return [
        str(public_dir / ENTRY),
        *styles,
        "--bundle",
        "--splitting",  # each import() its own chunk, shared code in shared chunks
        "--format=esm",
        "--minify",
        "--target=es2022",
        "--legal-comments=none",
        "--entry-names=[name]",
        "--chunk-names=[name]-[hash]",  # features-…, qrscan-…; shared code is chunk-…
        f"--outdir={out_dir}",
        f"--metafile={out_dir / 'meta.json'}",
        "--log-level=error",
    ]


def read_bundle(version: str, out_dir: Path) -> Bundle:
    """The files esbuild wrote, from its metafile."""
    meta = json.loads((out_dir / "meta.json").read_text())
    files: set[str] = set()
    preload: list[str] = []
    for output, info in meta["outputs"].items():
        name = Path(output).name
        files.add(name)
        if name == ENTRY:
            imports = info.get("imports", [])
            preload = [Path(i["path"]).name for i in imports if i.get("kind") == "import-statement"]
    if ENTRY not in files:
        raise ValueError(f"esbuild wrote no {ENTRY}")
    return Bundle(version, out_dir, frozenset(files), tuple(preload), STYLES if STYLES in files else None)


class ClientBundler:
    """Builds and holds the current bundle; `current` is None when the sources are served."""

    def __init__(self, public_dir: Path, esbuild: Path | None = ESBUILD) -> None:
        self.public_dir = public_dir
        self.esbuild = esbuild if esbuild is not None and esbuild.is_file() else None
        self.current: Bundle | None = None
        self._root: Path | None = None
        if self.esbuild is None:
            log.info("event=bundle-off reason=no-esbuild fix=%s", "scripts/setup installs it (npm)")

    @property
    def enabled(self) -> bool:
        return self.esbuild is not None

    def _out_dir(self, version: str) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="lan-call-bundle-"))
        out = self._root / version
        shutil.rmtree(out, ignore_errors=True)
        return out

    def _done(self, version: str, out_dir: Path, started: float) -> None:
        bundle = read_bundle(version, out_dir)
        self.current = bundle
        log.info(
            "event=bundle-built version=%s files=%d ms=%.0f",
            version,
            len(bundle.files),
            (time.perf_counter() - started) * 1000,
        )
        # Only the current version's URLs are served from a build: older ones go.
        if self._root is not None:
            for old in self._root.iterdir():
                if old.name != version:
                    shutil.rmtree(old, ignore_errors=True)

    def _failed(self, version: str, error: str) -> None:
        self.current = None
        log.warning("event=bundle-failed version=%s error=%r serving=sources", version, error[-400:])

    def build_now(self, version: str) -> Bundle | None:
        """At start, before the first request."""
        if self.esbuild is None:
            return None
        started = time.perf_counter()
        out_dir = self._out_dir(version)
        try:
            done = subprocess.run(
                [str(self.esbuild), *esbuild_arguments(self.public_dir, out_dir)],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                self._failed(version, done.stderr)
            else:
                self._done(version, out_dir, started)
        except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            self._failed(version, str(exc))
        return self.current

    async def build(self, version: str) -> Bundle | None:
        """For a new asset version (live reload), without blocking the event loop."""
        if self.esbuild is None:
            return None
        started = time.perf_counter()
        out_dir = self._out_dir(version)
        try:
            process = await asyncio.create_subprocess_exec(
                str(self.esbuild),
                *esbuild_arguments(self.public_dir, out_dir),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(process.communicate(), BUILD_TIMEOUT)
            if process.returncode != 0:
                self._failed(version, stderr.decode(errors="replace"))
            else:
                self._done(version, out_dir, started)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            self._failed(version, str(exc))
        return self.current

    def file(self, version: str, name: str) -> Path | None:
        """The built file served as /assets/<version>/<name>, if the bundle has it."""
        bundle = self.current
        if bundle is None or bundle.version != version or name not in bundle.files:
            return None
        return bundle.directory / name

    def close(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
