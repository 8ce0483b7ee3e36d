"""Property-based fuzzing of the signalling core, the hub itself (issue 3, "Tests that must exist";
the same over real TLS: tests/integration/test_fuzz.py).

One attacker peer sends arbitrary input: JSON values of every shape, objects shaped like
real messages with random field types and targets (real peer ids included), broken JSON,
deep nesting, arbitrary text and binary frames. Whatever it sends:

* the hub never raises and the socket server keeps answering;
* nothing reaches anyone but the attacker itself (errors) or the exact target it
  addressed, and only if that target is identified (an `identify` may also announce
  the attacker's own name, which is the protocol);
* every relayed frame is the attacker's `data` unchanged except `source` (and `id` on
  `icecandidate`) stamped with the attacker's real id, and `target`;
* every error is a well-formed `error` with a code from docs/protocol.md §3;
* relays between two honest peers interleaved with the attack arrive exactly once, in
  order, unchanged apart from stamping.

The checks are model-free: the attacker's own replies say whether a frame was refused
(one `error`, then nothing may have been delivered anywhere) or accepted (then it must be
strict JSON of a client type, and exactly the addressed peer got exactly the stamped copy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.hub import CLOSE_POLICY, PENDING_LIMIT, Hub, HubLimits, Outbox, Peer
from tests.support.fuzzing import (
    CLIENT_TYPES,
    GENEROUS,
    DeepFrame,
    Frame,
    JsonFrame,
    Ref,
    check_error,
    frames,
    group_and_data_messages,
    note,
    stamped,
    strict_loads,
    well_formed_name,
)

# --- (a) the hub itself, with fake connections and a fake clock ----------------------------


class FakeConn:
    def __init__(self, label: str) -> None:
        self.label = label

    def send(self, text: str) -> None:  # pragma: no cover - the hub never sends
        raise AssertionError("the hub returns frames; it never sends them itself")

    def close(self, code: int, reason: str) -> None:  # pragma: no cover
        raise AssertionError("the hub returns closes; it never closes by itself")

    def take_unsent(self) -> list[str]:
        return []  # everything "sent" to a fake connection was written

    def __repr__(self) -> str:
        return f"<conn {self.label}>"


UNIT_ROLES = ("A", "B", "C", "D", "U", "G", "R")
# A attacker; B, C, D identified and connected; U connected, never identified;
# G identified, socket gone (grace period: relays to it are queued); R left for good.


@dataclass
class Snapshot:
    a_name: str | None
    a_listed: bool
    pending: list[str]


class HubWorld:
    def __init__(self, limits: HubLimits, attacker_identified: bool, rich: bool = False) -> None:
        """`rich`: B and D speak group calls and data links (docs/protocol.md §8, §9)."""
        self.now = 1000.0
        self.hub = Hub(limits, "test-version", {"iceServers": []}, lambda: self.now)
        self.conns: dict[str, FakeConn] = {}
        self.peers: dict[str, Peer] = {}
        for role in UNIT_ROLES:
            conn = FakeConn(role)
            peer, out, resumed = self.hub.connect(conn)
            assert not resumed and [c for c, _ in out.sends] == [peer.id]
            self.conns[role], self.peers[role] = conn, peer
        self.ids = {role: peer.id for role, peer in self.peers.items()}
        self.tokens = {role: peer.token for role, peer in self.peers.items()}
        self.names: dict[str, str] = {}
        for role in ("R", "B", "C", "D", "G", *(["A"] if attacker_identified else [])):
            self.names[role] = f"name of {role}"
            data: dict[str, Any] = {"name": self.names[role]}
            if rich and role in ("B", "D"):
                data["caps"] = ["group", "data"]
            out = self.hub.receive(self.peers[role], json.dumps({"type": "identify", "data": data}))
            assert all(json.loads(t)["type"] == "peer" for _, t in out.sends) and not out.closes
        self.hub.disconnect(self.peers["R"], self.conns["R"])
        self.now += limits.resume_grace + 1
        self.hub.expire()
        assert self.hub.peer(self.ids["R"]) is None
        del self.names["R"]
        assert not self.hub.disconnect(self.peers["G"], self.conns["G"])
        self.role_of_conn = {id(conn): role for role, conn in self.conns.items()}
        self.role_of_id = {peer_id: role for role, peer_id in self.ids.items()}
        self.for_g: list[dict[str, Any]] = []  # what G must get on resume
        self.honest_rounds = 0

    @property
    def attacker(self) -> Peer:
        return self.peers["A"]

    def snapshot(self) -> Snapshot:
        a = self.attacker
        return Snapshot(a.name, a.listed_on_socket, list(self.peers["G"].pending))

    def decode_sends(self, out: Outbox) -> list[tuple[str, Any]]:
        sends = []
        for peer_id, text in out.sends:
            role = self.role_of_id.get(peer_id)
            assert role is not None and self.hub.connection(peer_id) is self.conns[role], (
                f"frame to a peer the hub never had: {peer_id}"
            )
            assert role in ("A", "B", "C", "D"), (
                f"frame to {role}, which has no live identified socket: {text}"
            )
            for owner, token in self.tokens.items():
                assert token not in text, f"{owner}'s resume token leaked to {role}"
            sends.append((role, strict_loads(text)))
        return sends

    def attack(self, frame: Frame, throttled_ok: bool = False) -> bool:
        """Send one attacker frame and check what the hub does with it. True if it asked to
        close the attacker's socket (rate limit)."""
        payload = frame.render(self.ids)
        snap = self.snapshot()
        if isinstance(payload, bytes):
            out = self.hub.receive_binary(self.attacker)
        else:
            out = self.hub.receive(self.attacker, payload)
        closed = self.check(payload, out, snap, throttled_ok)
        self.check_invariants()
        return closed

    def check(self, payload: str | bytes, out: Outbox, snap: Snapshot, throttled_ok: bool) -> bool:
        a, g = self.attacker, self.peers["G"]
        sends = self.decode_sends(out)
        if out.closes:
            assert throttled_ok, f"close without rate limiting: {out.closes}"
            assert not sends and len(out.closes) == 1, out
            conn, code, _ = out.closes[0]
            assert conn is self.conns["A"] and code == CLOSE_POLICY, out.closes
            note("attacker closed for rate abuse")
            return True
        # peer-away / undelivered answer a relay to G: checked with the relay below.
        delivery = ("peer-away", "undelivered")
        errors = [
            m
            for role, m in sends
            if role == "A" and m.get("type") == "error" and m["data"]["code"] not in delivery
        ]
        if errors:
            assert len(sends) == 1, f"an error plus other frames: {sends}"
            code = check_error(errors[0], payload)
            note(f"error {code}")
            assert code != "rate-limited" or throttled_ok
            assert a.name == snap.a_name and list(g.pending) == snap.pending
            if code == "not-identified":
                assert snap.a_name is None
            if code == "unknown-peer":
                assert isinstance(payload, str)
                target = strict_loads(payload)["data"]["target"]
                assert self.role_of_id.get(target) not in ("B", "C", "D", "G"), "a listed peer is 'unknown'"
            return False
        if throttled_ok and not sends and a.name == snap.a_name and list(g.pending) == snap.pending:
            return False  # dropped by the rate limit (or a no-op), nothing went anywhere
        assert isinstance(payload, str), f"binary frame accepted: {sends}"
        try:
            message = strict_loads(payload)
        except (ValueError, RecursionError):
            raise AssertionError(
                f"the hub acted on a frame that is not JSON: {payload[:200]!r} -> {sends}"
            ) from None
        assert isinstance(message, dict) and message.get("type") in CLIENT_TYPES, (payload[:200], sends)
        data = message.get("data")
        assert isinstance(data, dict), (payload[:200], sends)
        if message["type"] == "identify":
            self.check_identify(sends, snap, data)
            return False
        if message["type"] == "ping":
            assert sends == [("A", {"type": "pong", "data": {"t": data.get("t")}})], sends
            return False
        note(f"relayed {message['type']}")
        assert snap.a_name is not None, "an unidentified peer relayed"
        role = self.role_of_id.get(data.get("target"))
        assert role in ("B", "C", "D", "G"), f"relayed to {role}: {sends}"
        expected = stamped(message["type"], data, a.id)
        if role == "G":
            codes = [m["data"]["code"] for _, m in sends]
            assert all(role == "A" for role, _ in sends) and len(sends) <= 1, sends
            if codes == ["undelivered"]:  # G's backlog is full: dropped, and A is told
                note("relay to a peer in its grace period refused")
                assert list(g.pending) == snap.pending
                return False
            note("relay queued for a peer in its grace period")
            assert codes == ([] if message["type"] == "icecandidate" else ["peer-away"]), sends
            assert sends == [] or sends[0][1]["data"]["target"] == g.id
            assert len(g.pending) == len(snap.pending) + 1 <= PENDING_LIMIT
            assert strict_loads(g.pending[-1]) == expected
            self.for_g.append(expected)
        else:
            assert sends == [(role, expected)], f"expected exactly {expected} to {role}, got {sends}"
        return False

    def check_identify(self, sends: list[tuple[str, Any]], snap: Snapshot, data: dict[str, Any]) -> None:
        a = self.attacker
        name = a.name
        assert name is not None
        well_formed_name(name, data.get("name"))
        to_attacker = [m for role, m in sends if role == "A"]
        if snap.a_listed:
            assert to_attacker == [], to_attacker
        else:  # first identify: the attacker learns who is here, each exactly once
            listed = {self.ids[r]: self.names[r] for r in ("B", "C", "D", "G")}
            got = {}
            for m in to_attacker:
                assert m["type"] == "peer" and set(m["data"]) == {"id", "name", "kind"}, m
                assert m["data"]["id"] not in got, m
                got[m["data"]["id"]] = m["data"]["name"]
            assert got == listed
        others = [(role, m) for role, m in sends if role != "A"]
        if name == snap.a_name:
            assert others == [], others
        else:
            announcement = {"type": "peer", "data": {"id": a.id, "name": name, "kind": "browser"}}
            assert sorted(role for role, _ in others) == ["B", "C", "D"], others
            assert all(m == announcement for _, m in others), others
        note("identify")

    def check_invariants(self) -> None:
        hub, a = self.hub, self.attacker
        assert hub.peer(a.id) is a and a.conn is self.conns["A"]
        expected = [(self.ids["A"], a.name)] if a.name is not None else []
        expected += [(self.ids[r], self.names[r]) for r in ("B", "C", "D", "G")]
        assert [(p.id, p.name) for p in hub.listed()] == expected
        assert hub.connections == 5
        assert self.peers["U"].name is None and self.peers["G"].conn is None

    def honest_round(self) -> None:
        """B -> C offer, C -> B icecandidate: each delivered exactly once, unchanged."""
        i = self.honest_rounds
        self.honest_rounds += 1
        b, c = self.peers["B"], self.peers["C"]
        offer = {"type": "offer", "sdp": f"v=0 honest {i}", "target": c.id, "source": b.id}
        candidate = {
            "candidate": f"candidate:{i} 1 udp 1 192.0.2.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        for sender, kind, data, receiver in (
            (b, "offer", offer, "C"),
            (c, "icecandidate", {"id": c.id, "target": b.id, "candidate": candidate}, "B"),
        ):
            out = self.hub.receive(sender, json.dumps({"type": kind, "data": data}))
            assert not out.closes
            assert self.decode_sends(out) == [(receiver, stamped(kind, data, sender.id))]

    def finish(self) -> None:
        """G resumes and gets exactly the relays that were held for it, in order."""
        conn = FakeConn("G again")
        peer, out, resumed = self.hub.connect(conn, self.tokens["G"])
        assert resumed and peer is self.peers["G"]
        assert all(self.hub.connection(c) is conn for c, _ in out.sends)
        frames = [strict_loads(text) for _, text in out.sends]
        assert frames[0]["type"] == "ready" and frames[0]["id"] == self.ids["G"]
        assert frames[1:] == self.for_g


