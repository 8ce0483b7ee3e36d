"""The socket side of delivery (server/wsconn.py): write at once when nothing is queued
and the socket takes data, queue behind a writer task otherwise, in order, bounded."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol

from server import wsconn
from server.wsconn import WebSocketConnection


class FrameWriter:
    """Stands in for aiohttp's WebSocketWriter: records frames written synchronously."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log

    def _write_websocket_frame(self, message: bytes, opcode: int, rsv: int) -> None:
        self.log.append(("now", message.decode()))


class FakeSocket:
    """A WebSocketResponse with its transport: the writer task's path is `send_str`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.log: list[tuple[str, str]] = []
        self._writer = FrameWriter(self.log)
        self.protocol = BaseProtocol(loop)
        self.aborted = False
        self.drained = asyncio.Event()
        self.drained.set()

    # the WebSocketResponse side
    async def send_str(self, text: str) -> None:
        await self.drained.wait()
        self.log.append(("task", text))

    # the transport side
    def get_protocol(self) -> BaseProtocol:
        return self.protocol

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def connection(sock: FakeSocket, limit: int = 1000) -> WebSocketConnection:
    return WebSocketConnection(
        cast(web.WebSocketResponse, sock), "127.0.0.1", cast(Any, sock), limit, stall_seconds=5
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_aiohttp_still_has_the_synchronous_frame_writer() -> None:
    """The fast path uses aiohttp's private `WebSocketWriter._write_websocket_frame`; if an
    upgrade removes it, every frame takes the writer task (correct but slower): fail here
    so the relay benchmark gets re-run."""
    from aiohttp._websocket.writer import WebSocketWriter

    assert callable(getattr(WebSocketWriter, "_write_websocket_frame", None))


async def test_an_idle_socket_writes_at_once_without_a_task() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock)
    conn.send("a")
    conn.send("b")
    assert sock.log == [("now", "a"), ("now", "b")]
    assert conn._writer is None  # no task for an idle socket


async def test_a_paused_socket_queues_and_later_frames_keep_their_order() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock)
    sock.protocol.pause_writing()  # the TCP buffer under TLS is full
    sock.drained.clear()
    conn.send("1")
    conn.send("2")
    assert sock.log == []
    sock.protocol.resume_writing()
    conn.send("3")  # the socket takes data again, but 1 and 2 are still queued: behind them
    sock.drained.set()
    await settle()
    assert sock.log == [("task", "1"), ("task", "2"), ("task", "3")]
    assert conn._writer is None  # the writer ends once the queue is empty
    conn.send("4")
    assert sock.log[-1] == ("now", "4")


async def test_a_socket_too_far_behind_is_aborted_and_counted() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock, limit=10)
    before = wsconn.slow_readers_total
    sock.protocol.pause_writing()
    sock.drained.clear()
    conn.send("x" * 6)
    assert not sock.aborted
    conn.send("y" * 6)
    assert sock.aborted
    assert wsconn.slow_readers_total == before + 1
    conn.send("z")  # nothing more is written or counted
    await settle()
    assert sock.log == []
    assert wsconn.slow_readers_total == before + 1


async def test_unsent_frames_are_handed_over_oldest_first() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock)
    sock.protocol.pause_writing()
    sock.drained.clear()
    for text in ("1", "2", "3"):
        conn.send(text)
    await settle()  # the writer is waiting on "1"
    conn.stop()
    await settle()
    assert conn.take_unsent() == ["1", "2", "3"]


@pytest.mark.parametrize("paused", [False, True])
async def test_pongs_are_written_at_once_or_queued(paused: bool) -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    written: list[bytes] = []

    async def pong(payload: bytes) -> None:
        written.append(payload)

    sock.pong = pong  # type: ignore[attr-defined]
    sock._writer._write_websocket_frame = lambda message, opcode, rsv: written.append(message)  # type: ignore[method-assign]
    conn = connection(sock)
    if paused:
        sock.protocol.pause_writing()
    conn.pong(b"p")
    await settle()
    assert written == [b"p"]


async def test_a_silent_socket_is_pinged_then_dropped_and_any_frame_counts() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock)
    start = asyncio.get_running_loop().time()
    conn.sweep(start + 9, heartbeat=10)
    assert sock.log == [] and not sock.aborted  # not silent long enough yet
    conn.heard += 1  # a frame came in: silence starts again from here
    conn.sweep(start + 12, heartbeat=10)
    conn.sweep(start + 21, heartbeat=10)
    assert sock.log == []
    conn.sweep(start + 22, heartbeat=10)
    assert sock.log == [("now", "")]  # a WebSocket ping
    conn.sweep(start + 26, heartbeat=10)
    assert not sock.aborted  # half a heartbeat to answer
    conn.sweep(start + 27, heartbeat=10)
    assert sock.aborted


async def test_an_answered_ping_keeps_the_socket() -> None:
    sock = FakeSocket(asyncio.get_running_loop())
    conn = connection(sock)
    start = asyncio.get_running_loop().time()
    conn.sweep(start + 10, heartbeat=10)
    assert sock.log == [("now", "")]
    conn.heard += 1  # the pong
    for t in (13, 15, 19):
        conn.sweep(start + t, heartbeat=10)
    assert not sock.aborted
