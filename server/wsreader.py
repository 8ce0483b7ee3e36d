"""Text frames handled as they are parsed, not through a task switch each.

aiohttp parses WebSocket frames in `data_received` and queues each message for the
handler's `async for`, which wakes the handler task once per message: after TLS, the
largest cost of relaying a frame (bench/relay.py). `handle_text_when_parsed` puts a
queue in front that hands text frames to a callback right there, synchronously, and
queues everything else (close, ping, pong, errors) for the handler as before, along
with any text behind them, so frames are still answered in the order they came.

It reaches into aiohttp's internals (the response's queue and parser, the protocol's
payload parser), so it checks they look as expected and otherwise changes nothing:
every frame then goes through `async for`, correct but slower.
tests/unit/test_wsreader.py fails if an aiohttp upgrade turns it off.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

try:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:  # pragma: no cover - an aiohttp without them: the slow path
    INTERNALS_FOUND = False
else:
    INTERNALS_FOUND = True

log = logging.getLogger("server.rtc")

QUEUE_LIMIT = 2**16  # aiohttp's own: past it, parsing pauses until the handler reads


if INTERNALS_FOUND:

    class TextSink(WebSocketDataQueue):
        """aiohttp's message queue, except that a text message goes to `on_text` at once
        when nothing is queued before it."""

        def __init__(
            self, protocol: Any, loop: asyncio.AbstractEventLoop, on_text: Callable[[str], None]
        ) -> None:
            super().__init__(protocol, QUEUE_LIMIT, loop=loop)
            self.on_text = on_text

        def feed_data(self, data: Any, size: int) -> None:
            # Behind a message still waiting for the handler, text waits too: the
            # answers to a client's frames keep the order the frames came in.
            if data[0] is WSMsgType.TEXT and not self._buffer:
                try:
                    self.on_text(data[1])
                except Exception:  # never into the parser: it would drop the socket
                    log.exception("event=error code=internal where=text-frame")
                return
            super().feed_data(data, size)


def handle_text_when_parsed(
    ws: web.WebSocketResponse,
    request: web.BaseRequest,
    max_msg_size: int,
    on_text: Callable[[str], None],
) -> bool:
    """From now on, call `on_text(text)` for each text message as soon as it is parsed;
    `async for msg in ws` then yields only the other kinds. Call it right after
    `prepare()` with no await in between. Returns False (nothing changed) if this
    aiohttp's internals are not the expected ones."""
    protocol = request.protocol
    old = getattr(ws, "_reader", None)
    if (
        not INTERNALS_FOUND
        or not isinstance(old, WebSocketDataQueue)
        or getattr(protocol, "_payload_parser", None) is not getattr(ws, "_parser", object())
        or not isinstance(getattr(old, "_buffer", None), deque)
    ):
        return False
    sink = TextSink(protocol, asyncio.get_running_loop(), on_text)
    parser = WebSocketReader(sink, max_msg_size, compress=False, decode_text=True)
    # What arrived while the upgrade finished is already parsed into the old queue.
    backlog = list(old._buffer)
    old._buffer.clear()
    ws._reader = sink
    ws._parser = parser
    protocol._payload_parser = parser
    for message, size in backlog:
        sink.feed_data(message, size)
    failure = old.exception()
    if failure is not None:
        sink.set_exception(failure)
    elif old.is_eof():
        sink.feed_eof()
    return True
