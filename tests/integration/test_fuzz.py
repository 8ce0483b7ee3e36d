"""Property-based fuzzing of the signalling core over real TLS WebSockets: the checks of
tests/unit/test_fuzz_hub.py (see its docstring), with a live server and honest clients.
The attacker sends every client type but `leave` (tests/support/fuzzing.py: from the
server's own tables), including identifies that take it into a space and back; a separate
peer W sends the barriers, so they reach the watchers wherever the attacker is."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import protocol
from server.hub import Hub
from tests.support.fuzzing import (
    CLIENT_TYPES,
    Frame,
    JsonFrame,
    Ref,
    attacker_words,
    check_error,
    client_messages,
    frames,
    is_leave,
    stamped,
    strict_loads,
    well_formed,
    well_formed_name,
)

# --- (b) the same over real TLS WebSockets ---------------------------------------------------


def loads_deep(text: str) -> Any:
    """Parse a server frame of any depth it can produce (orjson: up to 1024 levels) without
    touching the recursion limit, which the hypothesis thread may be adjusting meanwhile."""
    try:
        return json.loads(text)
    except RecursionError:
        import orjson  # the server's own parser; only here, for frames too deep for `json`

        return orjson.loads(text)


class ClientClosed(AssertionError):
    pass


class WsClient:
    """Reads every frame in the background into `frames` (parsed JSON)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, label: str) -> None:
        self.ws = ws
        self.label = label
        self.frames: list[dict[str, Any]] = []
        self.strange: list[Any] = []  # non-JSON or binary frames from the server
        self.closed = False
        self.close_code: int | None = None
        self.id = ""
        self._changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.CLOSE:  # the code the server sent (aiohttp may
                    self.close_code = msg.data  # report 1006 after failing to answer it)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
                if msg.type is aiohttp.WSMsgType.TEXT:
                    try:
                        frame = loads_deep(msg.data)
                    except ValueError:
                        self.strange.append(msg.data)
                    else:
                        if isinstance(frame, dict) and isinstance(frame.get("type"), str):
                            self.frames.append(frame)
                        else:
                            self.strange.append(frame)
                else:
                    self.strange.append((msg.type, msg.data))
                self._notify()
        finally:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], start: int = 0, within: float = 5.0
    ) -> int:
        """Index of the first frame at or after `start` that satisfies `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        i = start
        while True:
            while i < len(self.frames):
                if predicate(self.frames[i]):
                    return i
                i += 1
            if self.closed:
                raise ClientClosed(
                    f"{self.label}: socket closed (code {self.close_code or self.ws.close_code})"
                )
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label}: timed out; frames since {start}: {self.frames[start:][:10]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))


def is_type(kind: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def predicate(frame: dict[str, Any]) -> bool:
        d = frame.get("data")
        return (
            frame.get("type") == kind and isinstance(d, dict) and all(d.get(k) == v for k, v in data.items())
        )

    return predicate


NET_ROLES = ("A", "B", "C", "X", "U")
# A attacker; B and C ping-pong honestly; X identified bystander the attacker may address;
# Y identified bystander it never names; U connected, never identified; W sends the barriers.
LISTED = ("B", "C", "X", "Y", "W")  # the open network, as the attacker finds it


@dataclass
class FuzzNet:
    session: aiohttp.ClientSession
    url: str
    hub: Hub
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    clients: dict[str, WsClient] = field(default_factory=dict)
    dead_attackers: set[str] = field(default_factory=set)
    crashes: list[str] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    rounds: int = 0
    examples: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    y_start: int = 0

    async def connect(self, label: str) -> WsClient:
        client = WsClient(await self.session.ws_connect(self.url), label)
        await client.wait_for(lambda f: f.get("type") == "ready")
        assert client.frames[0]["type"] == "ready"
        client.id = client.frames[0]["id"]
        return client

    async def join(self, label: str) -> WsClient:
        """Connect and identify; returns once every identified client has seen the join."""
        client = await self.connect(label)
        watchers = [c for lbl, c in self.clients.items() if lbl not in ("U",) and not c.closed]
        marks = {c.label: len(c.frames) for c in watchers}
        await client.send({"type": "identify", "data": {"id": client.id, "name": f"name of {label}"}})
        for c in watchers:
            await c.wait_for(is_type("peer", id=client.id), marks[c.label])
        self.clients[label] = client
        return client

    async def setup(self) -> None:
        self.clients["U"] = await self.connect("U")
        for label in ("B", "C", "X", "Y", "W", "A"):
            await self.join(label)
        self.y_start = len(self.clients["Y"].frames)

    def ids(self) -> dict[str, str]:
        return {label: c.id for label, c in self.clients.items()}

    def label_of(self, peer_id: Any) -> str | None:
        return next((lbl for lbl, c in self.clients.items() if c.id == peer_id), None)

    async def ping_pong(self) -> None:
        """B offers n to C, C accepts n to B, strictly alternating, until told to stop."""
        b, c = self.clients["B"], self.clients["C"]
        b_at = c_at = 0
        while not self.stop.is_set():
            sdp = f"v=0 honest {self.rounds}"
            await b.send({"type": "offer", "data": {"type": "offer", "sdp": sdp, "target": c.id}})
            c_at = await c.wait_for(is_type("offer", source=b.id, sdp=sdp), c_at) + 1
            await c.send({"type": "accept", "data": {"type": "answer", "sdp": sdp, "target": b.id}})
            b_at = await b.wait_for(is_type("accept", source=c.id, sdp=sdp), b_at) + 1
            self.rounds += 1
            await asyncio.sleep(0.002)

    async def replace_attacker(self) -> None:
        old = self.clients.pop("A")
        self.dead_attackers.add(old.id)
        await self.join("A")

    def attributable(self, receiver: WsClient, frame: dict[str, Any], current_barrier: str) -> bool:
        """Frames in a window that the attacker's last frame may have caused."""
        data: dict[str, Any] = frame["data"] if isinstance(frame.get("data"), dict) else {}
        honest_partner = {"B": ("accept", "C"), "C": ("offer", "B")}.get(receiver.label)
        if (
            honest_partner
            and frame["type"] == honest_partner[0]
            and data.get("source") == self.clients[honest_partner[1]].id
        ):
            return False  # the honest ping-pong, checked in order at the end
        if frame["type"] == "peer" and data.get("id") in self.dead_attackers:
            return False  # a crashed attacker's departure
        reason = data.get("reason")
        return not (isinstance(reason, str) and reason.endswith(self.nonce) and reason != current_barrier)

    def check_move(
        self,
        payload: str | bytes,
        replies: list[dict[str, Any]],
        windows: dict[str, list[dict[str, Any]]],
        a_name: str | None,
        a_space: str | None,
    ) -> None:
        """The attacker's identify took it to another space (docs/protocol.md §11): leaving
        the open network, it hears each listed peer go and they hear it go (under its old
        name); coming back, it learns who is here and they hear it come; between two codes,
        nobody else hears anything."""
        assert isinstance(payload, str)
        message = strict_loads(payload)
        assert message["type"] == "identify", (payload[:200], replies)
        peer = self.hub.peer(self.clients["A"].id)
        assert peer is not None and peer.name is not None
        well_formed_name(peer.name, message["data"].get("name"))
        assert peer.space == protocol.clean_space(message["data"].get("space"))
        a = {"id": peer.id, "kind": "browser"}
        if a_space is None:
            expected = [{"type": "peer", "data": {**a, "name": a_name, "remove": True}}]
            listing = {self.clients[lbl].id: True for lbl in LISTED}  # each goes, once
        elif peer.space is None:
            expected = [{"type": "peer", "data": {**a, "name": peer.name}}]
            listing = {self.clients[lbl].id: False for lbl in LISTED}  # each is listed, once
        else:
            expected, listing = [], {}
        assert all(window == expected for window in windows.values()), f"moved, yet {windows}"
        got: dict[str, bool] = {}
        for reply in replies:
            data = reply["data"]
            assert reply["type"] == "peer" and data["id"] not in got, replies
            assert data["name"] == f"name of {self.label_of(data['id'])}" and data["kind"] == "browser", reply
            assert set(data) <= {"id", "name", "kind", "remove", "inCall"}, reply
            got[data["id"]] = data.get("remove", False)
        assert got == listing, (replies, listing)
        self.outcomes["identify: moved"] += 1

    async def attack(self, frame: Frame) -> None:
        if self.clients["A"].closed:
            await self.replace_attacker()
        self.examples += 1
        a = self.clients["A"]
        watched = [self.clients[lbl] for lbl in ("B", "C", "X")]
        k = next(self.counter)
        payload = frame.render(self.ids())
        if is_leave(payload):  # it would end the attacker (the unit GroupWorld sends `leave`)
            return
        before = self.hub.peer(a.id)
        assert before is not None
        a_name, a_space = before.name, before.space
        marks = {c.label: len(c.frames) for c in watched}
        a_mark = len(a.frames)
        probe = f"probe-{k}-{self.nonce}"
        try:
            if isinstance(payload, bytes):
                await a.ws.send_bytes(payload)
            else:
                await a.ws.send_str(payload)
            await a.send({"type": probe})
            answered = await a.wait_for(is_type("error", ref=probe), a_mark)
        except (ClientClosed, ConnectionError) as exc:
            self.crashes.append(repr(payload)[:300])
            raise AssertionError(
                f"the server dropped the attacker (close code {a.close_code or a.ws.close_code}) "
                f"after {payload[:300]!r}"
            ) from exc
        replies = a.frames[a_mark:answered]
        barrier = f"barrier-{k}-{self.nonce}"
        w = self.clients["W"]
        for c in watched:
            await w.send({"type": "hangup", "data": {"target": c.id, "reason": barrier}})
        windows: dict[str, list[dict[str, Any]]] = {}
        for c in watched:
            end = await c.wait_for(is_type("hangup", source=w.id, reason=barrier), marks[c.label])
            windows[c.label] = [f for f in c.frames[marks[c.label] : end] if self.attributable(c, f, barrier)]

        peer = self.hub.peer(a.id)
        assert peer is not None and peer.name is not None
        if not (replies and replies[-1].get("type") == "error") and peer.space != a_space:
            self.check_move(payload, replies, windows, a_name, a_space)
            return
        assert len(replies) <= 1, f"more than one reply to one frame: {replies}"
        if replies and replies[0].get("type") == "pong":  # a liveness ping, answered to the sender only
            assert isinstance(payload, str)
            sent = strict_loads(payload)
            assert sent["type"] == "ping" and replies[0] == {
                "type": "pong",
                "data": {"t": sent["data"].get("t")},
            }
            assert all(w == [] for w in windows.values()), f"a ping reached others: {windows}"
            self.outcomes["ping"] += 1
            return
        if replies:
            code = check_error(replies[0], payload)
            self.outcomes[f"error {code}"] += 1
            assert all(w == [] for w in windows.values()), f"refused ({code}) yet delivered: {windows}"
            if code == "unknown-peer" and a_space is None:  # B, C, X, Y are in the open network
                assert isinstance(payload, str)
                target = strict_loads(payload)["data"]["target"]
                assert self.label_of(target) not in LISTED, "an identified peer is 'unknown'"
            return
        assert isinstance(payload, str), "a binary frame was accepted"
        message = strict_loads(payload)
        assert isinstance(message, dict) and message.get("type") in CLIENT_TYPES, payload[:200]
        data = message["data"]
        assert isinstance(data, dict)
        if message["type"] == "identify":
            well_formed_name(peer.name, data.get("name"))
            announcement = {"type": "peer", "data": {"id": a.id, "name": peer.name, "kind": "browser"}}
            got = list(windows.values())
            if peer.space is not None:  # a rename inside a space: the open network hears nothing
                assert got == [[]] * 3, f"a rename in a space reached the open network: {windows}"
            else:
                assert got in ([[]] * 3, [[announcement]] * 3), f"identify announced as {windows}"
            self.outcomes["identify"] += 1
            return
        target = self.label_of(data.get("target"))
        assert target in ("B", "C", "X") and a_space is None, f"relay accepted for {target}: {payload[:200]}"
        expected = stamped(message["type"], data, a.id)
        for label, window in windows.items():
            assert window == ([expected] if label == target else []), (
                f"{label} got {window}, expected {expected}"
            )
        self.outcomes[f"relayed {message['type']}"] += 1


