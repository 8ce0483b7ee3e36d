"""Live reload (docs/protocol.md §5): every open tab reloads within a fraction of a second
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
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from aiohttp import web
from watchfiles import Change, PythonFilter, awatch, run_process
from watchfiles.main import FileChange

from .appkeys import HUB, SETTINGS
from .assets import asset_roots, compute_version, is_ignored
from .config import ReloadMode, Settings, port_unusable
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


class _ExpectedStop(logging.Filter):
    """watchfiles warns when SIGINT/SIGTERM stop its runner; for this server that is
    the normal way out, so those lines are logged at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and (
            "KeyboardInterrupt" in record.getMessage() or "received signal" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def check_port(host: str | None, port: int) -> None:
    """Raise SettingsError if the server could not bind host:port. The child reports
    a busy port too, but only the parent can end the program (exit code 2) instead of
    waiting for a code change next to a dead child. Binds like asyncio's create_server:
    SO_REUSEADDR, and IPv6 sockets IPv6-only."""

    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:  # HOST does not resolve
        raise port_unusable(host, port, exc.strerror or str(exc)) from None
    for family, kind, proto, _, address in addresses:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine lacks, as asyncio skips it
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise port_unusable(host, port, exc.strerror or str(exc)) from None


def run_with_restarts(settings: Settings, code_dir: Path = CODE_DIR) -> None:
    """Run the server in a child process and restart it when a .py file under
    `code_dir` changes. Returns when SIGINT/SIGTERM stop it (the child is stopped with
    SIGINT, so it closes every socket with 1001 first). Raises SettingsError if the
    port is taken."""
    check_port(settings.host, settings.port)
    # The child re-reads its settings from this environment (everything the parent was
    # given) but must not itself start a restarter.
    os.environ["RELOAD"] = ReloadMode.ASSETS.value
    logging.getLogger("watchfiles.main").addFilter(_ExpectedStop())
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
