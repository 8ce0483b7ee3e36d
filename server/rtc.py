"""`/rtc`: the WebSocket adapter around the hub. Checks the upgrade (Origin, capacity),
then feeds frames to the hub and delivers what it returns. No protocol logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from . import protocol
from .appkeys import HUB, SETTINGS, SOCKETS
from .hosts import request_host_allowed
from .hub import Connection, Hub, Outbox

log = logging.getLogger("server.rtc")

INTERNAL_ERROR = protocol.error(protocol.BAD_MESSAGE, "the server could not handle this message")


class WebSocketConnection:
    """A hub `Connection` backed by an aiohttp WebSocket."""

    __slots__ = ("__weakref__", "remote", "ws")

    def __init__(self, ws: web.WebSocketResponse, remote: str) -> None:
        self.ws = ws
        self.remote = remote

    async def send_text(self, text: str) -> None:
        if self.ws.closed:
            return
        # A peer whose socket died mid-write is cleaned up by its own handler.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(text)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())


async def deliver(out: Outbox) -> None:
    """Send what the hub asked for, in order, then close what it asked to close."""
    for conn, text in out.sends:
        await conn.send_text(text)
    for conn, code, reason in out.closes:
        await conn.close(code, reason)


def origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """Browsers always send Origin on a WebSocket upgrade; it must be this page's own
    https:// origin (or an allow-listed one), and Host must be one of the server's own
    names, so a DNS-rebinding page (Host and Origin both evil.example) is refused.
    Non-browser clients send no Origin and are let in (Host still checked)."""
    if not request_host_allowed(request):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    # The page is only ever served over TLS: http://, ws://, file:// ("null") and
    # extension origins are other pages, even when they name this host.
    return parts.scheme == "https" and bool(parts.netloc) and parts.netloc == request.host.lower()


# RFC 6455 §4.1: a subprotocol is an RFC 2616 token; browsers send short ones.
_SUBPROTOCOL_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")


def first_subprotocol(request: web.Request) -> tuple[str, ...]:
    """Echo the first requested subprotocol: Chromium fails a handshake that asked for
    subprotocols and got none back (PROTOCOL.md §1). Only a well-formed token of at
    most 128 characters is echoed; anything else gets none back."""
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    first = header[:1024].split(",", 1)[0].strip()
    return (first,) if _SUBPROTOCOL_TOKEN.fullmatch(first) else ()


async def rtc_handler(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    hub = request.app[HUB]
    remote = request.remote or "?"
    if not origin_allowed(request, settings.allowed_origins):
        log.warning("event=refused reason=origin origin=%s addr=%s", request.headers.get("Origin"), remote)
        raise web.HTTPForbidden(text="WebSocket origin not allowed\n")
    if hub.connections >= settings.max_clients:
        log.warning("event=refused reason=capacity clients=%d addr=%s", hub.connections, remote)
        raise web.HTTPServiceUnavailable(text="server is full, try again later\n")

    ws = web.WebSocketResponse(
        protocols=first_subprotocol(request),
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_message_bytes,
        # Signalling frames are small; per-socket zlib state would cost far more memory
        # than compression saves (README "Performance").
        compress=False,
    )
    await ws.prepare(request)
    conn = WebSocketConnection(ws, remote)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    peer, out, resumed = hub.connect(conn, request.query.get("resume"))
    log.info(
        "event=connect peer=%s addr=%s resumed=%s clients=%d",
        peer.id,
        remote,
        str(resumed).lower(),
        hub.connections,
    )
    started = time.monotonic()
    try:
        await deliver(out)
        # An outbox can be big (an identify's peer list, a resume backlog) and this frame
        # lives as long as the socket: drop each one once delivered, or every idle socket
        # keeps O(clients) frames alive (README "Performance").
        del out
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                try:
                    out = hub.receive(peer, msg.data)
                except Exception:  # a hub bug must cost one message, never the socket
                    log.exception("event=error peer=%s code=internal", peer.id)
                    out = Outbox(sends=[(conn, INTERNAL_ERROR)])
            elif msg.type is WSMsgType.BINARY:
                out = hub.receive_binary(peer)
            else:  # ERROR: aiohttp has already closed with the right code (1009, 1007)
                log.info("event=error peer=%s error=%s", peer.id, str(ws.exception())[:120])
                break
            if out:
                await deliver(out)
            del out
    finally:
        sockets.discard(ws)
        await deliver(hub.disconnect(peer, conn))
        log.info(
            "event=disconnect peer=%s addr=%s code=%s seconds=%.1f clients=%d",
            peer.id,
            remote,
            ws.close_code,
            time.monotonic() - started,
            hub.connections,
        )
    return ws


async def expiry_task(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: announces peers whose resume grace period has run out."""
    hub: Hub = app[HUB]

    async def loop() -> None:
        while True:
            due = hub.next_expiry()
            delay = 1.0 if due is None else min(1.0, max(0.05, due - hub.clock()))
            await asyncio.sleep(delay)
            out = hub.expire()
            if out:
                await deliver(out)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: 1001 Going Away tells clients to reconnect to the restarted server."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in list(sockets)),
        return_exceptions=True,
    )


__all__ = [
    "Connection",
    "WebSocketConnection",
    "close_sockets",
    "deliver",
    "expiry_task",
    "rtc_handler",
]