async def test_fuzzed_client_over_tls_never_crashes_misroutes_or_disturbs(
    start_server: Any, client_ssl: Any
) -> None:
    live = await start_server(
        resume_grace=0.0,
        rate_limit=1e6,
        rate_burst=10**6,
        address_rate_limit=0,
        rename_rate=0,
        join_rate=0,
        new_space_rate=0,  # the attacker goes in and out of spaces far more than a person would
    )
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(ssl=client_ssl, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        net = FuzzNet(session, live.ws_url, live.hub)
        await net.setup()
        pinger = asyncio.create_task(net.ping_pong())

        def run(coro: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            try:
                future.result(timeout=30)
            except TimeoutError:
                future.cancel()
                raise

        refs = st.sampled_from([Ref(role) for role in NET_ROLES])
        every_type = st.builds(JsonFrame, client_messages(attacker_words(refs), CLIENT_TYPES - {"leave"}))
        identify = st.builds(JsonFrame, well_formed("identify", attacker_words(refs)))  # spaces and back

        # Mostly junk and near misses as before, then every type, then identifies (one_of
        # would flatten `frames` into its own branches and weigh them one each).
        weighted = [frames(NET_ROLES)] * 4 + [every_type, identify]

        @settings(
            max_examples=400,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=st.sampled_from(weighted).flatmap(lambda strategy: strategy))
        def attacker_sends(frame: Frame) -> None:
            run(net.attack(frame))

        try:
            await asyncio.to_thread(attacker_sends)  # hypothesis in a thread; sockets on this loop
        finally:
            net.stop.set()
            await asyncio.wait_for(pinger, 10)

        assert not net.crashes, f"the server dropped the attacker after: {net.crashes}"
        b, c, x, y, u = (net.clients[lbl] for lbl in ("B", "C", "X", "Y", "U"))
        assert net.outcomes["identify: moved"] >= 3, net.outcomes  # spaces were fuzzed too
        # The honest ping-pong: every message exactly once, in order, stamped, unchanged.
        assert net.rounds > 20, f"the honest relay stalled: {net.rounds} rounds"
        offers = [f["data"] for f in c.frames if f["type"] == "offer" and f["data"].get("source") == b.id]
        accepts = [f["data"] for f in b.frames if f["type"] == "accept" and f["data"].get("source") == c.id]
        want = [f"v=0 honest {i}" for i in range(net.rounds)]
        assert offers == [{"type": "offer", "sdp": s, "target": c.id, "source": b.id} for s in want]
        assert accepts == [{"type": "answer", "sdp": s, "target": b.id, "source": c.id} for s in want]
        # Y was never addressed: it only ever hears about the attacker's name.
        attackers = net.dead_attackers | {net.clients["A"].id}
        heard = y.frames[net.y_start :]
        assert all(f["type"] == "peer" and f["data"]["id"] in attackers for f in heard), heard
        # U never identified: nothing after `ready`, ever.
        assert [f["type"] for f in u.frames] == ["ready"]
        for client in net.clients.values():
            assert not client.strange, f"{client.label} got non-protocol frames: {client.strange[:5]}"
        # X got nothing after the last barrier it saw.
        last = max(i for i, f in enumerate(x.frames) if f["type"] == "hangup")
        assert x.frames[last + 1 :] == []
        # The server still answers, and the attacker is still one of seven live sockets.
        assert live.hub.connections == 7
        probe = net.clients["A"]
        mark = len(probe.frames)
        await probe.send("not json")
        await probe.wait_for(is_type("error", code="bad-json"), mark)
        relayed = sum(n for outcome, n in net.outcomes.items() if outcome.startswith("relayed"))
        assert relayed >= 10 and net.outcomes["identify"] >= 3, net.outcomes  # not vacuous
        print(
            f"\nfuzz over TLS: {net.examples} frames, {net.rounds} honest round trips, {dict(net.outcomes)}"
        )
        for client in net.clients.values():
            await client.ws.close()
