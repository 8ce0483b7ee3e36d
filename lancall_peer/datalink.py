"""Data links for the Python peer (docs/protocol.md §9): the same peer data API as the
browser's `public/data/datalinks.js`, over aiortc. Per remote peer, a data-only
RTCPeerConnection (a `connection.Connection`) opened on first use (relays carry
`link: "data"`), answered without ringing, closed after `idle_timeout` seconds with
nothing sent or received and no named channel open, reopened on the next use.

Per remote peer (`links.peer(remote_id)`, a DataLink)::

    await link.send("typing", True)                    # a message, once the link is open
    answer = await link.request("ping", {"t": 1})      # the answer, or DataLinkError
    unsubscribe = link.subscribe("message", handler)   # handler(data, link) -> answer
    channel = await link.channel("file:42")            # a named channel, open
    await link.send_message("hello")                   # a conversation line; True when delivered

For everyone: `links.subscribe(type, handler)`, `links.on_channel(callback)` (a named
channel the other side opened: `callback(link, channel)`), `links.define(type, check)`.
Lines received are kept in `link.lines` (`{id, text, at}`); malformed messages are
counted in `link.malformed` and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from server.webrtc import CHAT_LABEL

from .connection import Connection, is_polite

log = logging.getLogger("lancall_peer.datalink")

Json = dict[str, Any]
Send = Callable[[Json], Awaitable[None]]
Handler = Callable[[Any, "DataLink"], Any]
Check = Callable[[Any], bool]

DATA = "data"  # the relay `link` value of data links
IDLE_TIMEOUT = 60.0
OPEN_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
MAX_ID = 64
MAX_TEXT = 2000


def _short(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_line(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and _short(data.get("id"))
        and isinstance(data.get("text"), str)
        and 0 < len(data["text"]) <= MAX_TEXT
        and _number(data.get("at"))
    )


# The message types both sides know (docs/protocol.md §6, §9.1), with their checks.
BUILT_IN_TYPES: dict[str, Check] = {
    "chat": lambda d: isinstance(d, str),
    "typing": lambda d: isinstance(d, bool),
    "message": is_line,
    "ping": lambda d: isinstance(d, dict) and _number(d.get("t")),
}


class DataLinkError(Exception):
    """A send, request or channel that failed: `code` (docs/protocol.md §9.1) and a
    sentence for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DataLink:
    """The data link with one remote peer: a role over one `Connection` at a time (None
    while closed), replaced whole when the link is opened again."""

    def __init__(self, owner: DataLinks, remote_id: str) -> None:
        self.owner = owner
        self.remote_id = remote_id
        self.connection: Connection | None = None
        self.malformed = 0
        self.lines: list[Json] = []  # conversation lines received, in order
        self.ended_reasons: list[str] = []
        self._open = asyncio.Event()
        self._ended = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._subscriptions: dict[str, list[Handler]] = {}
        self._last_activity = time.monotonic()
        self._watch: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Condition()

    @property
    def name(self) -> str:
        return self.owner.name_of(self.remote_id)

    @property
    def pc(self) -> RTCPeerConnection | None:
        return self.connection.pc if self.connection is not None else None

    @property
    def service(self) -> RTCDataChannel | None:
        """The service channel (`label "chat"`) of the connection, if any."""
        return self.connection.service if self.connection is not None else None

    @property
    def channels(self) -> dict[str, RTCDataChannel]:
        """The named channels of the connection, by label."""
        return self.connection.channels if self.connection is not None else {}

    @property
    def is_open(self) -> bool:
        return self.service is not None and self.service.readyState == "open"

    # -- the API ---------------------------------------------------------------------

    async def send(self, type_: str, data: Any = None) -> None:
        """Send a message of a known type once the link is open (opening it)."""
        self.owner.check(type_, data)
        await self.ready()
        self._send_now(type_, data)

    async def request(self, type_: str, data: Any = None, within: float = REQUEST_TIMEOUT) -> Any:
        """Their handler's answer; DataLinkError on an error answer or after `within` s."""
        self.owner.check(type_, data)
        request_id = f"py-{next(self._ids)}-{secrets.token_hex(3)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        body: Json = {"id": request_id, "type": type_}
        if data is not None:
            body["data"] = data
        try:
            async with asyncio.timeout(within):
                await self.ready()
                self._send_now("request", body)
                return await future
        except TimeoutError:
            raise DataLinkError(
                "timeout", f"{self.name} didn't answer ({type_!r}) within {within:g} s."
            ) from None
        finally:
            self._pending.pop(request_id, None)
            self._touch()

    def subscribe(self, type_: str, handler: Handler) -> Callable[[], None]:
        """Handle messages and requests of `type_` from this peer; returns unsubscribe."""
        handlers = self._subscriptions.setdefault(type_, [])
        handlers.append(handler)
        return lambda: handlers.remove(handler) if handler in handlers else None

    async def channel(self, label: str, ordered: bool = True) -> RTCDataChannel:
        """A named channel (the other side gets it by label), open."""
        if not label or label == CHAT_LABEL:
            raise ValueError(f"{label!r} is not a channel name to open")
        await self.ready()
        assert self.connection is not None
        return await self.connection.channel(label, ordered=ordered, within=self.owner.open_timeout)

    async def send_message(self, text: str) -> bool:
        """Send one conversation line (a `message` request): True once delivered."""
        line = {"id": secrets.token_hex(8), "text": text[:MAX_TEXT], "at": time.time() * 1000}
        await self.request("message", line)
        return True

    async def wait_for_line(self, index: int, within: float = 15.0) -> Json:
        """Conversation line number `index` received from them (0: the first)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.lines) > index)
        return self.lines[index]

    async def ready(self) -> None:
        """Wait until the link is open, opening it if needed."""
        if self.is_open:
            return
        if self.connection is None:
            await self._offer()
        ended = asyncio.ensure_future(self._ended.wait())
        opened = asyncio.ensure_future(self._open.wait())
        try:
            done, _ = await asyncio.wait(
                {opened, ended}, timeout=self.owner.open_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
            opened.cancel()
        if not self.is_open:
            reason = self.ended_reasons[-1] if self.ended_reasons else "unreachable"
            if not done:
                await self.close("cancelled")
            raise DataLinkError("unreachable", f"{self.name} isn't reachable right now ({reason}).")

    async def close(self, reason: str = "closed") -> None:
        """End the link; the other side hears `hangup` with `link: "data"`."""
        if self.connection is None:
            return
        await self.owner.signal("hangup", {"target": self.remote_id, "reason": reason})
        await self._end(reason)

    # -- opening -------------------------------------------------------------------------

    def _fresh(self) -> Connection:
        """A new connection for this link, its service channel made (before any offer)."""
        connection = Connection(
            self.owner.ice_servers(),
            polite=is_polite(self.owner.my_id(), self.remote_id),
            signal=self._signal,
            on_message=self._on_message,
            on_malformed=self._on_malformed,
            on_open=self._service_open,
            on_channel=self._on_channel,
            on_channel_closed=lambda _channel: self._touch(),
            on_failed=lambda: self._end("failed"),
            on_service_closed=lambda: self._end("closed"),
        )
        connection.open_service()
        self.connection = connection
        self._open.clear()
        self._ended.clear()
        return connection

    async def _offer(self) -> None:
        await self._fresh().offer()

    async def _signal(self, kind: str, data: Json) -> None:
        await self.owner.signal(kind, {**data, "target": self.remote_id})

    async def handle(self, kind: str, data: Json) -> None:
        """A relay with `link: "data"` from this peer."""
        connection = self.connection
        if kind == "offer" and isinstance(data.get("sdp"), str):
            await self._offered(data["sdp"])
        elif kind == "accept" and isinstance(data.get("sdp"), str):
            if connection is not None:
                await connection.receive_answer(data["sdp"])
        elif kind == "icecandidate" and connection is not None:
            try:
                await connection.add_candidate(data.get("candidate"))
            except ValueError as exc:
                log.info("event=bad-candidate peer=%s error=%s", self.remote_id, exc)
        elif kind in ("hangup", "reject"):
            await self._end(str(data.get("reason") or "closed"))

    async def _offered(self, sdp: str) -> None:
        old = self.connection
        if old is not None:
            if old.ignores_offer():
                return  # both opened at once and they yield: they answer ours
            self.connection = None  # ours yields, or theirs is a fresh start: a new connection
            await old.close()
        await self._fresh().receive_offer(sdp)

    def _on_channel(self, channel: RTCDataChannel) -> None:
        self._touch()
        for callback in list(self.owner.channel_callbacks):
            try:
                callback(self, channel)
            except Exception:
                log.exception("event=channel-callback-failed label=%s", channel.label)

    def _service_open(self) -> None:
        self._open.set()
        self._touch()
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_idle())

    # -- receiving -----------------------------------------------------------------------

    def _on_malformed(self) -> None:
        self._touch()
        self.malformed += 1

    def _on_message(self, kind: str, data: Any) -> None:
        self._touch()
        if kind == "response":
            self._settle(data)
        elif kind == "request":
            if isinstance(data, dict) and _short(data.get("id")) and _short(data.get("type")):
                self._spawn(self._answer(data))
            else:
                self.malformed += 1
        elif kind in self.owner.types and self.owner.types[kind](data):
            self._spawn(self._deliver(kind, data))
        else:
            self.malformed += 1

    def _settle(self, data: Any) -> None:
        future = self._pending.get(str(data.get("id"))) if isinstance(data, dict) else None
        if future is None or future.done():
            self.malformed += 1  # late, or made up
            return
        assert isinstance(data, dict)
        error = data.get("error")
        if error is None:
            future.set_result(data.get("data"))
        elif isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("code", "message")):
            future.set_exception(DataLinkError(error["code"], error["message"][:300]))
        else:
            future.set_exception(DataLinkError("bad-response", f"{self.name} sent a malformed answer."))

    def _handlers(self, kind: str) -> list[Handler]:
        return [*self._subscriptions.get(kind, []), *self.owner.subscriptions.get(kind, [])]

    async def _deliver(self, kind: str, data: Any) -> None:
        for handler in self._handlers(kind):
            try:
                result = handler(data, self)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event=data-handler-failed type=%s", kind)
        await self._notify()

    async def _answer(self, request: Json) -> None:
        request_id, kind, data = request["id"], request["type"], request.get("data")
        handlers = self._handlers(kind)
        body: Json
        if not handlers or kind not in self.owner.types:
            words = f"This peer doesn't answer {kind!r} requests."
            body = {"error": {"code": "unknown-type", "message": words}}
        elif not self.owner.types[kind](data):
            body = {"error": {"code": "bad-request", "message": f"The {kind!r} request was malformed."}}
        else:
            try:
                result = handlers[0](data, self)
                if inspect.isawaitable(result):
                    result = await result
                body = {} if result is None else {"data": result}
            except Exception as exc:
                body = {"error": {"code": "failed", "message": str(exc) or f"The {kind!r} request failed."}}
        await self._notify()
        if self.is_open:
            self._send_now("response", {"id": request_id, **body})

    # -- idling and ending -----------------------------------------------------------------

    def _send_now(self, kind: str, data: Any) -> None:
        message = {"type": kind} if data is None else {"type": kind, "data": data}
        if self.connection is None or not self.connection.send(message):
            raise DataLinkError("closed", f"The link to {self.name} closed.")
        self._touch()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    async def _watch_idle(self) -> None:
        while self.connection is not None:
            await asyncio.sleep(min(1.0, self.owner.idle_timeout / 4))
            named = self.connection is not None and self.connection.named_open
            if named or self._pending:
                self._touch()
            elif time.monotonic() - self._last_activity >= self.owner.idle_timeout:
                await self.close("idle")
                return

    async def _end(self, reason: str) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        self.ended_reasons.append(reason)
        await connection.close()
        self._open.clear()
        self._ended.set()
        error = DataLinkError("closed", f"The link to {self.name} closed ({reason}).")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        current = asyncio.current_task()
        if self._watch is not None and self._watch is not current:
            self._watch.cancel()
        await self._notify()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class DataLinks:
    """Every remote peer's data link, made on first use. `send` relays a protocol message
    through the signalling socket; `my_id` and `ice_servers` come from `ready`."""

    def __init__(
        self,
        send: Send,
        my_id: Callable[[], str | None],
        ice_servers: Callable[[], list[Json]],
        name_of: Callable[[str], str] = lambda remote: remote,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        open_timeout: float = OPEN_TIMEOUT,
    ) -> None:
        self._send = send
        self._my_id = my_id
        self.ice_servers = ice_servers
        self.name_of = name_of
        self.idle_timeout = idle_timeout
        self.open_timeout = open_timeout
        self.links: dict[str, DataLink] = {}
        self.types: dict[str, Check] = dict(BUILT_IN_TYPES)
        self.subscriptions: dict[str, list[Handler]] = {}
        self.channel_callbacks: list[Callable[[DataLink, RTCDataChannel], None]] = []
        self.subscribe("ping", lambda data, link: data)
        self.subscribe("message", self._line)
        self.subscribe("chat", self._chat)

    def my_id(self) -> str:
        return self._my_id() or ""

    def peer(self, remote_id: str) -> DataLink:
        link = self.links.get(remote_id)
        if link is None:
            link = self.links[remote_id] = DataLink(self, remote_id)
        return link

    def subscribe(self, type_: str, handler: Handler) -> Callable[[], None]:
        handlers = self.subscriptions.setdefault(type_, [])
        handlers.append(handler)
        return lambda: handlers.remove(handler) if handler in handlers else None

    def on_channel(self, callback: Callable[[DataLink, RTCDataChannel], None]) -> None:
        """Call `callback(link, channel)` for every named channel a remote peer opens."""
        self.channel_callbacks.append(callback)

    def define(self, type_: str, check: Check) -> None:
        """Declare a message type (a feature's own) with the check of its `data`."""
        self.types.setdefault(type_, check)

    def check(self, type_: str, data: Any) -> None:
        if type_ in ("request", "response"):
            return
        check = self.types.get(type_)
        if check is None:
            raise ValueError(f"unknown message type {type_}")
        if not check(data):
            raise ValueError(f"bad data for message type {type_}")

    async def signal(self, kind: str, data: Json) -> None:
        await self._send({"type": kind, "data": {**data, "link": DATA}})

    async def handle(self, kind: str, data: Json) -> None:
        """A relay with `link: "data"` (PythonPeer's reader routes them here)."""
        source = data.get("id") if kind == "icecandidate" else data.get("source")
        if not isinstance(source, str) or source == self.my_id():
            return
        if kind != "offer" and (source not in self.links or self.links[source].connection is None):
            return
        await self.peer(source).handle(kind, data)

    async def forget(self, remote_id: str) -> None:
        """The peer left the network."""
        link = self.links.pop(remote_id, None)
        if link is not None:
            await link._end("gone")

    async def close_all(self) -> None:
        for link in list(self.links.values()):
            with contextlib.suppress(Exception):
                await link.close("left")

    @classmethod
    def _chat(cls, text: str, link: DataLink) -> None:
        cls._line({"id": secrets.token_hex(8), "text": text}, link)  # a bare §6 chat line

    @staticmethod
    def _line(data: Json, link: DataLink) -> Json:
        if not any(known["id"] == data["id"] for known in link.lines):
            at = data.get("at", time.time() * 1000)
            link.lines.append({"id": data["id"], "text": data["text"], "at": at})
        return {}
