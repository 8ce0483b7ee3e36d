"""Churn (issue 3, "Tests that must exist"): a few hundred clients over real TLS WebSockets
join, rename, relay to random peers and leave, all at once, for several seconds.

Every client keeps its peer list purely from the `peer` messages it receives. Once quiet:

* every connected client's list (ids and names) equals the server's truth,
  `hub.listed()` minus itself, and that truth is exactly the connected clients;
* no relay was lost or misdelivered: each carries a unique sequence number and its
  intended target; it arrived exactly once, at that target, stamped with the right
  source, unchanged; or its target had left: the sender got `unknown-peer` for it, or
  (only in the instant the target's socket was closing) it vanished. Per sender and
  target, outcomes are ordered: delivered*, vanished*, unknown-peer*.

An `accept` answers an offer the client received (the server refuses any other, issue 18:
`not-invited`, counted apart and never delivered); one whose offer was withdrawn in the
meantime (a hang-up crossing it, or the pair's call ending) is refused the same way.

Each relay is followed by a probe (an unknown `type`, whose `unknown-type` error echoes
it as `ref`), so every `unknown-peer` error is attributed to exactly one relay.
The schedule is seeded; the checks are invariants that hold whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import random
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.liveserver import StartServer

SEED = 20240611
INITIAL = 200  # clients there from the start (staggered over the first second)
LATE = 60  # clients joining during the churn
LEAVE_SHARE = 0.35  # clients that leave before the end
CHURN_SECONDS = 5.0
RENAME_SHARE = 0.04  # of a client's actions; the rest are relays
ACTION_GAP = (0.05, 0.35)  # seconds between a client's actions
RELAY_TYPES = ("offer", "accept", "reject", "icecandidate", "hangup")
PROBE = re.compile(r"probe-(-?\d+)")


@dataclass
class Sent:
    seq: int
    sender: str
    target: str
    kind: str
    data: dict[str, Any]
    outcome: str = "pending"  # "accepted" (no error came back), "unknown-peer" or "not-invited"
    received: int = 0


@dataclass
class World:
    session: aiohttp.ClientSession
    url: str
    t0: float = 0.0
    seqs: itertools.count[int] = field(default_factory=itertools.count)
    flushes: itertools.count[int] = field(default_factory=lambda: itertools.count(-1, -1))
    sent: dict[int, Sent] = field(default_factory=dict)
    last_frame: float = 0.0


SEQ = re.compile(r"seq (\d+)")


def seq_of(data: dict[str, Any]) -> int:
    """The sequence number a relay carries in its sdp, reason or candidate."""
    found = SEQ.search(json.dumps(data))
    return int(found.group(1)) if found else -1


class Churner:
    def __init__(self, world: World, index: int, start_at: float, leave_at: float | None) -> None:
        self.world = world
        self.index = index
        self.rng = random.Random(SEED * 1000 + index)
        self.start_at = start_at
        self.leave_at = leave_at
        # The whole schedule is drawn up front, so the amount of work does not depend on
        # how fast this machine happens to be: a slow run takes longer, not less.
        self.actions: list[tuple[float, str]] = []
        t, stop_at = start_at + 0.2, leave_at if leave_at is not None else CHURN_SECONDS
        while (t := t + self.rng.uniform(*ACTION_GAP)) < stop_at:
            self.actions.append((t, "rename" if self.rng.random() < RENAME_SHARE else "relay"))
        self.name = f"client {index} 🎧"
        self.renames = 0
        self.id = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.view: dict[str, str] = {}  # peer id -> name, from `peer` messages only
        self.received: list[dict[str, Any]] = []  # relayed `data` objects, in arrival order
        self.outstanding: collections.deque[int] = collections.deque()  # sent, probe not yet answered
        self.idle = asyncio.Event()
        self.idle.set()
        self.problems: list[str] = []
        self.left = False
        self.has_peers = asyncio.Event()
        self.offered_me: dict[str, None] = {}  # who sent an offer not yet answered, oldest first

    # --- the reading side --------------------------------------------------------------

    async def read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            self.world.last_frame = time.monotonic()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                self.problems.append(f"non-text frame {msg.type} {msg.data!r}")
                continue
            frame = json.loads(msg.data)
            kind, data = frame.get("type"), frame.get("data")
            if kind == "ready":
                if self.id:
                    self.problems.append("a second ready")
                self.id = frame["id"]
                self.ready.set()
            elif kind == "peer":
                self.on_peer(data)
            elif kind in RELAY_TYPES:
                self.received.append(data)
                if kind == "offer":
                    self.offered_me[data["source"]] = None
                elif kind == "hangup":
                    self.offered_me.pop(data["source"], None)
            elif kind == "error":
                self.on_error(data)
            else:
                self.problems.append(f"unexpected frame {frame}")

    def on_peer(self, data: dict[str, Any]) -> None:
        if data["id"] == self.id:
            self.problems.append(f"told about itself: {data}")
        if data.get("remove"):
            if self.view.pop(data["id"], None) is None:
                self.problems.append(f"removal of a peer it never had: {data}")
        else:
            self.view[data["id"]] = data["name"]
        if self.view:
            self.has_peers.set()
        else:
            self.has_peers.clear()

    def on_error(self, data: dict[str, Any]) -> None:
        code, ref = data.get("code"), data.get("ref") or ""
        probe = PROBE.fullmatch(ref)
        if code == "unknown-type" and probe:
            seq = int(probe.group(1))
            head = self.outstanding.popleft() if self.outstanding else None
            if head != seq:
                self.problems.append(f"probe {seq} answered while {head} was outstanding")
            if seq >= 0 and self.world.sent[seq].outcome == "pending":
                self.world.sent[seq].outcome = "accepted"
            if not self.outstanding:
                self.idle.set()
        elif code == "not-invited" and ref == "accept" and self.outstanding and self.outstanding[0] >= 0:
            sent = self.world.sent[self.outstanding[0]]
            if sent.outcome != "pending" or sent.kind != "accept":
                self.problems.append(f"not-invited {data} for {sent}")
            sent.outcome = "not-invited"
        elif code == "unknown-peer" and self.outstanding and self.outstanding[0] >= 0:
            sent = self.world.sent[self.outstanding[0]]
            if sent.outcome != "pending" or ref != sent.kind:
                self.problems.append(f"unknown-peer {data} for {sent}")
            sent.outcome = "unknown-peer"
        else:
            self.problems.append(f"unexpected error {data} (outstanding {list(self.outstanding)[:3]})")

    # --- the acting side ----------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(message))

    async def probe(self, seq: int) -> None:
        """Marks the end of message `seq`: its `unknown-type` answer comes after any error
        the message itself caused. Registered before sending, as replies may come at once."""
        self.outstanding.append(seq)
        self.idle.clear()
        await self.send({"type": f"probe-{seq}"})

    async def identify(self) -> None:
        await self.send({"type": "identify", "data": {"id": self.id, "name": self.name}})

    async def relay(self) -> None:
        target = self.rng.choice(sorted(self.view))
        kind = self.rng.choice(RELAY_TYPES)
        offers = [peer for peer in self.offered_me if peer in self.view]
        if kind == "accept" and not offers:
            kind = "offer"  # nothing to answer: an answer out of nothing is refused
        elif kind == "accept" or (kind == "reject" and offers and self.rng.random() < 0.5):
            target = offers[0]
        if kind in ("accept", "reject"):
            self.offered_me.pop(target, None)
        seq = next(self.world.seqs)
        body: dict[str, Any] = {
            "offer": {"type": "offer", "sdp": f"v=0 seq {seq}"},
            "accept": {"type": "answer", "sdp": f"v=0 seq {seq}"},
            "reject": {"reason": f"busy seq {seq}"},
            "hangup": {"reason": f"timeout seq {seq}"},
            "icecandidate": {
                "candidate": {
                    "candidate": f"candidate:{seq} 1 udp 1 192.0.2.1 9 typ host seq {seq}",
                    "sdpMid": "0",
                    "sdpMLineIndex": 0,
                }
            },
        }[kind]
        # The sequence number rides in a field the server forwards (it drops unknown ones).
        data = {**body, "target": target}
        self.world.sent[seq] = Sent(seq, self.id, target, kind, data)
        self.outstanding.append(seq)
        self.idle.clear()
        await self.send({"type": kind, "data": data})
        await self.send({"type": f"probe-{seq}"})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self.world.t0 + self.start_at - loop.time()))
        self.ws = await self.world.session.ws_connect(self.world.url)
        self.reader = asyncio.create_task(self.read())
        await asyncio.wait_for(self.ready.wait(), 60)
        await self.identify()
        for at, action in self.actions:
            await asyncio.sleep(max(0.0, self.world.t0 + at - loop.time()))
            if action == "rename":
                self.renames += 1
                self.name = f"client {self.index} 🎧 take {self.renames}"
                await self.identify()
            else:
                if not self.view:  # still joining on a slow machine: give the list a moment
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.has_peers.wait(), 1.0)
                if self.view:
                    await self.relay()
        if self.leave_at is not None:
            await self.leave()

    async def leave(self) -> None:
        """Close from our side but keep reading until the server's close frame, so that
        everything the server sent before it processed our close is counted as received
        (aiohttp's own `close()` would discard those frames)."""
        await asyncio.sleep(
            max(0.0, self.world.t0 + (self.leave_at or 0) - asyncio.get_running_loop().time())
        )
        assert self.ws is not None and self.reader is not None
        await self.ws.send_frame(struct.pack("!H", 1000), aiohttp.WSMsgType.CLOSE)
        await asyncio.wait_for(self.reader, 60)
        self.left = True

    async def flush(self) -> None:
        """Returns once the server has processed everything this client sent, and this
        client has read everything the server wrote to it before that."""
        await self.probe(next(self.world.flushes))
        await asyncio.wait_for(self.idle.wait(), 60)


async def test_churn_peer_lists_and_relays_stay_exact(start_server: StartServer, client_ssl: Any) -> None:
    started = time.monotonic()
    live = await start_server(
        resume_grace=0.0,
        rate_limit=1e6,
        rate_burst=10**6,
        address_rate_limit=0,  # every client is on 127.0.0.1
        rename_rate=0,
        join_rate=0,
        max_clients=INITIAL + LATE + 50,
        heartbeat=60.0,
    )
    plan = random.Random(SEED)
    connector = aiohttp.TCPConnector(ssl=client_ssl, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        world = World(session, live.ws_url)
        clients = []
        for index in range(INITIAL + LATE):
            start_at = plan.uniform(0.0, 1.0) if index < INITIAL else plan.uniform(1.0, CHURN_SECONDS - 1.0)
            leaves = plan.random() < LEAVE_SHARE
            leave_at = plan.uniform(start_at + 0.5, CHURN_SECONDS) if leaves else None
            clients.append(Churner(world, index, start_at, leave_at))
        world.t0 = asyncio.get_running_loop().time() + 0.1
        await asyncio.wait_for(asyncio.gather(*(c.run() for c in clients)), CHURN_SECONDS + 120)
        churned = time.monotonic()

        stayers = [c for c in clients if c.leave_at is None]
        leavers = [c for c in clients if c.leave_at is not None]
        assert all(c.left for c in leavers)
        # Quiet: every relay processed and answered, every leave announced, nothing in flight.
        await asyncio.wait_for(asyncio.gather(*(c.idle.wait() for c in stayers)), 60)
        for _ in range(300):
            if live.hub.connections == len(stayers) and time.monotonic() - world.last_frame > 0.3:
                break
            await asyncio.sleep(0.05)
        await asyncio.gather(*(c.flush() for c in stayers))

        problems = [f"client {c.index}: {p}" for c in clients for p in c.problems]
        assert not problems, problems[:20]

        # 1. Peer lists equal the server's truth, which is exactly the connected clients.
        truth = {p.id: p.name for p in live.hub.listed()}
        assert truth == {c.id: c.name for c in stayers}
        assert live.hub.connections == len(stayers)
        wrong = []
        for c in stayers:
            expected = {i: n for i, n in truth.items() if i != c.id}
            if c.view != expected:
                missing = sorted(set(expected.items()) - set(c.view.items()))
                extra = sorted(set(c.view.items()) - set(expected.items()))
                wrong.append(f"client {c.index}: missing {missing[:3]}, extra {extra[:3]}")
        assert not wrong, f"{len(wrong)} clients have a wrong peer list: {wrong[:3]}"

        # 2. Every relay arrived exactly once, at its target, stamped, unchanged.
        by_id = {c.id: c for c in clients}
        for client in clients:
            for data in client.received:
                sent = world.sent.get(seq_of(data))
                assert sent is not None, f"client {client.index} got a relay nobody sent: {data}"
                expected = {**sent.data, "source": sent.sender}
                if sent.kind == "icecandidate":
                    expected["id"] = sent.sender
                assert client.id == sent.target and data == expected, (
                    f"relay {sent.seq} for {sent.target} from {sent.sender} reached {client.id}: {data}"
                )
                sent.received += 1
        duplicated = [s for s in world.sent.values() if s.received > 1]
        assert not duplicated, f"delivered more than once: {duplicated[:5]}"
        pending = [s for s in world.sent.values() if s.outcome == "pending"]
        assert not pending, f"relays the server never answered for: {pending[:5]}"
        refused_yet_delivered = [
            s for s in world.sent.values() if s.outcome in ("unknown-peer", "not-invited") and s.received
        ]
        assert not refused_yet_delivered, refused_yet_delivered[:5]

        # 3. A relay not delivered is one whose target left, and per (sender, target) the
        #    outcomes are ordered: delivered, then vanished while it was closing, then unknown-peer.
        outcomes: dict[tuple[str, str], str] = collections.defaultdict(str)
        for seq in sorted(world.sent):
            s = world.sent[seq]
            if s.outcome == "not-invited":
                continue  # refused at once for what it was, whoever is there
            outcomes[s.sender, s.target] += "D" if s.received else ("V" if s.outcome == "accepted" else "E")
        for (sender, target), trace in outcomes.items():
            assert re.fullmatch("D*V*E*", trace), f"{sender} -> {target}: {trace}"
            if "V" in trace or "E" in trace:
                assert by_id[target].leave_at is not None, f"{sender} -> {target} (never left): {trace}"

        counts = collections.Counter(
            "delivered" if s.received else ("vanished" if s.outcome == "accepted" else s.outcome)
            for s in world.sent.values()
        )
        answers = collections.Counter(
            s.outcome if not s.received else "delivered" for s in world.sent.values() if s.kind == "accept"
        )
        assert answers["delivered"] >= 5 * answers["not-invited"], answers  # answers mostly answer something
        total = len(world.sent)
        renames = sum(c.renames for c in clients)
        planned = sum(action == "relay" for c in clients for _, action in c.actions)
        # The run did what it claims: hundreds of clients, real churn, real traffic.
        assert len(leavers) >= 50 and renames >= 50 and total >= max(2000, 0.6 * planned), (
            len(leavers), renames, total, planned
        )  # fmt: skip
        print(
            f"\nchurn: {len(clients)} clients ({len(leavers)} left, {renames} renames), "
            f"{total} relays {dict(counts)}; churn {churned - started:.1f}s, "
            f"total {time.monotonic() - started:.1f}s"
        )
        await asyncio.gather(*(c.ws.close() for c in stayers if c.ws is not None))
