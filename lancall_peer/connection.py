"""One RTCPeerConnection of the Python peer, shared by its two roles: a call's link with one
other member (peer.py's `Call`) and a data link (datalink.py's `DataLink`). A role owns one
`Connection`; to start over (a data link reopened, or glare on the side that yields) it
discards it whole and makes another, since aiortc applies no rollback and has no
restartIce.

What every connection has (docs/protocol.md §6, §7, §9):

- the ICE servers of `ready` (`rtc_configuration`; none: host candidates only);
- the negotiated service channel (`label "chat"`, `id 0`; `open_service()`), whose messages
  are parsed into `(type, data)` for the role, and the named channels (`channel(label)`,
  or opened by the other side: `on_channel`);
- offers and answers, sent through the role's `signal` (which adds whom to and the role's
  own fields): aiortc gathers every candidate before `setLocalDescription` returns, so
  the SDP sent is complete (nothing is trickled from this side); the other side's
  candidates are queued until its description is set (`add_candidate`);
- the glare rule: when both sides offer at once, the side with the smaller id is polite
  and yields (`is_polite`): it answers theirs; the other ignores the offer it got. aiortc
  cannot roll an offer back, so the polite side takes theirs on a fresh connection;
- `on_failed` when ICE or DTLS fails, `on_service_closed` when the service channel closes;
- `close()`, idempotent; a closed connection calls its role back no more.

The browser's counterpart is public/connection/connection.js; this one has no verification guard
(the Python peer trusts every device) and no ICE restarts. In code::

    connection = Connection(ice_servers, polite=is_polite(me, them), signal=relay, on_message=handle)
    connection.open_service()
    await connection.offer()                    # relay("offer", {"type": "offer", "sdp": ...})
    ...
    await connection.receive_answer(their_sdp)  # False: stale (no offer of ours is out)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from server.webrtc import CHAT_CHANNEL_ID, CHAT_LABEL, RemoteCandidates, rtc_configuration

Json = dict[str, Any]
Signal = Callable[[str, Json], Awaitable[None]]
OnMessage = Callable[[str, Any], None]
OnLost = Callable[[], Awaitable[None]]

MAX_MESSAGE_CHARS = 64 * 1024  # a service-channel message longer than this is malformed


def is_polite(me: str, them: str) -> bool:
    """The glare rule (docs/protocol.md §7, §9): of two sides that offered at once, the one
    with the lexicographically smaller id is polite and answers the other's offer."""
    return me < them


def _nothing(*_args: Any) -> None:
    return None


