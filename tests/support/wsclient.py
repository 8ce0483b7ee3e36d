"""A minimal browser-like /rtc WebSocket client on asyncio protocols, for the benchmarks.

Cheap enough that thousands of them fit in one load-generator process, and it behaves like
a browser where it matters to the server: it offers permessage-deflate (the server must
decline it), sends an Origin header naming the host, masks every frame, answers pings,
and JSON-decodes every message except `peer` announcements (counted, not decoded: an
idle client gets thousands while others join or rename).

`frame` builds one client frame; a flooding benchmark can build a batch once and write
the same bytes again and again (`Client.write_raw`), so the load generator stays cheaper
than the server it attacks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
from collections.abc import Callable
from typing import Any

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - the benchmarks work without the 'fast' extra

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    loads = json.loads

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    stream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN, masked with a fresh key (RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    key = random.randbytes(4)
    return head + key + _mask(payload, key)


class Client(asyncio.Protocol):
    """One /rtc WebSocket. `ready` resolves with the server's `ready`; `lost` when the
    connection is gone (`close_code` is the code of the server's close frame, if any)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.key = base64.b64encode(os.urandom(16))
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writable = asyncio.Event()  # cleared while the transport's buffer is full
        self.writable.set()
        self.id = ""
        self.peers_seen = 0  # `peer` announcements of someone joining or renaming
        self.peer_frames = 0  # every `peer` frame, removals included
        self.pongs = 0
        self.close_code: int | None = None
        self.errors: list[str] = []
        self.on_candidate: Callable[[dict[str, Any]], None] | None = None
        self.on_error: Callable[[dict[str, Any]], None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(
            b"GET /rtc HTTP/1.1\r\n"
            b"Host: " + self.host.encode() + b"\r\n"
            b"Origin: https://" + self.host.encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + self.key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            b"User-Agent: lan-call-bench\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost before ready: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)
        self.writable.set()  # nobody waits for a dead socket

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            self._check_upgrade(head)
            if not self.upgraded:
                return
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, start = b1 & 0x7F, pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if b1 & 0x80 or b0 & 0x70 or not b0 & 0x80:
                self._fail("server sent a masked, compressed or fragmented frame")
                return
            if size - start < length:
                break
            payload = bytes(buf[start : start + length])
            pos = start + length
            opcode = b0 & 0x0F
            if opcode == OP_TEXT:
                self._text(payload)
            elif opcode == OP_PING:  # the server's heartbeat
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_PONG:
                self.pongs += 1
            elif opcode == OP_CLOSE:
                if len(payload) >= 2:
                    self.close_code = int.from_bytes(payload[:2], "big")
                self.send_frame(OP_CLOSE, payload[:2])
                if self.transport:
                    self.transport.close()
                break
        if pos:
            del buf[:pos]

    # helpers
    def _check_upgrade(self, head: str) -> None:
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        expected = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != expected:
            self._fail(f"upgrade refused: {lines[0]!r}")
        elif "sec-websocket-extensions" in headers:
            self._fail(f"server negotiated {headers['sec-websocket-extensions']!r}; expected none")
        else:
            self.upgraded = True

    def _fail(self, why: str) -> None:
        self.errors.append(why)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport:
            self.transport.abort()

    def _text(self, payload: bytes) -> None:
        if b'"type":"peer"' in payload:
            self.peer_frames += 1
            if b'"remove"' not in payload:
                self.peers_seen += 1
            return
        message = loads(payload)
        kind = message.get("type")
        if kind == "icecandidate" and self.on_candidate is not None:
            self.on_candidate(message["data"])
        elif kind == "ready":
            self.id = message["id"]
            if not self.ready.done():
                self.ready.set_result(message)
        elif kind == "error":
            if self.on_error is not None:
                self.on_error(message["data"])
            else:
                self.errors.append(json.dumps(message["data"])[:200])
        elif kind != "peer":
            self.errors.append(f"unexpected {kind!r}")

    def write_raw(self, data: bytes) -> None:
        """Bytes already framed (see `frame`), written as they are."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        self.write_raw(frame(opcode, payload))

    def send_json(self, value: Any) -> None:
        self.send_frame(OP_TEXT, dumps(value))
