"""One browser socket as a hub `Connection`: a bounded send queue and its writer task.

`send` and `close` only queue, so whoever delivers (a peer's handler, the expiry task,
live reload) never waits on this socket. A socket that falls behind by more than
`limit_bytes`, or whose write has not completed within `stall_seconds`, is aborted with
a log line: a client that stops reading costs its own connection, nobody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("server.rtc")

CLOSE_SECONDS = 1.0  # a polite close (close frame, wait for the reply) before aborting
slow_readers_total = 0  # connections aborted for falling behind (metrics.py)


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Pong:
    payload: bytes


class WebSocketConnection:
    """A hub `Connection` backed by an aiohttp WebSocket."""

    __slots__ = (
        "__weakref__",
        "_bytes",
        "_queue",
        "_wake",
        "_writer",
        "_writing_since",
        "limit_bytes",
        "peer_id",
        "remote",
        "stall_seconds",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        remote: str,
        transport: asyncio.Transport | None,
        limit_bytes: int,
        stall_seconds: float,
    ) -> None:
        self.ws = ws
        self.remote = remote
        self.transport = transport
        self.limit_bytes = limit_bytes
        self.stall_seconds = stall_seconds
        self.peer_id = "-"  # for log lines, once the hub has named it
        self._queue: deque[str | _Close | _Pong] = deque()
        self._bytes = 0
        self._wake = asyncio.Event()
        self._writing_since: float | None = None
        self._writer = asyncio.create_task(self._write_loop())

    # --- the hub's side (never blocks) ---------------------------------------------------

    def send(self, text: str) -> None:
        if self._writer.done():
            return
        self._queue.append(text)
        self._bytes += len(text)
        if self._bytes > self.limit_bytes:
            self.abort(f"send queue over {self.limit_bytes} bytes")
            return
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        self._queue.append(_Close(code, reason))
        self._wake.set()

    def pong(self, payload: bytes) -> None:
        if not self._queue:  # a peer that is behind can wait for its pongs
            self._queue.append(_Pong(payload))
            self._wake.set()

    def take_unsent(self) -> list[str]:
        unsent = [item for item in self._queue if isinstance(item, str)]
        self._queue.clear()
        self._bytes = 0
        return unsent

    # --- the socket's side ----------------------------------------------------------------

    def abort(self, why: str) -> None:
        """Drop the connection now (the handler then sees it close and cleans up)."""
        global slow_readers_total
        if not self._writer.done():
            slow_readers_total += 1
            log.warning("event=slow-reader peer=%s addr=%s reason=%r", self.peer_id, self.remote, why)
            self._writer.cancel()
        if self.transport is not None:
            self.transport.abort()

    def stop(self) -> None:
        """The socket is gone: end the writer quietly."""
        self._writer.cancel()

    def stalled(self, now: float) -> bool:
        """A write has been waiting longer than `stall_seconds` (the client stopped reading)."""
        return self._writing_since is not None and now - self._writing_since > self.stall_seconds

    async def finished(self) -> None:
        """Wait for the writer to end (after a `close`, or the socket dying)."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._writer)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ws, queue = self.ws, self._queue
        try:
            while True:
                if not queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                item = queue[0]
                self._writing_since = loop.time()
                if isinstance(item, str):
                    await ws.send_str(item)
                    self._bytes -= len(item)
                elif isinstance(item, _Pong):
                    await ws.pong(item.payload)
                else:
                    queue.popleft()
                    await self._close_politely(item)
                    return
                self._writing_since = None
                # Only now: a frame whose write failed stays queued, for take_unsent.
                queue.popleft()
        except (ConnectionError, RuntimeError):
            return  # the socket died under us; its handler cleans up

    async def _close_politely(self, item: _Close) -> None:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.ws.close(code=item.code, message=item.reason.encode()[:120])
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()