class Connection:
    """One RTCPeerConnection and its channels. `polite`: this side yields on glare (see
    `is_polite`). `signal(type, data)` relays `offer` or `accept` (`data`: `type` and `sdp`)
    to the other side. The callbacks, all optional but `on_message`:

    - `on_message(type, data)`: a service-channel message (a JSON object with a string
      `type`); `on_malformed()` for anything else received there;
    - `on_open()`: the service channel opened (`opened` is set too);
    - `on_channel(channel)`: the other side opened a named channel (kept in `channels`);
      `on_channel_closed(channel)` when a named channel closes;
    - `on_failed()`: the connection failed (ICE or DTLS); `on_service_closed()`: the
      service channel closed while the connection was open."""

    def __init__(
        self,
        ice_servers: list[Json],
        *,
        polite: bool,
        signal: Signal,
        on_message: OnMessage,
        on_malformed: Callable[[], None] = _nothing,
        on_open: Callable[[], None] = _nothing,
        on_channel: Callable[[RTCDataChannel], None] = _nothing,
        on_channel_closed: Callable[[RTCDataChannel], None] = _nothing,
        on_failed: OnLost | None = None,
        on_service_closed: OnLost | None = None,
    ) -> None:
        self.polite = polite
        self.signal = signal
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.candidates = RemoteCandidates(self.pc)
        self.service: RTCDataChannel | None = None
        self.channels: dict[str, RTCDataChannel] = {}  # named channels by label (not the service)
        self.opened = asyncio.Event()  # the service channel is open
        self.closed = False
        self._on_message = on_message
        self._on_malformed = on_malformed
        self._on_open = on_open
        self._on_channel = on_channel
        self._on_channel_closed = on_channel_closed
        self._on_failed = on_failed
        self._on_service_closed = on_service_closed
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("datachannel", self._datachannel)
        self.pc.on("connectionstatechange", self._state_changed)

    # -- channels ----------------------------------------------------------------------

    def open_service(self) -> RTCDataChannel:
        """The negotiated service channel, made once (both sides make it; nothing is
        signalled). A caller makes it before its offer; an answerer before or after the
        remote offer (a call's answerer only when the offer has an SCTP section)."""
        if self.service is not None:
            return self.service
        service = self.pc.createDataChannel(CHAT_LABEL, negotiated=True, id=CHAT_CHANNEL_ID)
        self.service = service
        service.on("open", self._service_opened)
        service.on("message", self._received)
        service.on("close", self._service_closed)
        if service.readyState == "open":
            self._service_opened()
        return service

    async def channel(self, label: str, *, ordered: bool = True, within: float = 10.0) -> RTCDataChannel:
        """The named channel `label`, made if this side has none, once open (TimeoutError
        after `within` seconds)."""
        if not label or label == CHAT_LABEL:
            raise ValueError(f"{label!r} is not a channel name to open")
        channel = self.channels.get(label)
        if channel is None:
            channel = self.pc.createDataChannel(label, ordered=ordered)
            self._adopt(channel)
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            async with asyncio.timeout(within):
                await opened.wait()
        return channel

    @property
    def named_open(self) -> bool:
        """Whether any named channel is open (a data link is not idle while one is)."""
        return any(c.readyState == "open" for c in self.channels.values())

    def send(self, message: Json) -> bool:
        """Send one message on the service channel; False (nothing sent) unless it is open."""
        if self.service is None or self.service.readyState != "open":
            return False
        self.service.send(json.dumps(message))
        return True

    def _adopt(self, channel: RTCDataChannel) -> None:
        self.channels[channel.label] = channel
        channel.on("close", lambda: None if self.closed else self._on_channel_closed(channel))

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if self.closed or channel.label == CHAT_LABEL:
            return  # the service channel is negotiated, never announced
        self._adopt(channel)
        self._on_channel(channel)

    def _service_opened(self) -> None:
        if self.closed or self.opened.is_set():
            return
        self.opened.set()
        self._on_open()

    def _received(self, raw: str | bytes) -> None:
        if self.closed:
            return
        message: Any = None
        if isinstance(raw, str) and len(raw) <= MAX_MESSAGE_CHARS:
            with contextlib.suppress(ValueError):
                message = json.loads(raw)
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            self._on_message(message["type"], message.get("data"))
        else:
            self._on_malformed()

    def _service_closed(self) -> None:
        if not self.closed and self._on_service_closed is not None:
            self._spawn(self._lost(self._on_service_closed))

    # -- negotiation -------------------------------------------------------------------

    async def offer(self) -> bool:
        """Make an offer and send it; False when the connection closed while aiortc was
        gathering (nothing is sent)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self._send_description("offer")

    async def answer(self) -> bool:
        """Answer the remote offer just set, as `offer` does."""
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return await self._send_description("accept")

    async def _send_description(self, kind: str) -> bool:
        if self.closed:
            return False
        description = self.pc.localDescription
        await self.signal(kind, {"type": description.type, "sdp": description.sdp})
        return True

    @property
    def offering(self) -> bool:
        """Our own offer is out, unanswered: an offer from the other side now is glare."""
        return self.pc.signalingState == "have-local-offer"

    def ignores_offer(self) -> bool:
        """Whether to ignore the offer the other side just sent: glare (ours is out too) on
        the side that does not yield, since the other side answers ours. The polite side
        takes theirs, on a fresh connection: aiortc cannot roll its own offer back."""
        return self.offering and not self.polite

    async def receive_offer(self, sdp: str, *, answer: bool = True) -> bool:
        """Their offer on this connection (the first, or a renegotiation): set, then answered
        unless `answer` is False (a call adds its media first, then calls `answer`). False
        when not taken: glare on the side that does not yield. Glare on the polite side
        raises: the role takes their offer on a fresh connection instead."""
        if self.offering:
            if not self.polite:
                return False
            raise RuntimeError("glare: aiortc cannot roll our offer back; take theirs on a fresh connection")
        await self._set_remote("offer", sdp)
        return await self.answer() if answer else not self.closed

    async def receive_answer(self, sdp: str) -> bool:
        """Their answer to our offer; False (ignored) when no offer of ours is out: stale,
        or we yielded to theirs."""
        if not self.offering:
            return False
        await self._set_remote("answer", sdp)
        return not self.closed

    async def _set_remote(self, kind: Literal["offer", "answer"], sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await self.candidates.flush()  # those that came before the description

    async def add_candidate(self, value: Any) -> None:
        """One trickled candidate of the other side (queued until its description is set);
        ValueError for anything that is not a candidate."""
        await self.candidates.add(value)

    # -- state and the end -------------------------------------------------------------

    async def _state_changed(self) -> None:
        if self.pc.connectionState == "failed" and self._on_failed is not None:
            await self._lost(self._on_failed)

    async def _lost(self, callback: OnLost) -> None:
        if not self.closed:  # checked when it runs: the role may have replaced us meanwhile
            await callback()

    async def close(self) -> None:
        """Close the connection and its channels (idempotent); no callback follows."""
        if self.closed:
            return
        self.closed = True
        await asyncio.shield(self.pc.close())  # a cancelled close leaves sockets open

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
