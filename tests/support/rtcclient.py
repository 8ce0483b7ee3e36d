"""A minimal /rtc test client over a real TLS WebSocket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class RtcClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.id = ""
        self.token = ""
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, name: str | None = None, **kw: Any
    ) -> RtcClient:
        client = cls(await session.ws_connect(url, **kw))
        client.ready = await client.expect("ready")
        client.id, client.token = client.ready["id"], client.ready["token"]
        if name is not None:
            await client.send({"type": "identify", "data": {"id": client.id, "name": name}})
        return client

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type} {msg.data!r}")
        result: dict[str, Any] = json.loads(msg.data)
        return result

    async def expect(self, kind: str, timeout: float = 3.0) -> dict[str, Any]:
        message = await self.recv(timeout)
        assert message["type"] == kind, message
        return message

    async def silent(self, seconds: float = 0.15) -> None:
        """Assert nothing arrives for a short while."""
        try:
            msg = await asyncio.wait_for(self.ws.receive(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {msg.type} {msg.data!r}")

    async def closed(self, timeout: float = 3.0) -> int | None:
        """Wait for the server to close; return the close code it sent."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return self.ws.close_code
