"""A malicious signalling path, for tests only (never imported by the server).

It sits on each page's /rtc WebSocket (Playwright's `route_web_socket`), so to the pages it
*is* the server: everything passes through unchanged until `intercept(caller_id,
callee_id)`. From then on the caller's offer to the callee never reaches the callee.
Instead its own aiortc peer answers the caller as if it were the callee, and a second
aiortc peer calls the callee as if it were the caller: two DTLS sessions, each with the
attacker's certificate, so every `a=fingerprint` the victims receive is rewritten to the
attacker's. Media that arrives on one side is relayed to the other, as a real eavesdropper
would. Candidates the victims trickle go to the attacker's peers; other relays (ringing,
hangup) pass as they are.

The security code (docs/verification.md): on each leg the attacker runs the exchange with
its best strategy, the same nonce on both legs; each victim's code is then fixed by that
victim's own nonce, so the two codes differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from playwright.async_api import Page, WebSocketRoute

from server.verification import EXCHANGE_TYPES, CodeExchange, sdp_fingerprint
from server.webrtc import CHAT_CHANNEL_ID, CHAT_LABEL, RemoteCandidates, rtc_configuration

Json = dict[str, Any]


class SignallingMitm:
    def __init__(self) -> None:
        self.routes: dict[str, WebSocketRoute] = {}  # peer id -> the page's socket, once `ready` was seen
        self.pending: list[WebSocketRoute] = []
        self.target: tuple[str, str] | None = None  # (caller id, callee id) to sit between
        self.to_caller: RTCPeerConnection | None = None  # answers the caller, posing as the callee
        self.to_callee: RTCPeerConnection | None = None  # calls the callee, posing as the caller
        self.candidates: dict[str, RemoteCandidates] = {}
        self.relay = MediaRelay()
        self.tasks: set[asyncio.Task[None]] = set()
        self.fingerprints: list[str] = []  # the attacker's, as the victims receive them
        self.errors: list[str] = []
        self.nonce = CodeExchange(":".join(["00"] * 32)).nonce  # the one she uses on both legs

    async def attach(self, page: Page) -> None:
        """Route this page's signalling socket through the attacker (use as `before_load`)."""
        await page.route_web_socket(re.compile(r"/rtc"), self._route)

    def intercept(self, caller: str, callee: str) -> None:
        self.target = (caller, callee)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in (self.to_caller, self.to_callee):
            if pc is not None:
                await pc.close()

    # --- the socket ------------------------------------------------------------------------

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        owner: list[str] = []

        def from_page(message: str | bytes) -> None:
            if not isinstance(message, str) or not self._swallowed(owner[0] if owner else "", message):
                server.send(message)

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and not owner:
                with contextlib.suppress(ValueError, AttributeError):
                    frame = json.loads(message)
                    if frame.get("type") == "ready":
                        owner.append(frame["id"])
                        self.routes[frame["id"]] = ws
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    def _swallowed(self, sender: str, text: str) -> bool:
        """Whether the attacker takes this frame from `sender` instead of relaying it."""
        if self.target is None:
            return False
        try:
            frame = json.loads(text)
        except ValueError:
            return False
        kind, data = frame.get("type"), frame.get("data") or {}
        if not isinstance(data, dict) or data.get("link"):
            return False
        caller, callee = self.target
        if sender == caller and data.get("target") == callee and kind in ("offer", "icecandidate"):
            self._spawn(self._caller_offer(data) if kind == "offer" else self._candidate(caller, data))
            return True
        if sender == callee and data.get("target") == caller and kind in ("accept", "icecandidate"):
            self._spawn(self._callee_answer(data) if kind == "accept" else self._candidate(callee, data))
            return True
        return False

    def _spawn(self, coro: Any) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:  # a failing attacker must fail the test loudly, not hang it
                self.errors.append(repr(exc))

        task = asyncio.create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _inject(self, to: str, frame: Json) -> None:
        self.routes[to].send(json.dumps(frame))

    # --- the two peer connections ----------------------------------------------------------

    async def _caller_offer(self, data: Json) -> None:
        assert self.target is not None
        caller, callee = self.target
        to_caller = self.to_caller = RTCPeerConnection(rtc_configuration([]))
        to_callee = self.to_callee = RTCPeerConnection(rtc_configuration([]))
        self.candidates = {caller: RemoteCandidates(to_caller), callee: RemoteCandidates(to_callee)}
        outgoing = {
            kind: to_callee.addTransceiver(kind, direction="sendrecv").sender for kind in ("audio", "video")
        }
        incoming = {
            kind: to_caller.addTransceiver(kind, direction="sendrecv").sender for kind in ("audio", "video")
        }
        # Whatever either victim sends, the other gets: a listening relay.
        to_caller.on("track", lambda track: outgoing[track.kind].replaceTrack(self.relay.subscribe(track)))
        to_callee.on("track", lambda track: incoming[track.kind].replaceTrack(self.relay.subscribe(track)))
        channels = [
            pc.createDataChannel(CHAT_LABEL, negotiated=True, id=CHAT_CHANNEL_ID)
            for pc in (to_caller, to_callee)
        ]
        for pc, channel in zip((to_caller, to_callee), channels, strict=True):
            self._speak_codes(pc, channel)
        await to_caller.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        await self.candidates[caller].flush()
        offer = await to_callee.createOffer()
        await to_callee.setLocalDescription(offer)
        sdp = to_callee.localDescription.sdp
        self.fingerprints.append(sdp_fingerprint(sdp) or "")
        self._inject(
            callee,
            {"type": "offer", "data": {"type": "offer", "sdp": sdp, "source": caller, "target": callee}},
        )

    def _speak_codes(self, pc: RTCPeerConnection, channel: Any) -> None:
        """The code exchange on one leg (see the module's note)."""
        state: dict[str, CodeExchange] = {}

        def exchange() -> CodeExchange | None:
            if "it" not in state and pc.localDescription is not None:
                local = sdp_fingerprint(pc.localDescription.sdp)
                if local is not None:
                    state["it"] = CodeExchange(local)
                    state["it"].nonce = self.nonce  # one nonce for both legs: her best try
            return state.get("it")

        def send(messages: list[dict[str, str]]) -> None:
            for message in messages:
                channel.send(json.dumps(message))

        def on_open() -> None:
            if (it := exchange()) is not None:
                send(it.start())

        def on_message(message: str | bytes) -> None:
            data = json.loads(message) if isinstance(message, str) else None
            if not isinstance(data, dict) or data.get("type") not in EXCHANGE_TYPES:
                return
            if (it := exchange()) is not None and pc.remoteDescription is not None:
                send(it.receive(data["type"], data.get("data"), sdp_fingerprint(pc.remoteDescription.sdp)))

        channel.on("open", on_open)
        channel.on("message", on_message)

    async def _callee_answer(self, data: Json) -> None:
        assert self.target is not None and self.to_caller is not None and self.to_callee is not None
        caller, callee = self.target
        await self.to_callee.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        await self.candidates[callee].flush()
        answer = await self.to_caller.createAnswer()
        await self.to_caller.setLocalDescription(answer)
        sdp = self.to_caller.localDescription.sdp
        self.fingerprints.append(sdp_fingerprint(sdp) or "")
        self._inject(
            caller,
            {"type": "accept", "data": {"type": "answer", "sdp": sdp, "source": callee, "target": caller}},
        )

    async def _candidate(self, sender: str, data: Json) -> None:
        remote = self.candidates.get(sender)
        if remote is not None:
            with contextlib.suppress(ValueError):
                await remote.add(data.get("candidate"))
