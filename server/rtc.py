"""`/rtc`: the WebSocket adapter around the hub. Checks the upgrade (Origin, capacity),
then feeds frames to the hub and delivers what it returns (`outbox.deliver`, which only
queues on each socket). No protocol logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from . import protocol
from .appkeys import HUB, SETTINGS, SOCKETS
from .hosts import request_host_allowed
from .hub import Hub
from .memory import MemoryReturn
from .outbox import Outbox, deliver
from .wsconn import CLOSE_SECONDS, WebSocketConnection
from .wsreader import handle_text_when_parsed

log = logging.getLogger("server.rtc")

INTERNAL_ERROR = protocol.error(protocol.BAD_MESSAGE, "the server could not handle this message")


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
    subprotocols and got none back (docs/protocol.md §1). Only a well-formed token of at
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
        room = hub.shed_for(remote)  # someone holding far more than their share makes room
        if room is None:
            log.warning("event=refused reason=capacity clients=%d addr=%s", hub.connections, remote)
            raise web.HTTPServiceUnavailable(text="server is full, try again later\n")
        deliver(room, hub)

    ws = web.WebSocketResponse(
        protocols=first_subprotocol(request),
        # No aiohttp heartbeat: it schedules a callback for every frame received, the
        # relay's largest cost after TLS; `expiry_task` sweeps liveness once a second.
        heartbeat=None,
        # aiohttp refuses a message of exactly max_msg_size; the protocol accepts frames of
        # up to maxMessageBytes (docs/protocol.md §4).
        max_msg_size=settings.max_message_bytes + 1,
        # Client pings come to us, to be counted like messages (a ping flood is a flood).
        autoping=False,
        # A client's close is answered by our writer, after the frames already queued
        # for it (answers to what it sent before closing are not lost).
        autoclose=False,
        # Signalling frames are small; per-socket zlib state would cost far more memory
        # than compression saves (README "Performance").
        compress=False,
    )
    await ws.prepare(request)
    conn = WebSocketConnection(
        ws, remote, request.transport, settings.send_queue_bytes, stall_seconds=settings.heartbeat
    )
    sockets = request.app[SOCKETS]
    sockets.add(conn)
    peer, out, resumed = hub.connect(conn, request.query.get("resume"), address=remote)
    conn.peer_id = peer.id
    log.info(
        "event=connect peer=%s addr=%s resumed=%s clients=%d pid=%d",  # pid: which of WORKERS=N
        peer.id,
        remote,
        str(resumed).lower(),
        hub.connections,
        os.getpid(),
    )
    started = time.monotonic()
    try:
        deliver(out, hub)
        # An outbox can be big (an identify's peer list, a resume backlog) and this frame
        # lives as long as the socket: drop each one once delivered, or every idle socket
        # keeps O(clients) frames alive (README "Performance").
        del out
        listening = True

        def on_text(text: str) -> None:
            if not listening or conn.closing:  # done with this socket, or closing it
                return
            conn.heard += 1
            try:
                out = hub.receive(peer, text)
            except Exception:  # a hub bug must cost one message, never the socket
                log.exception("event=error peer=%s code=internal", peer.id)
                out = Outbox().send(peer.id, INTERNAL_ERROR)
            if out:
                deliver(out, hub)

        # Text frames (nearly all of them) are handled as they are parsed; the loop
        # below then sees only the rest, or every frame if aiohttp's internals changed.
        handle_text_when_parsed(ws, request, settings.max_message_bytes + 1, on_text)
        async for msg in ws:
            conn.heard += 1
            if conn.closing and msg.type is not WSMsgType.ERROR:
                continue  # the hub closed it: what was already in flight is not handled
            if msg.type is WSMsgType.TEXT:
                try:
                    out = hub.receive(peer, msg.data)
                except Exception:  # a hub bug must cost one message, never the socket
                    log.exception("event=error peer=%s code=internal", peer.id)
                    out = Outbox().send(peer.id, INTERNAL_ERROR)
            elif msg.type is WSMsgType.BINARY:
                out = hub.receive_binary(peer)
            elif msg.type is WSMsgType.PING or msg.type is WSMsgType.PONG:
                answer, out = hub.receive_control(peer)
                if answer and msg.type is WSMsgType.PING:
                    conn.pong(msg.data)
            else:  # ERROR: aiohttp has already closed with the right code (1009, 1007)
                log.info("event=error peer=%s error=%s", peer.id, str(ws.exception())[:120])
                break
            if out:
                deliver(out, hub)
            del out
        if not ws.closed:  # the client closed (or the hub asked us to): flush, then close
            conn.close(ws.close_code or WSCloseCode.OK, "")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2 * CLOSE_SECONDS):
                    await conn.finished()
    except ConnectionError as exc:  # the client vanished mid-read: an ordinary drop
        log.info("event=error peer=%s error=%s", peer.id, type(exc).__name__)
    finally:
        listening = False
        sockets.discard(conn)
        deliver(hub.disconnect(peer, conn), hub)
        conn.stop()
        if not ws.closed and request.transport is not None:
            request.transport.abort()
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
    """cleanup_ctx: announces peers whose resume grace period has run out, closes sockets
    that never identified, aborts sockets whose writes have stalled, and pings silent
    sockets, dropping those that stay silent (`WebSocketConnection.sweep`)."""
    hub: Hub = app[HUB]
    sockets = app[SOCKETS]
    heartbeat = app[SETTINGS].heartbeat
    every = min(1.0, heartbeat / 2)  # the sweep's period: O(sockets), so not more often
    loop = asyncio.get_running_loop()

    memory = MemoryReturn()

    async def run() -> None:
        swept = loop.time()
        while True:
            due = hub.next_expiry()
            delay = every if due is None else min(every, max(0.05, due - hub.clock()))
            await asyncio.sleep(delay)
            out = hub.expire()
            if out:
                deliver(out, hub)
            now = loop.time()
            if now - swept >= every:
                swept = now
                for conn in list(sockets):
                    conn.sweep(now, heartbeat)
                memory.observe(len(sockets), now)  # many closed: their memory goes back

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: 1001 Going Away tells clients to reconnect to the restarted server.
    Bounded: a client that stopped reading is aborted, never waited for."""
    sockets = app[SOCKETS]
    conns = list(sockets)
    for conn in conns:
        conn.close(WSCloseCode.GOING_AWAY, "server shutdown")
    if conns:
        _, late = await asyncio.wait([asyncio.ensure_future(c.finished()) for c in conns], timeout=1.5)
        for conn in conns:
            conn.abort("shutdown")
        for future in late:
            future.cancel()


__all__ = [
    "close_sockets",
    "expiry_task",
    "rtc_handler",
]
