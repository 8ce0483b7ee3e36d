"""Text frames handled as they are parsed (server/wsreader.py), over real sockets."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from server.wsreader import handle_text_when_parsed


def masked(opcode: int, payload: bytes) -> bytes:
    """One client frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


class Recorder:
    """A WebSocket endpoint that records what arrives, and by which path."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.looped: list[tuple[WSMsgType, object]] = []
        self.order: list[object] = []  # both paths, in the order they were handled
        self.fast: list[bool] = []
        self.done = asyncio.Event()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, autoclose=False)
        await ws.prepare(request)
        self.fast.append(handle_text_when_parsed(ws, request, 4096, self.on_text))
        async for msg in ws:
            self.looped.append((msg.type, msg.data))
            self.order.append(msg.data)
            if msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
        await ws.close()  # the loop ends on the client's close
        self.done.set()
        return ws

    def on_text(self, text: str) -> None:
        self.texts.append(text)
        self.order.append(text)
        if text == "boom":
            raise ValueError("a bug in the handler")


async def serve(recorder: Recorder) -> TestServer:
    app = web.Application()
    app.router.add_get("/ws", recorder.handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_text_goes_to_the_callback_and_the_rest_to_the_loop() -> None:
    recorder = Recorder()
    server = await serve(recorder)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(server.make_url("/ws"), autoping=False) as ws,
        ):
            for i in range(50):
                await ws.send_str(f"m{i}")
            await ws.ping(b"are you there")
            pong = await ws.receive(timeout=3)
            assert pong.type is WSMsgType.PONG and pong.data == b"are you there"
            await ws.send_str("boom")  # a failing callback costs that message only
            await ws.send_str("after")
            await ws.close()
        await asyncio.wait_for(recorder.done.wait(), 3)
    finally:
        await server.close()
    assert recorder.fast == [True], "aiohttp's internals changed: text frames take the slow path"
    assert recorder.texts == [f"m{i}" for i in range(50)] + ["boom", "after"]
    assert [kind for kind, _ in recorder.looped] == [WSMsgType.PING]


async def test_frames_sent_with_the_upgrade_are_not_lost() -> None:
    """A client may send frames right behind its upgrade request, before the server's
    handler runs: they are parsed into aiohttp's own queue and must be carried over."""
    recorder = Recorder()
    server = await serve(recorder)
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        writer.write(request + masked(0x1, b"first") + masked(0x9, b"p") + masked(0x1, b"second"))
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        for _ in range(50):
            if len(recorder.order) == 3:
                break
            await asyncio.sleep(0.02)
        writer.write(masked(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        await asyncio.wait_for(recorder.done.wait(), 3)
        writer.close()
    finally:
        await server.close()
    assert recorder.order == ["first", b"p", "second"]  # "second" waited behind the ping
    assert recorder.looped[0] == (WSMsgType.PING, b"p")


async def test_text_behind_another_frame_waits_its_turn() -> None:
    """A binary frame goes through the handler's loop; text sent right after it must not
    overtake it (the answers keep the order of the frames)."""
    recorder = Recorder()
    server = await serve(recorder)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(server.make_url("/ws"), autoping=False) as ws,
        ):
            for i in range(20):
                await ws.send_bytes(b"b%d" % i)
                await ws.send_str(f"t{i}")
            await ws.close()
        await asyncio.wait_for(recorder.done.wait(), 3)
    finally:
        await server.close()
    expected: list[object] = []
    for i in range(20):
        expected += [b"b%d" % i, f"t{i}"]
    assert recorder.order == expected
