"""Log lines an attacker can cause, kept short and few.

A malformed HTTP request is the client's fault, not ours: aiohttp logs each one as an
ERROR with a ~700-byte traceback, so a loop of junk requests fills the disk. Such
records become one short INFO line, at most a few per window, with a count of what
was left out. Genuine handler errors (500s) keep their traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError


class RateLimitedLog:
    """At most `per_window` lines per `window` seconds; the next line after a quiet
    spell says how many were left out (`suppressed=N`)."""

    def __init__(
        self, per_window: int = 5, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.clock = clock
        self._window_start = float("-inf")
        self._emitted = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """(may log now, how many were suppressed since the last line)."""
        now = self.clock()
        if now - self._window_start >= self.window:
            self._window_start = now
            self._emitted = 0
        if self._emitted >= self.per_window:
            self.suppressed += 1
            return False, 0
        self._emitted += 1
        suppressed, self.suppressed = self.suppressed, 0
        return True, suppressed


class BadRequestFilter(logging.Filter):
    """On aiohttp's server logger: malformed requests become short, rate-limited lines."""

    def __init__(self) -> None:
        super().__init__()
        self.limit = RateLimitedLog()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        allowed, suppressed = self.limit.allow()
        if not allowed:
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        reason = " ".join(str(exc.message or exc).split())[:120]
        record.msg = "event=bad-request addr=%s status=%s reason=%r suppressed=%d"
        record.args = (remote, exc.code, reason, suppressed)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return True


def install() -> None:
    """Idempotent: create_app may run several times in one process (tests)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestFilter) for f in logger.filters):
        logger.addFilter(BadRequestFilter())
