"""RELOAD=server: the development mode that also restarts the Python process when a .py
file under server/ changes, using watchfiles' process runner.

The child is a normal `RELOAD=assets` server (`server/livereload.py`), so asset edits
still only reload pages. Clients see the restart as a 1001 close, reconnect with their
resume token, and reload only when the asset version in the new `ready` differs from
their page's. The entry point passes its own module name, so nothing here imports it
(no import circle; tests/unit/test_import_graph.py).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from watchfiles import PythonFilter, run_process
from watchfiles.main import FileChange

from .config import ReloadMode, Settings, port_unusable
from .livereload import DEBOUNCE_MS, STEP_MS

log = logging.getLogger("server.supervisor")


CODE_DIR = Path(__file__).resolve().parent


def _log_restart(changes: set[FileChange]) -> None:
    names = sorted({Path(path).name for _, path in changes})
    log.info("event=server-restart files=%d changed=%s", len(changes), ",".join(names[:5]))


def serve_child(entry_module: str) -> None:
    """The restarted process: `entry_module`'s `main()` (`python -m server`'s) with
    RELOAD=assets from the inherited environment, so its settings are re-read from the
    same variables. Imported by name, so this module never imports the entry point."""
    main: Callable[[], int] = importlib.import_module(entry_module).main

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


def run_with_restarts(settings: Settings, entry_module: str, code_dir: Path = CODE_DIR) -> None:
    """Run `entry_module.main()` in a child process and restart it when a .py file under
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
        args=(entry_module,),
        target_type="function",
        callback=_log_restart,
        watch_filter=PythonFilter(),
        step=STEP_MS,
        debounce=DEBOUNCE_MS,
        sigint_timeout=int(settings.shutdown_timeout) + 5,
    )
    log.info("event=restarter-stopped restarts=%d", restarts)
