"""Live reload (docs/protocol.md §5): every open tab reloads within a fraction of a second
of a change under public/ or templates/, without a server restart.

`livereload_ctx` (an aiohttp cleanup_ctx, on unless RELOAD=off) watches both asset
roots with watchfiles. Changes are batched by watchfiles' step/debounce: a batch ends
once the tree has been quiet for STEP_MS (or after DEBOUNCE_MS of continuous writes),
so an editor or `git checkout` saving ten files at once gives one new version and one
reload. After a batch the content hash is recomputed; only if it differs does every open
socket get a fresh `ready` (same id, new version), on which the client reloads.

RELOAD=server, which also restarts the Python process on code changes, is
`server/supervisor.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from aiohttp import web
from watchfiles import Change, awatch
from watchfiles.main import FileChange

from .appkeys import BUNDLER, HUB, SETTINGS
from .assets import asset_roots, compute_version, is_ignored
from .bundle import ClientBundler
from .hub import Hub
from .outbox import deliver

log = logging.getLogger("server.livereload")

# A batch ends after STEP_MS without a new change; continuous writing is cut into
# batches of at most DEBOUNCE_MS. One save is seen 50-100 ms after it happens.
STEP_MS = 50
DEBOUNCE_MS = 400
STOP_TIMEOUT = 2.0  # seconds to wait for the watcher thread after stop is set


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


async def refresh(
    hub: Hub, roots: Sequence[Path], changes: set[FileChange], bundler: ClientBundler | None = None
) -> bool:
    """Recompute the version; if it changed, build the client for it (server/bundle.py),
    then push a fresh `ready` to every open socket. Returns whether it changed."""
    started = time.perf_counter()
    version = await asyncio.to_thread(compute_version, roots)
    if version == hub.version:
        log.debug("event=assets-unchanged version=%s files=%d", version, len(changes))
        return False
    if bundler is not None:
        await bundler.build(version)  # before the tabs reload and ask for it
    previous = hub.version
    out = hub.set_version(version)
    deliver(out, hub)
    log.info(
        "event=assets-changed version=%s previous=%s files=%d sockets=%d ms=%.1f",
        version,
        previous,
        len(changes),
        len(out.sends),
        (time.perf_counter() - started) * 1000,
    )
    return True


async def watch_assets(
    hub: Hub,
    roots: Sequence[Path],
    stop: asyncio.Event,
    watching: asyncio.Event,
    bundler: ClientBundler | None = None,
) -> None:
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
        # The waiting ctx resumes only once this task first suspends, and awatch
        # creates its inotify watches before its first await: when the app is up, a
        # change cannot be missed.
        async for changes in awatch(
            *existing,
            watch_filter=asset_filter(existing),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=stop,
        ):
            try:
                await refresh(hub, roots, changes, bundler)
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
        watch_assets(app[HUB], asset_roots(settings), stop, watching, app[BUNDLER]), name="livereload"
    )
    await watching.wait()  # a test (or a user) editing right after startup is seen
    yield
    stop.set()  # the watcher thread checks it every STEP_MS
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
