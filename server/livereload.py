"""Live reload (PROTOCOL.md §4): every open tab reloads within a fraction of a second
of a change under public/ or templates/, without a server restart.

`livereload_ctx` (an aiohttp cleanup_ctx, on unless RELOAD=off) watches both asset
roots with watchfiles. Changes are batched by watchfiles' step/debounce: a batch ends
once the tree has been quiet for STEP_MS (or after DEBOUNCE_MS of continuous writes),
so an editor or `git checkout` saving ten files at once gives one new version and one
reload. After a batch the content hash is recomputed; only if it differs does every open
socket get a fresh `ready` (same id, new version), on which the client reloads.

`run_with_restarts` (RELOAD=server) is the development mode that also restarts the
Python process when a .py file under server/ changes, using watchfiles' process runner.
The child is a normal `RELOAD=assets` server, so asset edits still only reload pages.
Clients see the restart as a 1001 close, reconnect with their resume token, and reload
only when the asset version in the new `ready` differs from their page's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from aiohttp import web
from watchfiles import Change, PythonFilter, awatch, run_process
from watchfiles.main import FileChange

from .appkeys import HUB, SETTINGS
from .assets import compute_version, is_ignored
from .config import ReloadMode, Settings
from .hub import Hub
from .rtc import deliver

log = logging.getLogger("server.livereload")

# A batch ends after STEP_MS without a new change; continuous writing is cut into
# batches of at most DEBOUNCE_MS. One save is seen 50-100 ms after it happens.
STEP_MS = 50
DEBOUNCE_MS = 400
STOP_TIMEOUT = 2.0  # seconds to wait for the watcher thread after stop is set


def asset_roots(settings: Settings) -> list[Path]:
    """The roots of the asset version, in the order `create_app` hashes them."""
    return [settings.public_dir, settings.templates_dir]


def asset_filter(roots: Sequence[Path]) -> Callable[[Change, str], bool]:
    """A watchfiles filter accepting exactly the changes that can alter the version:
    editor temp files, .git, caches (assets.is_ignored) are dropped."""

    def accept(change: Change, raw_path: str) -> bool:
        path = Path(raw_path)
        for root in roots:
            if path.is_relative_to(root):
                return not is_ignored(path, root)
        return not is_ignored(path)

    return accept


async def refresh(hub: Hub, roots: Sequence[Path], changes: set[FileChange]) -> bool:
    """Recompute the version; if it changed, push a fresh `ready` to every open socket.
    Returns whether it changed."""
    started = time.perf_counter()
    version = await asyncio.to_thread(compute_version, roots)
    if version == hub.version:
        log.debug("event=assets-unchanged version=%s files=%d", version, len(changes))
        return False
    previous = hub.version
    out = hub.set_version(version)
    await deliver(out)
    log.info(
        "event=assets-changed version=%s previous=%s files=%d sockets=%d ms=%.1f",
        version,
        previous,
        len(changes),
        len(out.sends),
        (time.perf_counter() - started) * 1000,
    )
    return True


async def watch_assets(hub: Hub, roots: Sequence[Path], stop: asyncio.Event, watching: asyncio.Event) -> None:
    """Watch the existing roots until `stop` is set. `watching` is set just before the
    watcher is created; the watch is in place when the caller next runs."""
    existing = [root for root in roots if root.is_dir()]
    for root in roots:
        if root not in existing:
            log.warning("event=livereload-skip reason=missing-dir path=%s", root)
    if not existing:
        watching.set()
        return
    log.info(
        "event=livereload-watching roots=%s step_ms=%d debounce_ms=%d",
        ",".join(str(root) for root in existing),
        STEP_MS,
        DEBOUNCE_MS,
    )
    watching.set()
    try:
        # awatch creates its inotify watches synchronously on the first __anext__,
        # before its first await: no change after `watching` is set can be missed.
        async for changes in awatch(
            *existing,
            watch_filter=asset_filter(existing),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=stop,
        ):
            try:
                await refresh(hub, roots, changes)
            except Exception:  # one bad batch (a file vanishing mid-scan) must not end reloads
                log.exception("event=livereload-error")
    except OSError as exc:  # e.g. the inotify watch limit; the server keeps serving
        log.error(
            "event=livereload-disabled error=%r fix=%s",
            str(exc),
            "raise fs.inotify.max_user_watches, or set WATCHFILES_FORCE_POLLING=1",
        )


async def livereload_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: watch public/ and templates/ for the life of the app."""
    settings = app[SETTINGS]
    stop = asyncio.Event()
    watching = asyncio.Event()
    task = asyncio.create_task(
        watch_assets(app[HUB], asset_roots(settings), stop, watching), name="livereload"
    )
    await watching.wait()  # a test (or a user) editing right after startup is seen
    yield
    stop.set()  # the watcher thread checks it every STEP_MS
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- RELOAD=server ---------------------------------------------------------------------

CODE_DIR = Path(__file__).resolve().parent


def _log_restart(changes: set[FileChange]) -> None:
    names = sorted({Path(path).name for _, path in changes})
    log.info("event=server-restart files=%d changed=%s", len(changes), ",".join(names[:5]))


def serve_child() -> None:
    """The restarted process: a plain `python -m server` with RELOAD=assets (from the
    inherited environment), so its settings are re-read from the same variables."""
    from .__main__ import main

    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl+C before the server installed its handlers
        code = 0
    # The runner's SIGINT (after a terminal's own Ctrl+C) may land after the server has
    # stopped; it must not print a traceback on the way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def run_with_restarts(settings: Settings, code_dir: Path = CODE_DIR) -> None:
    """Run the server in a child process and restart it when a .py file under
    `code_dir` changes. Returns when SIGINT/SIGTERM stop it (the child is stopped with
    SIGINT, so it closes every socket with 1001 first)."""
    # The child re-reads its settings from this environment (everything the parent was
    # given) but must not itself start a restarter.
    os.environ["RELOAD"] = ReloadMode.ASSETS.value
    log.info("event=restarter-watching dir=%s", code_dir)
    restarts = run_process(
        code_dir,
        target=serve_child,
        target_type="function",
        callback=_log_restart,
        watch_filter=PythonFilter(),
        step=STEP_MS,
        debounce=DEBOUNCE_MS,
        sigint_timeout=int(settings.shutdown_timeout) + 5,
    )
    log.info("event=restarter-stopped restarts=%d", restarts)
