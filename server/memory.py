"""Giving memory back after many sockets have closed (issue 18, finding 30).

A closed connection leaves reference cycles (aiohttp's protocol, transport and response
objects point at each other) that only Python's full collection frees, and glibc keeps
freed memory in its arenas rather than returning it. Under join/leave churn with nobody
left the server grew 56 → 100 MiB over 12 cycles of 250 TLS clients (bench/soak.py).
So once the number of sockets has fallen well below its recent peak, and not more often
than every `interval` seconds, the cycles are collected and glibc is asked to return the
free memory (`malloc_trim`); the same bench then stays flat at about 61 MiB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("server.memory")


def _malloc_trim() -> Callable[[], None]:
    """glibc's malloc_trim(0), or nothing where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    return lambda: trim(0)


class MemoryReturn:
    """Call `observe` about once a second with the number of open sockets."""

    def __init__(
        self,
        min_drop: int = 16,
        fraction: float = 0.1,
        interval: float = 10.0,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.min_drop = min_drop
        self.fraction = fraction
        self.interval = interval
        trim = _malloc_trim()

        def collect_and_trim() -> None:
            gc.collect()
            trim()

        self.release = release or collect_and_trim
        self.peak = 0
        self.last = float("-inf")
        self.releases = 0

    def observe(self, connections: int, now: float) -> bool:
        """Release if sockets fell by at least `min_drop` and `fraction` of the peak since
        the last release, `interval` seconds after it at the earliest. Returns whether it did."""
        self.peak = max(self.peak, connections)
        drop = self.peak - connections
        if drop < max(self.min_drop, self.peak * self.fraction) or now - self.last < self.interval:
            return False
        started = time.perf_counter()
        self.release()
        self.releases += 1
        log.debug(
            "event=memory-returned sockets=%d peak=%d ms=%.1f",
            connections,
            self.peak,
            (time.perf_counter() - started) * 1000,
        )
        self.peak, self.last = connections, now
        return True
