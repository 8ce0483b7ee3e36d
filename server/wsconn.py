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
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSCloseCode, web
from aiohttp.base_protocol import BaseProtocol

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
    """A hub `Connection` backed by an aiohttp WebSocket.

    The common case writes at once: with nothing queued and the transport's buffer
    empty, a frame goes straight into the TLS transport from `send`, in the caller's
    step (no task switch; the relay's largest cost after TLS itself, bench/relay.py).
    Otherwise frames queue and a writer task, started on demand and ended when the
    queue drains, writes them in order with backpressure. An idle socket has no task.
    """

    __slots__ = (
        "__weakref__",
        "_bytes",
        "_closing",
        "_ended",
        "_flow",
        "_heard_before",
        "_pinged_at",
        "_queue",
        "_silent_since",
        "_write_now",
        "_writer",
        "_writing_since",
        "heard",
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
        self._ended = False  # closed, aborted or stopped: nothing more is written
        self._closing = False  # the hub asked for a close: what it still sends is not read
        self._writing_since: float | None = None
        self._writer: asyncio.Task[None] | None = None
        self._write_now = _frame_writer(ws)
        # Liveness without a timer per socket or per frame: the handler counts frames
        # received, and `sweep` (once a second, for every socket) compares the count.
        self.heard = 0
        self._heard_before = 0
        self._silent_since = asyncio.get_running_loop().time()
        self._pinged_at: float | None = None
        # The HTTP protocol under the socket: asyncio pauses it when the TCP buffer under
        # TLS passes its high-water mark (the TLS transport's own buffer size stays 0).
        protocol = transport.get_protocol() if transport is not None else None
        self._flow = protocol if isinstance(protocol, BaseProtocol) else None

    # --- the hub's side (never blocks) ---------------------------------------------------

    def send(self, text: str) -> None:
        if self._ended:
            return
        write = self._write_now
        if write is not None and self._ready_now():
            try:  # noqa: SIM105 - suppress() costs a context manager on every relayed frame
                write(text.encode(), _TEXT, 0)
            except (ConnectionError, RuntimeError):
                pass  # the socket is dying; its handler sees it close and cleans up
            return
        self._queue.append(text)
        self._bytes += len(text)
        if self._bytes > self.limit_bytes:
            self.abort(f"send queue over {self.limit_bytes} bytes")
            return
        self._start_writer()

    def close(self, code: int, reason: str) -> None:
        if self._ended or self._closing:
            return
        self._closing = True
        if code == WSCloseCode.POLICY_VIOLATION and self.transport is not None:
            # An abuser (a flood): stop reading it now, and end the connection within
            # CLOSE_SECONDS even if a write to it is stuck behind a full buffer; a polite
            # close queued behind that write waited for the stall timeout, reading the
            # flood all along (issue 18, finding 33).
            with contextlib.suppress(RuntimeError, AttributeError):
                self.transport.pause_reading()
            asyncio.get_running_loop().call_later(CLOSE_SECONDS, self._drop_abuser)
        self._queue.append(_Close(code, reason))
        self._start_writer()

    @property
    def closing(self) -> bool:
        """A close was asked for (or done): frames still arriving are not handled."""
        return self._closing or self._ended

    def _drop_abuser(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.info("event=policy-abort peer=%s addr=%s", self.peer_id, self.remote)
            self.stop()
            self.transport.abort()

    def pong(self, payload: bytes) -> None:
        if self._queue or self._ended:  # a peer that is behind can wait for its pongs
            return
        write = self._write_now
        if write is not None and self._ready_now():
            with contextlib.suppress(ConnectionError, RuntimeError):
                write(payload, _PONG, 0)
            return
        self._queue.append(_Pong(payload))
        self._start_writer()

    def take_unsent(self) -> list[str]:
        unsent = [item for item in self._queue if isinstance(item, str)]
        self._queue.clear()
        self._bytes = 0
        return unsent

    # --- the socket's side ----------------------------------------------------------------

    def abort(self, why: str) -> None:
        """Drop the connection now (the handler then sees it close and cleans up)."""
        global slow_readers_total
        if not self._ended:
            slow_readers_total += 1
            log.warning("event=slow-reader peer=%s addr=%s reason=%r", self.peer_id, self.remote, why)
        self.stop()
        if self.transport is not None:
            self.transport.abort()

    def stop(self) -> None:
        """The socket is gone: end the writer quietly."""
        self._ended = True
        if self._writer is not None:
            self._writer.cancel()

    def stalled(self, now: float) -> bool:
        """A write has been waiting longer than `stall_seconds` (the client stopped reading)."""
        return self._writing_since is not None and now - self._writing_since > self.stall_seconds

    def sweep(self, now: float, heartbeat: float) -> None:
        """Called about once a second: abort a stalled write; ping a socket silent for
        `heartbeat` seconds; drop one still silent half a heartbeat after that ping (a
        phone that left the Wi-Fi sends nothing, not even a close)."""
        if self.stalled(now):
            self.abort(f"a write waited over {self.stall_seconds:g} s")
        elif self.heard != self._heard_before:
            self._heard_before, self._silent_since, self._pinged_at = self.heard, now, None
        elif self._pinged_at is None:
            if now - self._silent_since >= heartbeat:
                self._pinged_at = now
                write = self._write_now
                if write is not None and self._ready_now():
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        write(b"", _PING, 0)
        elif now - self._pinged_at >= heartbeat / 2 and not self._ended:
            log.info(
                "event=timeout peer=%s addr=%s silent=%.1f",
                self.peer_id,
                self.remote,
                now - self._silent_since,
            )
            self.stop()
            if self.transport is not None:
                self.transport.abort()

    async def finished(self) -> None:
        """Wait for the writer to end (after a `close`, or the socket dying)."""
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._writer)

    def _ready_now(self) -> bool:
        """Nothing queued before this frame and the socket taking data: write it now."""
        transport, flow = self.transport, self._flow
        return (
            not self._queue
            and flow is not None
            and not flow.writing_paused
            and transport is not None
            and not transport.is_closing()
        )

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ws, queue = self.ws, self._queue
        try:
            while queue:
                item = queue[0]
                self._writing_since = loop.time()
                if isinstance(item, str):
                    await ws.send_str(item)
                    self._bytes -= len(item)
                elif isinstance(item, _Pong):
                    await ws.pong(item.payload)
                else:
                    queue.popleft()
                    self._ended = True
                    await self._close_politely(item)
                    return
                self._writing_since = None
                # Only now: a frame whose write failed stays queued, for take_unsent.
                queue.popleft()
        except (ConnectionError, RuntimeError):
            self._ended = True  # the socket died under us; its handler cleans up
        finally:
            self._writer = None

    async def _close_politely(self, item: _Close) -> None:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.ws.close(code=item.code, message=item.reason.encode()[:120])
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()


_TEXT, _PING, _PONG = 0x1, 0x9, 0xA  # WebSocket opcodes (RFC 6455 §5.2)


def _frame_writer(ws: web.WebSocketResponse) -> Callable[[bytes, int, int], None] | None:
    """aiohttp's synchronous frame writer (frame, opcode, rsv), or None if this aiohttp
    has none; then every frame takes the writer task (correct, just slower).
    tests/unit/test_wsconn.py fails if an upgrade removes it."""
    writer = getattr(ws, "_writer", None)
    method = getattr(writer, "_write_websocket_frame", None)
    return method if callable(method) else None
