"""The "Echo test" peer: the server joins /rtc as a peer of kind "bot" and, when
called, sends the caller's own video and audio back, so one person with one phone can
check camera, microphone and network path in seconds.

It is a peer like any other (docs/protocol.md): it attaches to the hub in-process through
`InProcessConnection` instead of a socket, and speaks exactly the messages a browser
speaks, delivered through the same `hub.receive()` / `deliver()` path.

    offer  (new caller)       -> `accept` at once (or `reject` busy past the cap,
                                 `reject` error if the offer cannot be applied)
    offer  (caller in a call) -> renegotiation: `accept`, no ringing
    icecandidate              -> applied (queued until the remote description is set)
    hangup / peer remove      -> the call is torn down
    data channel `chat`       -> echoed back as "Echo: ..."; `disconnect` ends the call
    after `echo_max_seconds`  -> `hangup` reason "timeout"

Media goes through aiortc's MediaRelay: the caller's tracks are subscribed and sent
straight back (nothing touches the disk). Every call is torn down fully (tracks
stopped, peer connection closed, tasks cancelled); `active_calls` counts the calls not
yet torn down. Nothing here may take the server down: every message is handled inside
its own try/except, and a start-up failure only disables the echo peer.

ICE: always `iceServers=[]`. The echo runs on the server, which the callers already
reach on the LAN, so host candidates are enough, and an unreachable STUN/TURN server
would delay every answer (aiortc gathers all candidates before answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from .appkeys import HUB, SETTINGS
from .hub import Hub, Peer
from .outbox import deliver
from .verification import EXCHANGE_TYPES, ChannelCodes
from .webrtc import CHAT_CHANNEL_ID, CHAT_LABEL, RemoteCandidates, count_media_sections, rtc_configuration

log = logging.getLogger("server.echo")

ECHO_NAME = "Echo test"
ECHO_PREFIX = "Echo: "
# A chat line asking for the link's verification code (docs/verification.md): answered with
# CODE_PREFIX + the five words, instead of an echo. Only on request, so every echoed line
# keeps its place in the chat.
CODE_REQUESTS = frozenset({"code", "verify", "security code"})
CODE_PREFIX = "Security code: "
MAX_MEDIA_SECTIONS = 8  # camera + mic + screen share + chat fit easily; more is abuse
MAX_ECHO_CHARS = 16_000  # an echoed line stays under SCTP's 64 KiB message limit
MAX_REPLY_TASKS = 64  # busy replies in flight; past that, offers are dropped unanswered
MAX_EARLY_SOURCES = 64  # callers whose candidates arrived before their offer
MAX_EARLY_CANDIDATES = 64
EARLY_CANDIDATE_TTL = 30.0
REATTACH_DELAY = 1.0
CLOSE_TIMEOUT = 5.0
# From the offer to a connected peer connection. Over a LAN ICE connects in well under a
# second; an offer whose ICE never completes (a squatter, or a caller that vanished) would
# otherwise hold a slot until aiortc gives up, about a minute later.
ICE_CONNECT_TIMEOUT = 8.0

Json = dict[str, Any]


class InProcessConnection:
    """A hub `Connection` for a peer living inside the server: frames land in a queue.

    `send` is called from other peers' tasks, so it never blocks (`put_nowait` on an
    unbounded queue; the echo's reader only routes, it never waits on the network).
    `close` (the hub asks for it on rate-limit abuse or a resume elsewhere) enqueues
    None so the reader notices."""

    __slots__ = ("close_code", "closed", "inbox")

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.close_code: int | None = None

    def send(self, text: str) -> None:
        if not self.closed:
            self.inbox.put_nowait(text)

    def take_unsent(self) -> list[str]:
        return []  # the echo reads everything it is sent, and never resumes a call

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.inbox.put_nowait(None)


class EchoCall:
    """One caller's call with the echo peer. All signalling for it (offers,
    candidates) is applied in order by its own task, so a slow caller never holds up
    the others."""

    def __init__(self, echo: EchoPeer, caller: str, call_id: str | None = None) -> None:
        self.echo = echo
        self.caller = caller
        self.call_id = call_id  # set in a group call: relays then carry it (docs/protocol.md §8)
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.candidates = RemoteCandidates(self.pc)
        self.channel: RTCDataChannel | None = None
        self.codes = ChannelCodes(self.pc, lambda: self.channel)  # the security code's exchange
        self.proxies: list[MediaStreamTrack] = []
        self.inbox: asyncio.Queue[tuple[str, Json]] = asyncio.Queue()
        self.started_at: float | None = None  # when the first offer was accepted
        self.ended = False
        self.end_reason: str | None = None
        self.done = asyncio.Event()  # set when fully torn down
        self.chats = 0
        self.renegotiations = 0
        self._runner: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._connect_deadline: asyncio.Task[None] | None = None
        self.pc.on("connectionstatechange", self._on_state)

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"echo-call-{self.caller[:8]}")
        self._connect_deadline = asyncio.create_task(self._require_connection(ICE_CONNECT_TIMEOUT))

    def post(self, kind: str, data: Json) -> None:
        if not self.ended:
            self.inbox.put_nowait((kind, data))

    async def _run(self) -> None:
        while not self.ended:
            kind, data = await self.inbox.get()
            try:
                if kind == "offer":
                    await self._on_offer(data)
                elif kind == "dial":
                    await self._dial()
                elif kind == "answer":
                    await self._on_answer(data)
                elif kind == "candidate":
                    await self.candidates.add(data.get("candidate"))
            except ValueError as exc:  # a candidate we cannot parse: ignore it
                log.info("event=echo-bad-candidate caller=%s error=%s", self.caller, str(exc)[:120])
            except Exception:
                log.exception("event=echo-call-error caller=%s kind=%s", self.caller, kind)

    async def _on_offer(self, data: Json) -> None:
        first = self.started_at is None
        try:
            sdp = data.get("sdp")
            if not isinstance(sdp, str):
                raise ValueError("the offer has no SDP")
            sections = count_media_sections(sdp)
            if not 0 < sections <= MAX_MEDIA_SECTIONS:
                raise ValueError(f"the offer has {sections} media sections (1-{MAX_MEDIA_SECTIONS} accepted)")
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await self.candidates.flush()
            self._echo_tracks()
            if self.channel is None and self.pc.sctp is not None:
                self._open_channel()
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)  # aiortc: every candidate is in it
        except Exception as exc:
            self.echo.failures += 1
            log.warning(
                "event=echo-offer-failed caller=%s renegotiation=%s error=%r",
                self.caller,
                str(not first).lower(),
                str(exc)[:200],
            )
            if first:
                await self.echo.send({"type": "reject", "data": {"target": self.caller, "reason": "error"}})
                await self.end("error", notify=False)
            else:
                await self.end("error", notify=True)
            return
        local = self.pc.localDescription
        await self.echo.send({"type": "accept", "data": self._scoped({"type": "answer", "sdp": local.sdp})})
        if first:
            self.started_at = time.monotonic()
            self.echo.calls_total += 1
            self._timer = asyncio.create_task(self._expire())
            log.info(
                "event=echo-call-start caller=%s media=%d calls=%d",
                self.caller,
                len(self.proxies),
                self.echo.active_calls,
            )
        else:
            self.renegotiations += 1
            log.info("event=echo-renegotiated caller=%s media=%d", self.caller, len(self.proxies))

    def _scoped(self, data: Json) -> Json:
        """A relay's data to the caller, with the call id in a group call."""
        data["target"] = self.caller
        if self.call_id is not None:
            data["call"] = self.call_id
        return data

    async def _dial(self) -> None:
        """In a group call the joiner offers (docs/protocol.md §8): an audio and a video
        transceiver with nothing to send yet (the member's own media is echoed once it
        arrives), and the chat channel."""
        self.pc.addTransceiver("audio", direction="sendrecv")
        self.pc.addTransceiver("video", direction="sendrecv")
        self._open_channel()
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)  # aiortc: every candidate is in it
        local = self.pc.localDescription
        await self.echo.send({"type": "offer", "data": self._scoped({"type": "offer", "sdp": local.sdp})})

    async def _on_answer(self, data: Json) -> None:
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or self.pc.signalingState != "have-local-offer":
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            await self.candidates.flush()
            self._echo_tracks()
        except Exception as exc:
            self.echo.failures += 1
            log.warning("event=echo-answer-failed member=%s error=%r", self.caller, str(exc)[:200])
            await self.end("error", notify=True)
            return
        self.started_at = time.monotonic()
        self.echo.calls_total += 1
        self._timer = asyncio.create_task(self._expire())
        log.info(
            "event=echo-call-start member=%s call=%s calls=%d",
            self.caller,
            self.call_id,
            self.echo.active_calls,
        )

    def _echo_tracks(self) -> None:
        """Send back, on each transceiver, what the caller sends on it."""
        for transceiver in self.pc.getTransceivers():
            source = transceiver.receiver.track
            if source is None or transceiver.sender.track is not None:
                continue
            if transceiver.kind not in ("audio", "video"):
                continue
            # Video: the newest frame only (no growing delay); audio: every frame.
            proxy = self.echo.relay.subscribe(source, buffered=transceiver.kind == "audio")
            transceiver.sender.replaceTrack(proxy)
            transceiver.direction = "sendrecv"
            self.proxies.append(proxy)

    def code(self) -> str | None:
        """This call's verification code, as the caller's screen shows it (once both
        nonces have crossed the data channel, docs/verification.md)."""
        return self.codes.code

    def _open_channel(self) -> None:
        channel = self.pc.createDataChannel(CHAT_LABEL, negotiated=True, id=CHAT_CHANNEL_ID)
        self.channel = channel
        channel.on("open", self.codes.opened)
        channel.on("message", self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        try:
            if not isinstance(message, str):
                return
            data = json.loads(message)
            if not isinstance(data, dict):
                return
            kind = data.get("type")
            if kind == "chat" and isinstance(data.get("data"), str) and self.channel is not None:
                self.chats += 1
                if data["data"].strip().lower() in CODE_REQUESTS:
                    reply = f"{CODE_PREFIX}{self.code() or 'not ready yet'}"
                else:
                    reply = ECHO_PREFIX + data["data"][:MAX_ECHO_CHARS]
                self.channel.send(json.dumps({"type": "chat", "data": reply}))
            elif kind in EXCHANGE_TYPES:
                self.codes.receive(kind, data.get("data"))
            elif kind == "disconnect":
                self.echo.spawn(self.end("disconnect", notify=False))
            # typing and unknown types: ignored (docs/protocol.md §6)
        except Exception:
            log.exception("event=echo-chat-error caller=%s", self.caller)

    async def _on_state(self) -> None:
        if self.pc.connectionState == "connected" and self._connect_deadline is not None:
            self._connect_deadline.cancel()
        if self.pc.connectionState == "failed" and not self.ended:
            await self.end("ice-failed", notify=True)

    async def _require_connection(self, seconds: float) -> None:
        """Free the slot of a call whose ICE has not connected `seconds` after its offer."""
        await asyncio.sleep(seconds)
        if self.pc.connectionState != "connected" and not self.ended:
            log.info("event=echo-ice-timeout caller=%s state=%s", self.caller, self.pc.connectionState)
            # `error`: the call failed on this side (docs/protocol.md §2, hangup reasons).
            await self.end("ice-timeout", notify=True, hangup_reason="error")

    async def _expire(self) -> None:
        await asyncio.sleep(self.echo.max_seconds)
        await self.end("timeout", notify=True)

    async def end(self, reason: str, notify: bool, hangup_reason: str | None = None) -> None:
        """Tear the call down (idempotent). `notify`: tell the caller, with
        `disconnect` on the data channel (old clients) and `hangup` with `hangup_reason`
        (by default `reason`, which is also what the logs say)."""
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        self.echo.retire(self)
        try:
            # First stop applying signalling (an offer half-applied is dropped with the
            # connection), then say goodbye, then close.
            current = asyncio.current_task()
            timers = (self._runner, self._timer, self._connect_deadline)
            tasks = [t for t in timers if t is not None and t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if notify:
                if self.channel is not None and self.channel.readyState == "open":
                    self.channel.send(json.dumps({"type": "disconnect"}))
                    await asyncio.sleep(0.05)  # let SCTP send it before the transport closes
                said = hangup_reason or reason
                await self.echo.send({"type": "hangup", "data": self._scoped({"reason": said})})
            for proxy in self.proxies:
                proxy.stop()
            # Shielded: a close cut short would leave ICE sockets open.
            await asyncio.wait_for(asyncio.shield(self.pc.close()), CLOSE_TIMEOUT)
        except Exception:
            log.exception("event=echo-teardown-error caller=%s", self.caller)
        finally:
            self.echo.closed(self)
            self.done.set()
            if self.started_at is not None:
                log.info(
                    "event=echo-call-end caller=%s reason=%s seconds=%.1f chats=%d calls=%d",
                    self.caller,
                    reason,
                    time.monotonic() - self.started_at,
                    self.chats,
                    self.echo.active_calls,
                )


class EchoPeer:
    """The echo peer: one hub peer, any number of calls up to `max_calls`."""

    def __init__(self, hub: Hub, max_calls: int, max_seconds: float, name: str = ECHO_NAME) -> None:
        self.hub = hub
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.name = name
        self.relay = MediaRelay()
        self.calls: dict[str, EchoCall] = {}  # caller id -> live call
        self.closing: set[EchoCall] = set()  # ended, teardown in progress
        self.calls_total = 0  # calls accepted since start
        self.busy_total = 0  # offers answered `reject` busy
        self.failures = 0  # offers that could not be applied
        self.peer: Peer | None = None
        self.conn: InProcessConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._replies: set[asyncio.Task[None]] = set()
        self._early: dict[str, tuple[float, list[Json]]] = {}
        self._stopping = False
        # The calls it is a member of, and those it asked to join: any number at once, each
        # caller served on its own (one call must not make it busy for everyone else).
        self.groups: set[str] = set()
        self._joining: set[str] = set()

    @property
    def active_calls(self) -> int:
        """Calls not yet fully torn down."""
        return len(self.calls) + len(self.closing)

    @property
    def id(self) -> str | None:
        return self.peer.id if self.peer is not None else None

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self._attach()
        self._reader = asyncio.create_task(self._read(), name="echo-reader")
        log.info("event=echo-ready peer=%s max_calls=%d", self.id, self.max_calls)

    async def stop(self) -> None:
        """End every call (telling the callers), then leave the hub."""
        self._stopping = True
        await asyncio.gather(
            *(call.end("shutdown", notify=True) for call in list(self.calls.values())),
            return_exceptions=True,
        )
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        pending = list(self._tasks | self._replies)
        await asyncio.gather(*pending, return_exceptions=True)  # teardowns already started
        with contextlib.suppress(TimeoutError):  # e.g. a timeout's teardown, in its own task
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*(call.done.wait() for call in list(self.closing)))
        if self.peer is not None and self.conn is not None:
            deliver(self.hub.disconnect(self.peer, self.conn), self.hub)
        log.info("event=echo-stopped calls_total=%d", self.calls_total)

    async def _attach(self) -> None:
        """Join the hub (again, with the same id if we were disconnected) and identify."""
        conn = InProcessConnection()
        token = self.peer.token if self.peer is not None else None
        peer, out, _ = self.hub.connect(conn, token, kind="bot")
        self.peer, self.conn = peer, conn
        deliver(out, self.hub)
        # It can be a member of a group call: each member sees their own media echoed.
        await self.send({"type": "identify", "data": {"id": peer.id, "name": self.name, "caps": ["group"]}})

    async def send(self, message: Json) -> None:
        """Send one protocol message as this peer, exactly as a socket would."""
        if self.peer is not None:
            deliver(self.hub.receive(self.peer, json.dumps(message)), self.hub)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def retire(self, call: EchoCall) -> None:
        if self.calls.get(call.caller) is call:
            del self.calls[call.caller]
        self.closing.add(call)

    def closed(self, call: EchoCall) -> None:
        self.closing.discard(call)

    # --- reading ------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            conn = self.conn
            assert conn is not None
            text = await conn.inbox.get()
            if text is None:  # the hub closed us (rate limit, or replaced)
                if self._stopping:
                    return
                log.warning("event=echo-detached code=%s", conn.close_code)
                try:
                    if self.peer is not None:
                        deliver(self.hub.disconnect(self.peer, conn), self.hub)
                    await asyncio.sleep(REATTACH_DELAY)
                    await self._attach()
                except Exception:
                    log.exception("event=echo-reattach-failed")
                continue
            try:
                message = json.loads(text)
                if isinstance(message, dict):
                    self._dispatch(message)
            except Exception:
                log.exception("event=echo-dispatch-error frame=%r", text[:120])

    def _dispatch(self, message: Json) -> None:
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(data, dict):
            return  # ready (id and version are known already)
        if kind == "offer":
            self._on_offer(data)
        elif kind == "icecandidate":
            self._on_candidate(data)
        elif kind == "hangup":
            source = data.get("source")
            call = self.calls.get(source) if isinstance(source, str) else None
            if call is not None:
                self.spawn(call.end("hangup", notify=False))
        elif kind == "peer" and data.get("remove"):
            gone = data.get("id")
            if isinstance(gone, str):
                self._early.pop(gone, None)
                call = self.calls.get(gone)
                if call is not None:
                    self.spawn(call.end("gone", notify=False))
        elif kind == "accept":
            member = data.get("source")
            call = self.calls.get(member) if isinstance(member, str) else None
            if call is not None:
                call.post("answer", data)
        elif kind == "invite":
            self._on_invite(data)
        elif kind == "call":
            self._on_call(data)
        elif kind == "error":
            log.info("event=echo-error code=%s ref=%s", data.get("code"), data.get("ref"))
        # peer (listing), reject: nothing to do

    def _on_invite(self, data: Json) -> None:
        """Join a group call when there is room for one echo link per other member."""
        inviter, call_id, members = data.get("source"), data.get("call"), data.get("members")
        if not isinstance(inviter, str) or not isinstance(call_id, str) or not isinstance(members, list):
            return
        if call_id in self.groups or call_id in self._joining:
            return  # a repeated invitation to a call it is in, or joining
        if self.active_calls + len(members) > self.max_calls:
            self.busy_total += 1
            self._reply(inviter, "reject", "busy", call_id)
            return
        if self._elsewhere(members):
            self._reply(inviter, "reject", "declined", call_id)
            return
        self._joining.add(call_id)
        self.spawn(self.send({"type": "join", "data": {"call": call_id}}))

    def _on_call(self, data: Json) -> None:
        """Membership of the group call: the joiner offers to each member; a member that
        left, or the call ending, ends that member's echo."""
        call_id, members = data.get("id"), data.get("members")
        if not isinstance(call_id, str) or not isinstance(members, list):
            return
        if data.get("ended") or self.id not in members:
            self._joining.discard(call_id)
            if call_id in self.groups:
                self.groups.discard(call_id)
                for call in [c for c in self.calls.values() if c.call_id == call_id]:
                    self.spawn(call.end("left", notify=False))
            return
        if self._elsewhere(members):  # someone from another instance joined: it cannot reach us
            self.groups.discard(call_id)
            self._joining.discard(call_id)
            for call in [c for c in self.calls.values() if c.call_id == call_id]:
                self.spawn(call.end("left", notify=False))
            self.spawn(self.send({"type": "leave-call", "data": {"call": call_id}}))
            return
        joined = call_id in self._joining
        self._joining.discard(call_id)
        self.groups.add(call_id)
        for call in [c for c in self.calls.values() if c.call_id == call_id and c.caller not in members]:
            self.spawn(call.end("left", notify=False))
        if not joined:
            return
        for member in members:
            if isinstance(member, str) and member != self.id and member not in self.calls:
                call = EchoCall(self, member, call_id)
                self.calls[member] = call
                call.start()
                call.post("dial", {})

    def _elsewhere(self, members: list[Any]) -> bool:
        """Whether a member of a call is held by another instance (REDIS_URL). Each
        instance's echo is its own and is never published (docs/architecture.md, "Several
        instances"), so that member could not reach this echo: its answers would be
        `unknown-peer` there. Such calls are declined, or left."""
        for member in members:
            if isinstance(member, str) and member != self.id:
                peer = self.hub.peer(member)
                if peer is None or peer.home is not None:
                    return True
        return False

    def _on_offer(self, data: Json) -> None:
        caller = data.get("source")
        if not isinstance(caller, str):
            return
        call = self.calls.get(caller)
        if call is not None:  # renegotiation in the call: answered, no ringing
            call.post("offer", data)
            return
        if self.active_calls >= self.max_calls:
            self.busy_total += 1
            log.info("event=echo-busy caller=%s calls=%d", caller, self.active_calls)
            self._reply(caller, "reject", "busy")
            return
        call_id = data.get("call")
        call = EchoCall(self, caller, call_id if isinstance(call_id, str) else None)
        self.calls[caller] = call
        call.start()
        call.post("offer", data)
        _, early = self._early.pop(caller, (0.0, []))
        for candidate in early:
            call.post("candidate", candidate)

    def _on_candidate(self, data: Json) -> None:
        caller = data.get("id")
        if not isinstance(caller, str):
            return
        call = self.calls.get(caller)
        if call is not None:
            call.post("candidate", data)
            return
        # Before the offer (or for a call that is over): keep a few, for a while.
        now = time.monotonic()
        for stale in [k for k, (t, _) in self._early.items() if now - t > EARLY_CANDIDATE_TTL]:
            del self._early[stale]
        if caller not in self._early:
            if len(self._early) >= MAX_EARLY_SOURCES:
                return
            self._early[caller] = (now, [])
        pending = self._early[caller][1]
        if len(pending) < MAX_EARLY_CANDIDATES:
            pending.append(data)

    def _reply(self, target: str, kind: str, reason: str, call_id: str | None = None) -> None:
        """Answer without a call (busy) from a task, so a caller's slow socket never
        holds up the reader; bounded, so a flood cannot pile up tasks."""
        if len(self._replies) >= MAX_REPLY_TASKS:
            return
        data: Json = {"target": target, "reason": reason}
        if call_id is not None:
            data["call"] = call_id
        task = asyncio.create_task(self.send({"type": kind, "data": data}))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)


ECHO = web.AppKey("echo", EchoPeer)


async def echo_peer_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the echo peer joins the hub at start-up and leaves at shutdown.
    A failure to start is logged and leaves the server running without it."""
    settings = app[SETTINGS]
    ice_log = logging.getLogger("aioice")
    if ice_log.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        # aioice logs every connectivity check at INFO; keep them for LOG_LEVEL=DEBUG.
        ice_log.setLevel(logging.WARNING)
    echo = EchoPeer(app[HUB], settings.echo_max_calls, settings.echo_max_seconds)
    app[ECHO] = echo
    try:
        await echo.start()
    except Exception:
        log.exception("event=echo-start-failed")
    try:
        yield
    finally:
        try:
            await echo.stop()
        except Exception:
            log.exception("event=echo-stop-failed")
