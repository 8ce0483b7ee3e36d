"""A small Python WebRTC peer for the /rtc protocol (docs/protocol.md), built on
aiortc. Tests and scripts use it to stand in for a browser; the running server never
imports it. The aiortc helpers it shares with the echo peer live in `server/webrtc.py`;
each call's connection is a `connection.Connection`, as each data link's is.

It connects to `/rtc` over TLS, identifies, keeps the peer list, calls or answers
(auto-accept by default), sends a synthetic video track (and optionally a tone),
chats over the negotiated data channel (`label "chat"`, `negotiated`, `id 0`), counts
the frames it receives, and hangs up. It may live in a space (docs/protocol.md §11). When
its socket drops without a word (a server killed, a network change) it reconnects with its
resume token, trying each server URL it was given in turn, and keeps its id and its calls:
their media flows between the peers, not through the server.

Example (the CA file is the server's `certs/ca.pem`, also served at `/ca.pem`)::

    python -m lancall_peer https://192.168.1.10:3000/ --ca certs/ca.pem \\
        --call "Echo test" --chat "hello" --seconds 5
    python -m lancall_peer https://localhost:3000/ --ca certs/ca.pem --name Robot --answer
    python -m lancall_peer https://host1:3000/ https://host2:3000/ --ca certs/ca.pem \\
        --name Robot --answer --space K7M2QX      # two instances on one Redis, in a space
    python -m lancall_peer https://localhost:3000/ --ca certs/ca.pem --call Robot \\
        --invite Ann --invite Bob --seconds 30     # a group call of four

In code::

    async with PythonPeer("https://host:3000/", "Robot", ssl_context=ctx) as peer:
        echo_id = await peer.wait_for_peer("Echo test")
        call = await peer.call(echo_id)
        await call.wait_for_video_frames(10)
        await call.send_chat("hi")
        print(await call.wait_for_chat(0))    # "Echo: hi"
        await call.hangup()
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import math
import mimetypes
import ssl
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError
from av import AudioFrame, VideoFrame

from server.protocol import SPACE_ALPHABET, SPACE_MAX_LENGTH, SPACE_MIN_LENGTH, clean_space
from server.verification import EXCHANGE_TYPES, ChannelCodes, CodeExchange

from .connection import Connection, is_polite
from .datalink import DataLinkError, DataLinks
from .filetransfer import FileReceiving, TransferFailed, send_file

log = logging.getLogger("lancall_peer.peer")

Json = dict[str, Any]
Send = Callable[[Json], Awaitable[None]]

CLOSE_REPLACED = 4001  # the server gave our id to a newer socket (someone resumed with our token)
CONNECT_SECONDS = 5.0  # a server that accepts the socket but never says `ready` is given up
RECONNECT_DELAYS = (0.0, 0.25, 0.5, 1.0)  # between rounds over every URL; then 1 s each
RELISTED_SECONDS = 1.5  # after a reconnect, a peer not listed again within this has left
QUEUED_WHILE_DOWN = 64  # messages kept while reconnecting (the oldest go first)
GLARE = "glare"  # the end reason of our own call attempt when we yielded to theirs


# --- synthetic media ------------------------------------------------------------------------


class SyntheticVideoTrack(VideoStreamTrack):
    """Generated video (30 fps unless told): a grey ramp that scrolls sideways and a tint
    that cycles, so every frame differs (an encoder never sees a still image). Built from
    bytes operations only, so it costs little CPU; a small, slow track (160x120 at 10 fps)
    lets one process hold the 30 links of a six-person mesh."""

    def __init__(self, width: int = 320, height: int = 240, fps: float = 30.0) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.fps = fps
        self.frames_sent = 0
        self._row = bytes((x * 255) // max(1, width - 1) for x in range(width))
        self._first: float | None = None

    async def _paced(self) -> tuple[int, fractions.Fraction]:
        """The next presentation time at `fps`, sleeping until it is due (aiortc's own
        `next_timestamp` is fixed at 30 fps)."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._first is None:
            self._first = now
        due = self._first + self.frames_sent / self.fps
        if due > now:
            await asyncio.sleep(due - now)
        return round(self.frames_sent * VIDEO_CLOCK_RATE / self.fps), VIDEO_TIME_BASE

    async def recv(self) -> VideoFrame:
        pts, time_base = await self._paced()
        n = self.frames_sent
        frame = VideoFrame(self.width, self.height, "yuv420p")
        luma = frame.planes[0]
        k = (n * 4) % self.width
        row = self._row[k:] + self._row[:k] + bytes(luma.line_size - self.width)
        luma.update(row * self.height)
        for i, plane in enumerate(frame.planes[1:]):
            plane.update(bytes([(96 + n * (2 + i)) % 256]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.frames_sent += 1
        return frame


class SyntheticAudioTrack(MediaStreamTrack):
    """A 400 Hz tone, 48 kHz mono, in 20 ms frames paced in real time."""

    kind = "audio"
    SAMPLE_RATE = 48000
    SAMPLES = 960  # 20 ms; 400 Hz fits exactly 8 periods, so frames join seamlessly

    def __init__(self) -> None:
        super().__init__()
        self.frames_sent = 0
        self._start: float | None = None
        samples = [
            int(6000 * math.sin(2 * math.pi * 400 * i / self.SAMPLE_RATE)) for i in range(self.SAMPLES)
        ]
        self._pcm = struct.pack(f"<{self.SAMPLES}h", *samples)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        pts = self.frames_sent * self.SAMPLES
        wait = self._start + pts / self.SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.pts = pts
        frame.sample_rate = self.SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, self.SAMPLE_RATE)
        self.frames_sent += 1
        return frame


# --- one call ------------------------------------------------------------------------------


class CallRejected(Exception):
    """The callee answered `reject` (or `hangup`) instead of `accept`."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"call rejected: {reason or 'no reason given'}")
        self.reason = reason


class Call:
    """One call with one remote peer: the call role over one `Connection` (its
    RTCPeerConnection, the chat channel, negotiation), with the media and what was
    received. Created by `PythonPeer.call()` or for an accepted offer; in a group call
    (docs/protocol.md §8) there is one per other member, and `call_id` names the call its
    signalling is scoped to. `polite`: this side yields on glare (`is_polite`)."""

    def __init__(
        self,
        remote_id: str,
        send: Send,
        ice_servers: list[dict[str, Any]],
        outgoing: bool,
        wait_timeout: float = 15.0,
        call_id: str | None = None,
        *,
        polite: bool = False,
    ) -> None:
        self.remote_id = remote_id
        self.wait_timeout = wait_timeout  # seconds any wait_* gives up after
        self.outgoing = outgoing
        self.call_id = call_id  # the group call this link belongs to, once there is one
        self.connection = Connection(
            ice_servers,
            polite=polite,
            signal=self._signal,
            on_message=self._on_message,
            on_open=self._on_channel_open,
            on_failed=lambda: self.close("failed"),
        )
        self.local_tracks: list[MediaStreamTrack] = []
        self.video_frames = 0
        self.audio_frames = 0
        self.first_video_at: float | None = None  # time.time() of the first decoded video frame
        self.chat: list[str] = []  # chat lines received, in order
        self.received: list[Json] = []  # every data-channel message received, as {type, data}
        self.accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.on_end: Callable[[Call], None] | None = None  # PythonPeer forgets the call
        self._send = send
        self._changed = asyncio.Condition()
        self.codes = ChannelCodes(self.pc, lambda: self.channel)  # the security code's exchange
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    @property
    def pc(self) -> RTCPeerConnection:
        return self.connection.pc

    @property
    def channel(self) -> RTCDataChannel | None:
        """The chat channel, once made (`open_channel`)."""
        return self.connection.service

    # -- set-up -------------------------------------------------------------------

    def add_media(
        self, video: bool, audio: bool, video_size: tuple[int, int] = (320, 240), video_fps: float = 30.0
    ) -> None:
        """Attach synthetic tracks. A caller adds new transceivers; a callee fills the
        ones the offer created (and adds none the offer did not ask for)."""
        wanted: list[MediaStreamTrack] = []
        if video:
            wanted.append(SyntheticVideoTrack(*video_size, fps=video_fps))
        if audio:
            wanted.append(SyntheticAudioTrack())
        for track in wanted:
            if self.outgoing:
                self.pc.addTransceiver(track, direction="sendrecv")
            else:
                free = [
                    t
                    for t in self.pc.getTransceivers()
                    if t.kind == track.kind and t.sender.track is None and t.receiver.track is not None
                ]
                if not free:
                    continue
                free[0].sender.replaceTrack(track)
                free[0].direction = "sendrecv"
            self.local_tracks.append(track)

    def open_channel(self) -> None:
        """Create the negotiated chat channel (both sides do; nothing is signalled)."""
        self.connection.open_service()

    def _on_channel_open(self) -> None:
        self.codes.opened()

    @property
    def exchange(self) -> CodeExchange | None:
        """This connection's commit-then-reveal (docs/verification.md), once begun."""
        return self.codes.exchange

    # -- events -------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._consume(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    if self.first_video_at is None:
                        self.first_video_at = time.time()
                    self.video_frames += 1
                else:
                    self.audio_frames += 1
                await self._notify()

    @property
    def code(self) -> str | None:
        """The link's verification code (docs/verification.md), the five words the other
        side's screen shows; None until both sides' nonces have crossed the data channel."""
        return self.codes.code

    async def wait_for_code(self) -> str:
        """The code, once the exchange is done (raises if the other side broke its rules)."""

        def settled() -> bool:
            return self.exchange is not None and bool(self.exchange.code or self.exchange.failed)

        await self.wait_until(settled)
        assert self.exchange is not None
        if self.exchange.code is None:
            raise RuntimeError(f"no security code: the other side's answer {self.exchange.failed}")
        return self.exchange.code

    def _on_message(self, kind: str, data: Any) -> None:
        self.received.append({"type": kind, "data": data})
        if kind in EXCHANGE_TYPES:
            self.codes.receive(kind, data)
        elif kind == "chat" and isinstance(data, str):
            self.chat.append(data)
        elif kind == "disconnect":
            task = asyncio.create_task(self.close("disconnect"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        notify = asyncio.create_task(self._notify())
        self._tasks.add(notify)
        notify.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds (re-checked whenever something arrives);
        TimeoutError after `wait_timeout` seconds."""
        async with asyncio.timeout(self.wait_timeout), self._changed:
            await self._changed.wait_for(predicate)

    # -- what tests and scripts use -------------------------------------------------

    async def wait_for_video_frames(self, count: int = 1) -> int:
        """Wait until `count` video frames have been received and decoded."""
        await self.wait_until(lambda: self.video_frames >= count)
        return self.video_frames

    async def wait_for_audio_frames(self, count: int = 1) -> int:
        await self.wait_until(lambda: self.audio_frames >= count)
        return self.audio_frames

    async def wait_for_chat(self, index: int) -> str:
        """Chat line number `index` of this call (0: the first received), once it has
        arrived. An explicit index, so a line that came early is never missed."""
        await self.wait_until(lambda: len(self.chat) > index)
        return self.chat[index]

    async def send_chat(self, text: str) -> None:
        """Send a chat line once the data channel is open."""
        await self.send_data({"type": "chat", "data": text})

    async def send_data(self, message: Json) -> None:
        """Send any data-channel message once the channel is open."""
        if self.channel is None:
            raise RuntimeError("this call has no data channel")
        async with asyncio.timeout(self.wait_timeout):
            await self.connection.opened.wait()
        if not self.connection.send(message):
            raise RuntimeError("this call's data channel is closed")

    async def offer(self) -> bool:
        """Send our offer (all candidates in it); False if the call ended meanwhile."""
        return await self.connection.offer()

    async def renegotiate(self) -> None:
        """Send a fresh offer in the same call (what a browser does on a camera switch);
        the answer arrives as `accept` and is applied by the reader."""
        self.accepted = asyncio.get_running_loop().create_future()
        await self.connection.offer()

    async def _signal(self, kind: str, data: Json) -> None:
        data = {**data, "target": self.remote_id}
        if self.call_id is not None:
            data["call"] = self.call_id
        await self._send({"type": kind, "data": data})

    async def traffic(self) -> tuple[int, int]:
        """Bytes received and sent on this link so far (media, RTCP and data channel: the
        one bundled transport's counters, from `getStats`)."""
        received = sent = 0
        for stats in (await self.pc.getStats()).values():
            if getattr(stats, "type", None) == "transport":
                received += stats.bytesReceived
                sent += stats.bytesSent
        return received, sent

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call: `disconnect` on the data channel (what an old client listens
        for), `hangup` through the server, then close everything. The `hangup` names no
        call: in a call of two that is what ends the call on the server (a member of a
        bigger call leaves with `PythonPeer.leave_call`)."""
        if self.ended.is_set():
            return
        await self._say_disconnect()
        await self._send({"type": "hangup", "data": {"target": self.remote_id, "reason": reason}})
        await self.close(reason)

    async def leave(self, reason: str) -> None:
        """End this link without a server message (the server already knows: the member
        sent `leave-call`); the other side hears `disconnect` on the data channel."""
        if self.ended.is_set():
            return
        await self._say_disconnect()
        await self.close(reason)

    async def _say_disconnect(self) -> None:
        sent = False
        with contextlib.suppress(Exception):
            sent = self.connection.send({"type": "disconnect"})
        if sent:
            await asyncio.sleep(0.05)  # let SCTP take it before the transport closes

    async def close(self, reason: str) -> None:
        """Tear down without telling the other side (it told us, or it is gone)."""
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        if self.on_end is not None:
            self.on_end(self)
        if not self.accepted.done():
            self.accepted.set_exception(CallRejected(reason))
            self.accepted.exception()  # mark retrieved: nobody may be waiting
        for track in self.local_tracks:
            track.stop()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await self.connection.close()
        await self._notify()


# --- the signalling side -----------------------------------------------------------------


@dataclass(slots=True)
class PeerInfo:
    id: str
    name: str
    kind: str
    in_call: bool = False  # `inCall` of its latest `peer` frame (docs/protocol.md §8)


def rtc_url(url: str) -> str:
    """`https://host:port/` (what users type) -> `wss://host:port/rtc`."""
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path.rstrip("/").endswith("/rtc") else parts.path.rstrip("/") + "/rtc"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def space_code(text: str) -> str:
    """A space code as typed or linked (any case; spaces and dashes ignored, as the
    browser's `cleanSpaceCode`) in its one spelling; ValueError saying what a code is."""
    code = clean_space("".join(text.split()).replace("-", ""))
    if code is None:
        raise ValueError(
            f"{text!r} is not a space code: {SPACE_MIN_LENGTH}-{SPACE_MAX_LENGTH} characters from "
            f"{SPACE_ALPHABET} (no 0, O, 1, I or L)"
        )
    return code


class PythonPeer:
    """One /rtc client with aiortc media. Use as `async with PythonPeer(...) as peer:`.

    - `auto_accept`: answer every offer at once (when not already in a call with
      someone else, which is answered `reject` reason `busy` as the browser does).
      When False, offers are declined with reason `declined`.
    - `video` / `audio`: send a synthetic video track / a tone; `video_size` and
      `video_fps` set the video's size and rate.
    - `group`: identify with the `group` capability and take part in group calls
      (docs/protocol.md §8): `call` updates keep `call_id` and `members`; once it has
      joined, it offers to every other member; offers that name its call are answered
      without ringing; a member no longer listed has its link closed.
    - `join_when_invited`: answer an `invite` with `join` (when in no call already);
      when False, or while in a call, the invitation is declined with `reject`.
    - `url`: the server, or several (instances sharing one Redis): the first that
      answers is used, and after a drop the others are tried in turn.
    - `space`: a space code (docs/protocol.md §11), sent with every `identify`; None: the
      open network. `ValueError` for a malformed code.
    - `reconnect`: when the socket drops without a word, reconnect with the resume token
      (same id, nobody sees a leave) and keep the calls; the server's peer list is
      taken again (a peer not listed within RELISTED_SECONDS has left meanwhile). When
      the id could not be resumed (the grace period was over) the calls end. False: a
      drop ends the calls at once. `reconnects` counts the reconnections.
    - `messages`: every frame received from the server, parsed, in order.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        name: str = "Python peer",
        *,
        ssl_context: ssl.SSLContext | None = None,
        auto_accept: bool = True,
        video: bool = True,
        audio: bool = False,
        headers: dict[str, str] | None = None,
        wait_timeout: float = 15.0,
        group: bool = True,
        join_when_invited: bool = True,
        video_size: tuple[int, int] = (320, 240),
        video_fps: float = 30.0,
        space: str | None = None,
        reconnect: bool = True,
    ) -> None:
        self.urls = [rtc_url(u) for u in ([url] if isinstance(url, str) else url)]
        if not self.urls:
            raise ValueError("no server URL given")
        self.url = self.urls[0]  # the one in use
        self.space = None if space is None else space_code(space)
        self.reconnect = reconnect
        self.reconnects = 0
        self.name = name
        self.ssl_context = ssl_context
        self.auto_accept = auto_accept
        self.video = video
        self.audio = audio
        self.video_size = video_size
        self.video_fps = video_fps
        self.group = group
        self.join_when_invited = join_when_invited
        self.call_id: str | None = None  # the group call this peer is a member of
        self.members: list[str] = []  # its members (this peer included), in joining order
        self.invitations: list[Json] = []  # every `invite` received
        self.errors: list[Json] = []  # the `data` of every `error` received
        self.headers = headers or {}
        self.wait_timeout = wait_timeout  # seconds any wait_* (and call()) gives up after
        self.id: str | None = None
        self.token: str | None = None
        self.config: Json = {}
        self.peers: dict[str, PeerInfo] = {}
        self.messages: list[Json] = []
        self.calls: dict[str, Call] = {}  # remote id -> live call
        self.ended_calls: list[Call] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._joining: str | None = None  # sent `join` for this call; offers once listed
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False  # close() or drop() began: a closed socket is not reopened
        self._stopped = asyncio.Event()  # wakes a reconnect waiting between rounds
        self._down = False  # the socket dropped and a reconnect is under way
        self._queued: deque[str] = deque(maxlen=QUEUED_WHILE_DOWN)  # sent on reconnecting
        # The peer data API (docs/protocol.md §9): `self.data.peer(id).send/request/channel`.
        self.data = DataLinks(
            self.send,
            lambda: self.id,
            lambda: self.config.get("iceServers") or [],
            lambda remote: info.name if (info := self.peers.get(remote)) is not None else remote,
        )

    async def __aenter__(self) -> PythonPeer:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket on the first URL that answers, wait for `ready`, and identify.
        Raises the last URL's error when none does."""
        self._session = aiohttp.ClientSession()
        failure: BaseException | None = None
        try:
            for url in self.urls:
                try:
                    self._ws = await self._open(url, resume=False)
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    failure = exc
                    continue
                self.url = url
                break
        except BaseException:
            await self._session.close()
            raise
        if self._ws is None:
            await self._session.close()
            assert failure is not None
            raise failure
        await self._identify()
        self._reader = asyncio.create_task(self._read())

    async def _open(self, url: str, resume: bool) -> aiohttp.ClientWebSocketResponse:
        """A socket to `url` (with the resume token when `resume`) that has said `ready`,
        which is recorded and applied; ConnectionError if it says anything else."""
        assert self._session is not None
        if resume and self.token:
            url += ("&" if "?" in url else "?") + "resume=" + quote(self.token)
        async with asyncio.timeout(CONNECT_SECONDS):
            ws = await self._session.ws_connect(
                url,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                headers=self.headers,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
            try:
                frame = await ws.receive()
                message = json.loads(frame.data) if frame.type is aiohttp.WSMsgType.TEXT else None
                if not isinstance(message, dict) or message.get("type") != "ready":
                    raise ConnectionError(f"{url}: expected `ready`, got {str(frame.data)[:80]!r}")
            except BaseException:
                await ws.close()
                raise
        self.messages.append(message)
        await self._dispatch(message)
        await self._notify()
        return ws

    async def _identify(self) -> None:
        identify: Json = {"id": self.id, "name": self.name}
        if self.group:
            identify["caps"] = ["group", "data"]
        if self.space is not None:
            identify["space"] = self.space
        await self.send({"type": "identify", "data": identify})

    async def move_to_space(self, space: str | None) -> None:
        """Join another space (a code) or, with None, the open network (docs/protocol.md
        §11): the server lists the new space's people; the old ones are removed."""
        self.space = None if space is None else space_code(space)
        await self._identify()

    async def close(self) -> None:
        """Leave the group call if in one, hang up every call and close the socket."""
        self._closing = True
        self._stopped.set()
        if self.call_id is not None:
            with contextlib.suppress(Exception):
                await self.leave_call()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.data.close_all()
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await call.hangup()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            # The reader ends by itself once the socket is closed, closing any call
            # left; cancelling it mid-teardown would leave ICE transports open.
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), self.wait_timeout)
            except TimeoutError:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def drop(self) -> None:
        """Vanish without a word, as a closed laptop lid does: the socket closes with
        no `hangup` and no `disconnect`; local calls are torn down silently."""
        self._closing = True
        self._stopped.set()
        if self._ws is not None:
            await self._ws.close()
        self.call_id = None  # nothing left to say to anyone
        for call in list(self.calls.values()):
            await call.close("dropped")
        await self.close()

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def send(self, message: Json) -> None:
        """Send one protocol message (tests also use it to send malformed ones). While
        reconnecting, the last QUEUED_WHILE_DOWN are kept and sent once identified."""
        if self._ws is None or self._ws.closed:
            if self._down and not self._closing:
                self._queued.append(json.dumps(message))
            return
        with contextlib.suppress(ConnectionError):
            await self._ws.send_str(json.dumps(message))

    # -- waiting ----------------------------------------------------------------

    async def _until(self, predicate: Callable[[], Any]) -> Any:
        async with asyncio.timeout(self.wait_timeout), self._changed:
            return await self._changed.wait_for(predicate)

    async def wait_for_peer(self, name: str) -> str:
        """The id of the listed peer called `name` (waiting for it to appear)."""

        def find() -> str | None:
            return next((p.id for p in self.peers.values() if p.name == name), None)

        result: str = await self._until(find)
        return result

    async def wait_for_peer_gone(self, peer_id: str) -> None:
        await self._until(lambda: peer_id not in self.peers)

    async def wait_for_message(
        self,
        type_: str,
        predicate: Callable[[Json], bool] | None = None,
        *,
        since: int = 0,
    ) -> Json:
        """The first message of type `type_` (received at index >= `since`) that
        satisfies `predicate`, waiting for it if needed."""

        def find() -> Json | None:
            for message in self.messages[since:]:
                if message.get("type") == type_ and (predicate is None or predicate(message)):
                    return message
            return None

        result: Json = await self._until(find)
        return result

    async def wait_for_call(self, remote_id: str | None = None) -> Call:
        """A call that was answered (auto-accept), from `remote_id` or anyone."""

        def find() -> Call | None:
            for call in self.calls.values():
                if not call.outgoing and remote_id in (None, call.remote_id):
                    return call
            return None

        result: Call = await self._until(find)
        return result

    async def wait_for_members(self, expected: set[str]) -> list[str]:
        """The group call's members, once they are exactly `expected` (ids; an empty set:
        in no call)."""
        await self._until(lambda: set(self.members) == expected)
        return self.members

    async def wait_for_video_from_members(self, count: int = 1, poll: float = 0.05) -> dict[str, int]:
        """Wait until `count` video frames have been decoded from every other member of
        the group call (polled: frames arrive on each link's own tasks). Returns frames
        received per member id."""
        async with asyncio.timeout(self.wait_timeout):
            while True:
                frames = self.frames_from_members()
                if self.members and all(n >= count for n in frames.values()):
                    return frames
                await asyncio.sleep(poll)

    def frames_from_members(self) -> dict[str, int]:
        """Video frames decoded so far from each other member (0 without a link yet)."""
        return {
            m: (call.video_frames if (call := self.calls.get(m)) is not None else 0)
            for m in self.members
            if m != self.id
        }

    async def traffic_by_member(self) -> dict[str, tuple[int, int]]:
        """Bytes received from and sent to each other member with a link so far."""
        return {m: await call.traffic() for m, call in self.calls.items() if m in self.members}

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- group calls (docs/protocol.md §8) -----------------------------------------------

    async def invite(self, target: str) -> None:
        """Ask `target` (a peer id) to join this peer's call. Refusals arrive as `error`
        (`call-full`, `unsupported`, `not-in-call`, `unknown-peer`) in `errors`."""
        if self.call_id is None:
            raise RuntimeError("not in a call: invite needs a call to invite to")
        await self.send({"type": "invite", "data": {"target": target, "call": self.call_id}})

    async def join(self, call_id: str) -> None:
        """Accept an invitation; once the `call` update lists this peer it offers to
        every other member."""
        self._joining = call_id
        await self.send({"type": "join", "data": {"call": call_id}})

    async def decline(self, invitation: Json, reason: str = "declined") -> None:
        """Decline an invitation (its `data`): `reject` to the inviter, naming the call."""
        data = {"target": invitation["source"], "reason": reason, "call": invitation["call"]}
        await self.send({"type": "reject", "data": data})

    async def leave_call(self) -> None:
        """Leave the group call: `leave-call`, then each link ends with `disconnect`
        on its data channel. The others carry on."""
        call_id = self.call_id
        if call_id is None:
            return
        self.call_id, self.members = None, []
        await self.send({"type": "leave-call", "data": {"call": call_id}})
        await asyncio.gather(
            *(c.leave("left-call") for c in list(self.calls.values()) if c.call_id == call_id)
        )
        await self._notify()

    async def _on_call(self, data: Json) -> None:
        call_id, members = data.get("id"), data.get("members")
        if not isinstance(call_id, str) or not isinstance(members, list):
            return
        if data.get("ended") or self.id not in members:
            if self.call_id == call_id:
                self.call_id, self.members = None, []
            for link in [c for c in self.calls.values() if c.call_id == call_id]:
                await link.close("call-ended")
            return
        listed = [m for m in members if isinstance(m, str)]
        if not self._may_adopt(call_id, listed):
            return  # a call this peer neither made, answered nor joined (issue 18, finding 22)
        self.call_id, self.members = call_id, listed
        for remote, link in list(self.calls.items()):
            if remote in self.members:
                link.call_id = call_id
            elif link.call_id is not None:  # left this call, or a call this peer was taken from
                await link.close("left-call")
        if self._joining == call_id:
            self._joining = None
            others = [m for m in self.members if m != self.id and m not in self.calls]
            self._spawn(self._offer_to_members(call_id, others))

    def _may_adopt(self, call_id: str, members: list[str]) -> bool:
        """The call it is in, the one it asked to join, or the 1:1 call it dialled or
        answered; never a call that appears around it (docs/protocol.md §7)."""
        if call_id in (self.call_id, self._joining):
            return True
        others = [m for m in members if m != self.id]
        link = self.calls.get(others[0]) if len(others) == 1 else None
        return self.call_id is None and link is not None and not link.ended.is_set()

    async def _offer_to_members(self, call_id: str, members: list[str]) -> None:
        """The joiner offers to every other member, all at once (each offer waits for
        aiortc to gather its candidates); answers are applied by the reader."""
        await asyncio.gather(*(self._offer_to_member(call_id, m) for m in members))

    async def _offer_to_member(self, call_id: str, member: str) -> None:
        call = self._new_call(member, outgoing=True, call_id=call_id)
        self.calls[member] = call
        try:
            call.add_media(self.video, self.audio, self.video_size, self.video_fps)
            call.open_channel()
            await call.offer()  # not sent if the call ended meanwhile (this peer left it)
        except Exception:
            log.exception("event=group-offer-failed member=%s", member)
            await call.close("error")

    async def _on_invite(self, data: Json) -> None:
        self.invitations.append(data)
        call_id, source = data.get("call"), data.get("source")
        if not isinstance(call_id, str) or not isinstance(source, str):
            return
        busy = self.call_id is not None or any(not c.ended.is_set() for c in self.calls.values())
        if self.join_when_invited and not busy:
            await self.join(call_id)
        else:
            await self.decline(data, "busy" if busy else "declined")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- calling ----------------------------------------------------------------

    async def call(self, target: str) -> Call:
        """Call `target` (a peer id) and wait for `accept`. Raises CallRejected on
        `reject`; after `wait_timeout` seconds cancels the call with `hangup` reason
        `timeout` and raises TimeoutError."""
        if target in self.calls:
            raise RuntimeError(f"already in a call with {target}")
        call = self._new_call(target, outgoing=True)
        self.calls[target] = call
        try:
            call.add_media(self.video, self.audio, self.video_size, self.video_fps)
            call.open_channel()
            await call.offer()
            async with asyncio.timeout(self.wait_timeout):
                await asyncio.shield(call.accepted)
        except TimeoutError:
            await call.hangup("timeout")
            raise
        except BaseException:
            await call.close("rejected")
            if call.end_reason == GLARE:  # they called us at the same moment, and we took theirs
                return await self._answered_instead(target)
            raise
        return call

    async def _answered_instead(self, target: str) -> Call:
        """The call from `target` we answered when both of us dialled at once."""
        async with asyncio.timeout(self.wait_timeout):
            call = await self.wait_for_call(target)
            await asyncio.shield(call.accepted)
        return call

    def _new_call(self, remote_id: str, outgoing: bool, call_id: str | None = None) -> Call:
        ice_servers = self.config.get("iceServers") or []
        polite = is_polite(self.id or "", remote_id)
        call = Call(remote_id, self.send, ice_servers, outgoing, self.wait_timeout, call_id, polite=polite)
        call.on_end = self._forget
        return call

    def _forget(self, call: Call) -> None:
        if self.calls.get(call.remote_id) is call:
            del self.calls[call.remote_id]
            self.ended_calls.append(call)

    async def _answer(self, source: str, data: Json) -> None:
        sdp = data.get("sdp")
        if not isinstance(sdp, str):
            return
        existing = self.calls.get(source)
        dialled = False  # both dialled at once, and ours yielded: theirs is answered at once
        if existing is not None:
            if not existing.connection.offering:  # renegotiation: answered without ringing
                await self._apply_offer(existing, sdp)
                return
            if existing.connection.ignores_offer() or existing.accepted.done():
                # Glare (docs/protocol.md §7): they yield and answer ours; or, in a live call,
                # we would yield, but aiortc cannot roll our renegotiation back.
                log.info("event=glare-ignored source=%s polite=%s", source, existing.connection.polite)
                return
            await existing.close(GLARE)  # their call instead of ours, as a browser does
            dialled = True
        call_id = data.get("call")
        in_my_call = call_id is not None and call_id == self.call_id and source in self.members
        # A member who joined offers to this peer: answered without ringing.
        if not (in_my_call or dialled) and (
            not self.auto_accept or any(not c.ended.is_set() for c in self.calls.values())
        ):
            reason = "declined" if not self.auto_accept else "busy"
            await self.send({"type": "reject", "data": {"target": source, "reason": reason}})
            return
        call = self._new_call(source, outgoing=False, call_id=call_id if in_my_call else None)
        self.calls[source] = call
        try:
            await self._apply_offer(call, sdp, first=True)
        except Exception:
            log.exception("event=answer-failed source=%s", source)
            await self.send({"type": "reject", "data": {"target": source, "reason": "error"}})
            await call.close("error")

    async def _apply_offer(self, call: Call, sdp: str, first: bool = False) -> None:
        if not await call.connection.receive_offer(sdp, answer=False):
            return
        if first:
            call.add_media(self.video, self.audio, self.video_size, self.video_fps)
        if call.pc.sctp is not None:  # an offer without a data channel gets none
            call.open_channel()
        if await call.connection.answer() and not call.accepted.done():
            call.accepted.set_result(None)

    # -- the reader -------------------------------------------------------------

    async def _peer_removed(self, peer_id: str) -> None:
        self.peers.pop(peer_id, None)
        await self.data.forget(peer_id)
        gone = self.calls.get(peer_id)
        if gone is not None:
            await gone.close("gone")

    async def _read(self) -> None:
        """Read the socket; when it drops without a word, reconnect (`reconnect`) and read
        on. The calls end only when this peer closes or cannot reconnect."""
        try:
            while True:
                ws = self._ws
                assert ws is not None
                await self._read_socket(ws)
                if self._closing or not self.reconnect or ws.close_code == CLOSE_REPLACED:
                    break
                if not await self._reconnect():
                    break
        finally:
            self._down = False
            for call in list(self.calls.values()):
                await call.close("server-gone")
            await self._notify()

    async def _read_socket(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            self.messages.append(message)
            try:
                await self._dispatch(message)
            except Exception:
                log.exception("event=peer-dispatch-failed type=%s", message.get("type"))
            await self._notify()

    async def _reconnect(self) -> bool:
        """The socket dropped (a server killed, a network change): try every URL in turn,
        the next one first, with the resume token, until one says `ready` or this peer is
        closed. Returns whether it is back."""
        self._down = True
        log.info("event=peer-reconnecting peer=%s from=%s", self.id, self.url)
        previous = self.id
        start = self.urls.index(self.url) + 1
        order = self.urls[start:] + self.urls[:start]
        attempt = 0
        while not self._closing:
            for url in order:
                if self._closing:
                    return False
                try:
                    ws = await self._open(url, resume=True)
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    log.debug("event=peer-reconnect-failed url=%s error=%s", url, exc)
                    continue
                if self._closing:
                    await ws.close()
                    return False
                self._ws, self.url, self._down = ws, url, False
                self.reconnects += 1
                log.info(
                    "event=peer-reconnected peer=%s url=%s resumed=%s", self.id, url, self.id == previous
                )
                if self.id != previous:
                    await self._lost_id()
                listed_from = len(self.messages)
                await self._identify()
                while self._queued and not ws.closed:
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str(self._queued.popleft())
                self._spawn(self._forget_unlisted(set(self.peers), listed_from))
                return True
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
        return False

    async def _lost_id(self) -> None:
        """Back under a new id (the grace period was over): everyone saw this peer leave,
        so its calls, links and peer list are over; the new list follows."""
        self.call_id, self.members = None, []
        for call in list(self.calls.values()):
            await call.close("resume-failed")
        await self.data.close_all()
        self.peers.clear()

    async def _forget_unlisted(self, before: set[str], listed_from: int) -> None:
        """After a reconnect the server lists everyone again; who is not listed within
        RELISTED_SECONDS left while the socket was down (as the browser's roster does)."""
        await asyncio.sleep(RELISTED_SECONDS)
        listed = {
            m["data"].get("id")
            for m in self.messages[listed_from:]
            if m.get("type") == "peer" and isinstance(m.get("data"), dict) and not m["data"].get("remove")
        }
        for peer_id in before - listed:
            if peer_id in self.peers:
                await self._peer_removed(peer_id)
        await self._notify()

    async def _dispatch(self, message: Json) -> None:
        kind = message.get("type")
        data = message.get("data")
        if kind == "ready":
            self.id = message.get("id")
            self.token = message.get("token")
            self.config = message.get("config") or {}
            return
        if not isinstance(data, dict):
            return
        if data.get("link") == "data":  # a data link, never a call (docs/protocol.md §9)
            await self.data.handle(str(kind), data)
            return
        source = data.get("source")
        if kind == "peer":
            if data.get("remove"):
                await self._peer_removed(data["id"])
            else:
                peer_kind = data.get("kind", "browser")
                self.peers[data["id"]] = PeerInfo(
                    data["id"], data["name"], peer_kind, bool(data.get("inCall"))
                )
        elif kind == "offer" and isinstance(source, str):
            await self._answer(source, data)
        elif kind == "accept" and isinstance(source, str):
            call = self.calls.get(source)
            sdp = data.get("sdp")
            answered = call is not None and isinstance(sdp, str) and await call.connection.receive_answer(sdp)
            if call is not None and answered and not call.accepted.done():
                call.accepted.set_result(None)
        elif kind in ("reject", "hangup") and isinstance(source, str):
            call = self.calls.get(source)
            if call is not None:
                reason = data.get("reason")
                if not call.accepted.done():
                    call.accepted.set_exception(CallRejected(reason))
                await call.close(f"{kind}:{reason}" if reason else kind)
        elif kind == "call":
            await self._on_call(data)
        elif kind == "invite":
            await self._on_invite(data)
        elif kind == "error":
            self.errors.append(data)
            if data.get("ref") == "join":
                self._joining = None
        elif kind == "icecandidate":
            call = self.calls.get(data.get("id", ""))
            if call is not None:
                try:
                    await call.connection.add_candidate(data.get("candidate"))
                except ValueError as exc:
                    log.info("event=bad-candidate peer=%s error=%s", data.get("id"), exc)


# --- command line ---------------------------------------------------------------------------


def _describe(peer: PythonPeer, remote: str) -> str:
    info = peer.peers.get(remote)
    return repr(info.name) if info is not None else remote


async def _report(peer: PythonPeer) -> None:
    """One line per link: who, frames and bytes received, and the last chat line."""
    for remote, call in list(peer.calls.items()):
        received, sent = await call.traffic()
        print(
            f"{_describe(peer, remote)}: {call.video_frames} video / {call.audio_frames} audio frames, "
            f"{received // 1024} KiB in, {sent // 1024} KiB out, chat {call.chat[-1:]}, "
            f"security code {call.code!r}"
        )
    if peer.call_id is not None:
        names = ", ".join(_describe(peer, m) for m in peer.members if m != peer.id)
        print(f"group call {peer.call_id}: {len(peer.members)} members (you and {names})")


async def run(args: argparse.Namespace) -> int:
    """What the command line does, in the caller's event loop (tests call it directly)."""
    context = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    width, height = args.video_size
    async with PythonPeer(
        args.url,
        args.name,
        ssl_context=context,
        audio=args.audio,
        auto_accept=args.answer,
        group=not args.no_group,
        join_when_invited=args.join_when_invited,
        video_size=(width, height),
        video_fps=args.fps,
        space=args.space,
        reconnect=not args.no_reconnect,
    ) as peer:
        if peer.space is None and peer.config.get("openSpace") is False:
            print("this server has no open network: join a space: --space CODE, the code someone gave you")
            return 2
        where = f" in space {peer.space}" if peer.space else ""
        print(f"connected as {args.name!r} id={peer.id} to {peer.url}{where}")
        peer.data.subscribe("message", _print_line)
        if args.receive:  # every file offered is accepted into this folder (protocol §9.2)
            FileReceiving(peer.data, Path(args.receive))
            print(f"receiving files into {args.receive}")
        if args.to:
            return await _message(peer, args)
        if not args.call:
            print("waiting for calls and invitations (Ctrl-C to stop)")
            while True:
                await asyncio.sleep(5)
                await _report(peer)
        target = await peer.wait_for_peer(args.call)
        try:
            call = await peer.call(target)
        except CallRejected as exc:
            print(exc)
            return 1
        print(f"in a call with {args.call!r}; security code: {await call.wait_for_code()}")
        if args.chat:
            await call.send_chat(args.chat)
        if args.invite:
            await peer.wait_for_members({peer.id or "", target})  # the call exists on the server
            for name in args.invite:
                await peer.invite(await peer.wait_for_peer(name))
                print(f"invited {name!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.ended.wait(), args.seconds)
        for line in call.chat:
            print(f"chat: {line}")
        for error in peer.errors:
            print(f"refused: {error.get('message')} ({error.get('code')})")
        await _report(peer)
    return 0


def _print_line(data: Any, link: Any) -> None:
    print(f"message from {link.name!r}: {data['text']}")


async def _message(peer: PythonPeer, args: argparse.Namespace) -> int:
    """--to NAME --message TEXT / --send FILE: send each line and each file over a data link
    (no call), say whether it arrived, then stay --seconds answering requests and printing
    lines received."""
    target = await peer.wait_for_peer(args.to)
    link = peer.data.peer(target)
    failed = 0
    for text in args.message:
        try:
            await link.send_message(text)
            print(f"delivered to {args.to!r}: {text}")
        except DataLinkError as exc:
            failed += 1
            print(f"not delivered to {args.to!r}: {exc.message}")
    for name in args.send:
        path = Path(name)
        try:
            await send_file(link, path, mime=mimetypes.guess_type(path.name)[0] or "")
            print(f"sent {path.name!r} to {args.to!r} (checked by SHA-256 on arrival)")
        except (TransferFailed, DataLinkError, OSError) as exc:
            failed += 1
            print(f"not sent to {args.to!r}: {path.name}: {getattr(exc, 'message', None) or exc}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), args.seconds)
    return 1 if failed else 0


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 160x120") from None
    if not all(16 <= n <= 4096 and n % 2 == 0 for n in size):
        raise argparse.ArgumentTypeError("width and height must be even, between 16 and 4096")
    return size


EPILOG = """group calls (docs/protocol.md §8):
  The peer says it can take part in group calls unless --no-group. Once in a call it
  offers to every member who was already there when it joined, answers the offers of
  members who join later, and keeps one connection per member.

  # a script that waits, joins any call it is invited to, and sends small video:
  python -m lancall_peer URL --ca certs/ca.pem --name Bot1 --join-when-invited \\
      --video-size 160x120 --fps 10
  # call Ann, then add Bot1 and Bot2 to the call; stay 30 s:
  python -m lancall_peer URL --ca certs/ca.pem --call Ann --invite Bot1 --invite Bot2 --seconds 30

messages outside calls (docs/protocol.md §9):
  # send Ann two lines over a data link (no call), then stay 10 s printing her replies:
  python -m lancall_peer URL --ca certs/ca.pem --to Ann --message "hello" \
      --message "the build is green" \
      --seconds 10
  Without --to the peer still answers data-link requests (ping, message) and prints lines it gets.

files (docs/protocol.md §9.2):
  # send Ann two files (she accepts or declines each in her browser):
  python -m lancall_peer URL --ca certs/ca.pem --to Ann --send photo.jpg --send notes.pdf
  # accept every file anyone sends, into ./incoming (checked by SHA-256 before it is kept):
  python -m lancall_peer URL --ca certs/ca.pem --name Inbox --receive incoming

spaces and several instances (docs/protocol.md §11; REDIS_URL):
  # a bot that only the people of space K7M2QX see, on either of two instances:
  python -m lancall_peer https://host1:3000/ https://host2:3000/ --ca certs/ca.pem \\
      --name Bot --answer --space K7M2QX
  If its instance goes away the peer resumes its id on the other one, and its calls
  carry on (their media never passes through the server).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lancall_peer",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url",
        nargs="+",
        help="the server, e.g. https://192.168.1.10:3000/; several instances sharing one Redis: "
        "the first that answers is used, and the others are tried in turn if it goes away",
    )
    parser.add_argument("--name", default="Python peer", help="display name")
    parser.add_argument(
        "--space",
        metavar="CODE",
        help="join the space with this code (docs/protocol.md §11) instead of the open network",
    )
    parser.add_argument(
        "--no-reconnect",
        action="store_true",
        help="end the calls and stop when the socket drops (default: reconnect and keep them)",
    )
    parser.add_argument("--ca", help="CA certificate to trust (the server's certs/ca.pem)")
    parser.add_argument("--insecure", action="store_true", help="skip certificate checks")
    parser.add_argument("--call", metavar="NAME", help="call the peer with this name")
    parser.add_argument(
        "--invite",
        metavar="NAME",
        action="append",
        default=[],
        help="once the call with --call is up, invite this peer to it (repeatable)",
    )
    parser.add_argument("--chat", help="chat line to send once connected")
    parser.add_argument(
        "--to", metavar="NAME", help="open a data link to this peer (no call) for --message (protocol §9)"
    )
    parser.add_argument(
        "--message", metavar="TEXT", action="append", default=[], help="a message line for --to (repeatable)"
    )
    parser.add_argument(
        "--send", metavar="FILE", action="append", default=[], help="a file to send to --to (repeatable)"
    )
    parser.add_argument("--receive", metavar="DIR", help="accept every file offered and save it in DIR")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to stay in the call")
    parser.add_argument("--audio", action="store_true", help="also send a 400 Hz tone")
    parser.add_argument("--answer", action="store_true", help="auto-accept incoming calls")
    parser.add_argument(
        "--join-when-invited",
        action="store_true",
        help="join a group call when invited (otherwise invitations are declined)",
    )
    parser.add_argument(
        "--no-group",
        action="store_true",
        help="do not take part in group calls (behave as an original-protocol client)",
    )
    parser.add_argument(
        "--video-size", type=_size, default=(320, 240), metavar="WxH", help="synthetic video size (320x240)"
    )
    parser.add_argument("--fps", type=float, default=30.0, help="synthetic video frame rate (30)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.message and not args.to:
        parser.error("--message needs --to: the person to send it to")
    if args.send and not args.to:
        parser.error("--send needs --to: the person to send the files to")
    for name in args.send:
        if not Path(name).is_file():
            parser.error(f"--send {name}: no such file")
    if args.to and args.call:
        parser.error("--to and --call are separate: a message needs no call")
    if args.invite and not args.call:
        parser.error("--invite needs --call: invitations are to the call it makes")
    if not 1 <= args.fps <= 60:
        parser.error("--fps must be between 1 and 60")
    if args.space is not None:
        try:
            args.space = space_code(args.space)
        except ValueError as exc:
            parser.error(f"--space: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