FUZZ_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@given(
    identified=st.sampled_from([True, True, True, False]),
    attack=st.lists(frames(UNIT_ROLES), min_size=1, max_size=12),
)
def test_hub_attacker_input_never_raises_misroutes_or_disturbs(identified: bool, attack: list[Frame]) -> None:
    world = HubWorld(GENEROUS, attacker_identified=identified)
    for frame in attack:
        world.attack(frame)
        world.honest_round()
    world.finish()


@settings(FUZZ_SETTINGS, max_examples=150)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.001, 0.05, 0.2, 1.0]) | st.floats(0.0, 2.5),
            st.integers(1, 20),
            frames(UNIT_ROLES),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_rate_limited_attacker_never_misroutes(steps: list[tuple[float, int, Frame]]) -> None:
    world = HubWorld(HubLimits(rate_limit=5.0, rate_burst=4, resume_grace=60.0), attacker_identified=True)
    last_honest = world.now
    for dt, repeat, frame in steps:
        world.now += dt
        for _ in range(repeat):
            if world.attack(frame, throttled_ok=True):
                # The adapter closes the socket; the peer then enters its grace period quietly.
                assert not world.hub.disconnect(world.attacker, world.conns["A"])
                world.finish()
                return
        if world.now - last_honest >= 0.5:  # the honest peers stay within their own limit
            world.honest_round()
            last_honest = world.now
    world.finish()


RICH_FRAMES = 10_000  # at least this many frames over the group, data-link and call paths (issue 18, 34)


@settings(FUZZ_SETTINGS, max_examples=RICH_FRAMES // 10)
@given(
    identified=st.sampled_from([True, True, True, False]),
    attack=st.lists(
        st.builds(
            JsonFrame, group_and_data_messages(st.sampled_from([Ref(r) for r in UNIT_ROLES])), st.booleans()
        )
        | frames(UNIT_ROLES),
        min_size=10,
        max_size=14,
    ),
)
def test_every_message_type_of_the_protocol_is_fuzzed(identified: bool, attack: list[Frame]) -> None:
    """Group calls (invite, join, leave-call, call-scoped relays), data links (`link`),
    rejoin offers and capabilities, against peers that speak them: refused with a
    well-formed error and delivered nowhere, or relayed exactly to its target."""
    world = HubWorld(GENEROUS, attacker_identified=identified, rich=True)
    for frame in attack:
        world.attack(frame)
        world.honest_round()
    world.finish()


@pytest.mark.parametrize("depth", [1, 100, 252, 253, 254, 300, 1024, 1025, 5000])
@pytest.mark.parametrize("where", ["data", "candidate", "message", "top"])
def test_deeply_nested_frames_never_raise(depth: int, where: str) -> None:
    """Regression oracle for nesting: refused with an error or relayed intact, never a crash.
    (orjson parses 1024 levels but serializes only ~254.)"""
    world = HubWorld(GENEROUS, attacker_identified=True)
    world.attack(DeepFrame(depth, "[", where, Ref("B")))
    world.honest_round()
    world.finish()
